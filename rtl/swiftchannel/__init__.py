"""Amaranth datapaths of the SwiftChannel int8 pipeline: conv engine, SPAB gate, composed pipeline."""
