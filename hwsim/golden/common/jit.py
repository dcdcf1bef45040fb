"""Compiled row loops for the golden model: the same integer arithmetic, one pass over memory.

The golden kernels are written as whole-tensor numpy expressions; a chain of them (shift a row,
square and sum it, take its root and reciprocal, scale, round, saturate, find the absmax,
requantize) makes a pass over memory per step. The loops here (numba, compiled on first use
and cached next to this file) do such a chain row by row with the scalar integer operations
below, each the exact integer definition of its numpy counterpart:

=====================  ===================================================================
:func:`round_shift`    ``quant.qtype.round_shift`` of one int64 (every :class:`Rounding`)
:func:`fit`            ``QType.fit`` of one int64 (saturate, or wrap with ``narrow``)
:func:`bit_length`     ``int.bit_length`` of a non-negative int64
:func:`isqrt`          ``floor(sqrt(v))``, exact
:func:`reciprocal`     ``(floor(2**k / s), k)``, ``k = bitlen(s) − 1 + bits`` (``k ≤ 62``)
=====================  ===================================================================

int64 arithmetic wraps in numba as it does in numpy, so a product the numpy expression would
wrap wraps the same way here. Where a compiled loop meets a case its int64 arithmetic does not
cover (a reciprocal past 2**62, a shift outside 0 … 62, a product that could pass 2**62) it
reports the row and the caller runs the numpy definition instead, which computes it exactly or
raises the error the user would have seen.

The numpy definitions stay the reference: :func:`disabled` (or ``HWSIM_NO_JIT=1`` in the
environment) runs every kernel on them; ``tests/golden/test_jit.py`` compares the two, code for
code, on random and extreme inputs.
"""

from __future__ import annotations

import contextlib
import functools
import os
import warnings

from quant.qtype import Overflow, QType, Rounding

__all__ = ["ROUNDING", "disabled", "enabled", "fit_args", "kernels", "specialized"]

#: rounding modes as the compiled loops take them
ROUNDING = {Rounding.FLOOR: 0, Rounding.TRUNC: 1, Rounding.HALF_UP: 2, Rounding.HALF_AWAY: 3,
            Rounding.HALF_EVEN: 4}

_state = {"off": 0}


def enabled() -> bool:
    """Whether the compiled loops run (not inside :func:`disabled`, no ``HWSIM_NO_JIT``, and
    numba loads here: where it does not, the numpy definitions run, after one warning)."""
    if _state["off"] or os.environ.get("HWSIM_NO_JIT", "") not in ("", "0"):
        return False
    if "kernels" not in _state:
        try:
            from hwsim.golden.common import _jit_kernels
        except (ImportError, RuntimeError, OSError) as e:   # no numba, no cache location
            warnings.warn(f"hwsim: compiled golden loops unavailable ({e}); the numpy "
                          "definitions run instead", RuntimeWarning, stacklevel=2)
            _jit_kernels = None
        _state["kernels"] = _jit_kernels
    return _state["kernels"] is not None


@contextlib.contextmanager
def disabled():
    """Run the golden model on its numpy definitions only (the reference the tests compare
    the compiled loops with)."""
    _state["off"] += 1
    try:
        yield
    finally:
        _state["off"] -= 1


def fit_args(q: QType) -> tuple[int, int, int, bool, bool, bool]:
    """``(min_code, max_code, width, signed, wrap, narrow)``: a :class:`QType`'s overflow rule
    as the compiled :func:`fit` takes it."""
    return (q.min_code, q.max_code, q.width, q.signed, q.overflow is Overflow.WRAP, q.narrow)


def kernels():
    """The compiled kernels module (imports numba on first use; raises where it cannot)."""
    k = _state.get("kernels")
    if k is None:
        from hwsim.golden.common import _jit_kernels as k
    return k


@functools.lru_cache(maxsize=64)
def specialized(name: str, *formats: QType):
    """The loop ``name`` compiled for the rounding and overflow of ``formats`` (their modes
    are compile-time constants, so the per-element branches fold away; each combination
    compiles once and is cached on disk like the other loops)."""
    args = []
    for q in formats:
        args += [ROUNDING[q.rounding], fit_args(q)]
    return getattr(kernels(), f"make_{name}")(*args)
