"""Exact integer square root (the digit-by-digit root of :class:`rtl.common.isqrt.ISqrt`).

Shared by the integer norms: :mod:`hwsim.golden.vitallm.rmsnorm_int` and
:mod:`hwsim.golden.common.layernorm_int`.
"""

from __future__ import annotations

import numpy as np

from hwsim.golden.common import exact

__all__ = ["isqrt", "sqrt_steps"]


def isqrt(v) -> np.ndarray:
    """Exact ``floor(sqrt(v))`` of non-negative integers (int64 array; vectorized, equal to
    :func:`math.isqrt` for every int64: :func:`hwsim.golden.common.exact.isqrt`)."""
    return exact.isqrt(v)


def sqrt_steps(width: int) -> int:
    """Cycles (root bits) of the digit-by-digit root of a ``width``-bit operand."""
    return (width + 1) // 2
