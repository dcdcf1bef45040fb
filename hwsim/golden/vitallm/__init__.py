"""Goldens of the VitaLLM ternary-LLM accelerator: the BitNet decoder layer's integer codes, its
model reference and its kernels."""
