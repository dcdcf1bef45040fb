"""Golden kernels shared by the accelerators: the int8 engine, integer softmax, the attention
head."""
