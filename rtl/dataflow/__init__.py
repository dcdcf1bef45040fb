"""The streaming dataflow top of a compiled graph (:mod:`rtl.dataflow.top`) and the stream
glue it chains kernels with (:mod:`rtl.dataflow.glue`): FIFOs, lane-width converters and a
registered fork for a tensor read by several nodes."""
