"""Bit-exact integer reference kernels — the specification every RTL block must equal.

Each kernel module holds the golden function (numpy int64), its cycle formula and its action
counts; it imports nothing of the project but :mod:`quant.qtype` and :mod:`hwsim.errors`.
"""
