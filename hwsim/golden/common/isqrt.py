"""Exact integer square root (the digit-by-digit root of :class:`rtl.common.isqrt.ISqrt`).

Shared by the integer norms: :mod:`hwsim.golden.vitallm.rmsnorm_int` and
:mod:`hwsim.golden.common.layernorm_int`.
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["isqrt", "sqrt_steps"]


def isqrt(v) -> np.ndarray:
    """Exact ``floor(sqrt(v))`` of non-negative integers (int64 array)."""
    v = np.asarray(v, dtype=np.int64)
    if v.size and v.min() < 0:
        raise HwsimError("integer square root of a negative number")
    return np.vectorize(lambda a: math.isqrt(int(a)), otypes=[np.int64])(v)


def sqrt_steps(width: int) -> int:
    """Cycles (root bits) of the digit-by-digit root of a ``width``-bit operand."""
    return (width + 1) // 2
