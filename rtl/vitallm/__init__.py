"""Amaranth datapaths of the VitaLLM ternary-LLM accelerator and their sub-blocks."""
