"""Int8 × int8 → int32 matrix engine for attention (QKᵀ and A·V), with scale folding.

The attention datapath of the seed models multiplies two activation tensors: scores
``S = Q · Kᵀ`` (int8 × int8) and the context ``O = A · V`` (unsigned probability codes × int8).
Both run on one array of ``lanes`` multipliers feeding an adder tree and an exact accumulator;
VitaLLM's BoothFlex core (arXiv 2605.00320) builds those multipliers as radix-4 Booth
multipliers that also execute ternary × int8, an RFSoC build maps them to DSP48E2 slices. This
module is the specification of both (:mod:`rtl.common.booth`, :mod:`rtl.common.attention_head`).

Contract (proved by ``tests/golden/test_int8_matmul.py`` and the RTL tests):

* integer codes in, exact int64 accumulators out (``acc_width`` bits can never overflow);
* :func:`booth_multiply` equals ``a · b`` for every pair of codes (exhaustively tested), and the
  RTL's Booth and plain multipliers equal it bit for bit;
* scale folding: all real factors of a rescale (``s_a · s_b / √d / s_out`` …) are multiplied
  in float64 and turned into one integer ``M · 2**-S`` (:func:`fold_scale`); the integer result
  differs from ``round(real · acc)`` by at most 1 LSB, and only where ``M · 2**-S`` rounds the
  real factor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import exact
from quant.qtype import INT8, QType, quantize_multiplier, requantize

__all__ = [
    "BOOTH_RADIX_BITS",
    "Int8MatmulParams",
    "Int8Weights",
    "acc_width",
    "action_counts",
    "booth_digits",
    "booth_multiply",
    "dot_cycles",
    "fold_scale",
    "int8_matmul",
    "int8_matmul_requant",
    "ternary_booth_digits",
]

#: bits of the multiplier operand consumed per Booth digit (radix 4)
BOOTH_RADIX_BITS = 2


@dataclass(frozen=True)
class Int8MatmulParams:
    """A matrix engine of ``lanes`` multipliers computing ``(n, k) · (m, k)ᵀ``.

    Parameters
    ----------
    lanes : int
        Multipliers (products per cycle); must divide ``k``.
    k : int
        Dot-product length (the head dimension for QKᵀ, the sequence length for A·V).
    a, b : QType
        Operand formats: ``a`` is the multiplicand (int8, or unsigned probability codes),
        ``b`` the Booth-recoded multiplier operand (int8).
    """

    lanes: int = 16
    k: int = 64
    a: QType = INT8
    b: QType = INT8

    def __post_init__(self):
        check_ints(self, "int8-matmul", ("lanes", "k"))
        if self.k % self.lanes:
            raise HwsimError(f"int8-matmul lanes ({self.lanes}) must divide k ({self.k})")
        for name in ("a", "b"):
            if not isinstance(getattr(self, name), QType):
                raise HwsimError(f"int8-matmul operand {name} must be a QType")
        if not self.b.signed:
            raise HwsimError("int8-matmul Booth operand b must be signed")

    @property
    def acc_width(self) -> int:
        return acc_width(self.k, self.a, self.b)


# ------------------------------------------------------------------------------------------
def _peak(q: QType) -> int:
    return max(abs(q.min_code), abs(q.max_code))


def acc_width(k: int, a: QType = INT8, b: QType = INT8) -> int:
    """Signed bits that hold any sum of ``k`` products of ``a`` and ``b`` codes."""
    return (k * _peak(a) * _peak(b)).bit_length() + 1


class Int8Weights:
    """A constant ``b`` operand (m, k) of :func:`int8_matmul` (e.g. an LM head), checked
    against its format once and kept in the forms the exact product reads."""

    def __init__(self, b, b_qtype: QType = INT8):
        b = b_qtype.check(b, "matmul operand b")
        if b.ndim != 2:
            raise HwsimError(f"matmul operand b must be 2-D (m, k), got shape {b.shape}")
        self.b, self.qtype = b, b_qtype
        self.operand = exact.ConstOperand(b.T, _peak(b_qtype))

    @property
    def shape(self) -> tuple:
        return self.b.shape


def int8_matmul(a, b, a_qtype: QType = INT8, b_qtype: QType = INT8) -> np.ndarray:
    """Exact ``a · bᵀ`` on integer codes: ``a`` (n, k) or (k,), ``b`` (m, k) → (n, m) or (m,).
    ``b`` may be an :class:`Int8Weights` (then its own format replaces ``b_qtype``).

    Returns int64; every entry fits :func:`acc_width` bits (an int32 for k ≤ 2**16 int8 codes).
    Computed by a float GEMM where that is provably exact (:mod:`hwsim.golden.common.exact`).
    """
    a = a_qtype.check(a, "matmul operand a")
    w = b if isinstance(b, Int8Weights) else Int8Weights(b, b_qtype)
    if a.shape[-1] != w.shape[1]:
        raise HwsimError(f"matmul operands disagree on k: {a.shape[-1]} vs {w.shape[1]}")
    return exact.matmul_codes(a, w.operand, _peak(a_qtype), 0, checked=True)


def fold_scale(*factors: float, bits: int = 16, max_shift: int = 62) -> tuple[int, int]:
    """Fold real rescale factors into one integer multiplier and shift ``(M, S)``.

    E.g. scores ``S = q·k · s_q · s_k / √d`` requantized to a format of step ``s_out``:
    ``fold_scale(s_q, s_k, 1 / math.sqrt(d), 1 / s_out)``.
    """
    real = 1.0
    for f in factors:
        if not (isinstance(f, int | float | np.floating) and math.isfinite(f) and f > 0):
            raise HwsimError(f"scale factor must be a positive finite real, not {f!r}")
        real *= float(f)
    return quantize_multiplier(real, bits=bits, max_shift=max_shift)


def int8_matmul_requant(a, b, multiplier: int, shift: int, out: QType = INT8,
                        a_qtype: QType = INT8, b_qtype: QType = INT8) -> np.ndarray:
    """``requantize(a · bᵀ, M, S, out)``: the engine with its folded output scale."""
    return requantize(int8_matmul(a, b, a_qtype, b_qtype), multiplier, shift, out)


# ------------------------------------------------------------------------------------------
# Radix-4 Booth recoding (the arithmetic of rtl.common.booth)
def booth_digits(b, width: int = 8) -> np.ndarray:
    """Radix-4 Booth digits of signed ``width``-bit codes ``b``: shape ``b.shape + (n,)``.

    ``n = ceil(width / 2)``; digit ``j`` is ``−2·b[2j+1] + b[2j] + b[2j−1]`` (``b[−1] = 0``,
    bits above the sign replicate it), in {−2, −1, 0, 1, 2}; ``b = Σ digit_j · 4**j``.
    """
    b = np.asarray(b, dtype=np.int64)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if b.size and (b.min() < lo or b.max() > hi):
        raise HwsimError(f"Booth operand outside signed {width}-bit range")
    n = -(-width // 2)
    ext = b  # numpy's >> on int64 sign-extends: bits above the sign replicate it
    digits = []
    for j in range(n):
        b_hi = (ext >> (2 * j + 1)) & 1
        b_mid = (ext >> (2 * j)) & 1
        b_lo = (ext >> (2 * j - 1)) & 1 if j else np.zeros_like(ext)
        digits.append(-2 * b_hi + b_mid + b_lo)
    return np.stack(digits, axis=-1)


def ternary_booth_digits(w) -> np.ndarray:
    """BoothFlex's ternary mode: a weight in {−1, 0, +1} is one Booth digit (the rest are 0)."""
    w = np.asarray(w, dtype=np.int64)
    if w.size and (w.min() < -1 or w.max() > 1):
        raise HwsimError("ternary Booth operand must be −1, 0 or +1")
    return w[..., None]


def booth_multiply(a, b, width: int = 8, ternary: bool = False) -> np.ndarray:
    """``a · b`` as a Booth multiplier forms it: ``Σ_j digit_j(b) · a · 4**j`` (int64)."""
    a = np.asarray(a, dtype=np.int64)
    d = ternary_booth_digits(b) if ternary else booth_digits(b, width)
    weights = np.int64(4) ** np.arange(d.shape[-1], dtype=np.int64)
    return np.sum(d * weights, axis=-1) * a


# ------------------------------------------------------------------------------------------
def dot_cycles(k: int, lanes: int) -> int:
    """Issue cycles of one length-``k`` dot product on ``lanes`` multipliers."""
    return -(-k // lanes)


def action_counts(n: int, m: int, k: int, lanes: int, a: QType = INT8,
                  b: QType = INT8) -> dict[str, int]:
    """Actions of ``(n, k) · (m, k)ᵀ`` on the engine: products, tree/accumulator adds, bits read."""
    return {
        "mac": n * m * k,
        "booth_partial_products": n * m * k * -(-b.width // 2),
        "acc_add": n * m * dot_cycles(k, lanes),
        "a_read_bits": n * m * k * a.width,
        "b_read_bits": n * m * k * b.width,
        "cycles": n * m * dot_cycles(k, lanes),
    }
