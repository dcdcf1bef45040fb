"""Integer-only softmax: row max, base-2 exponent by shift and LUT, integer reciprocal.

The algorithm follows the integer-only transformer line of work (I-BERT, arXiv 2101.01321:
exponent through ``2**-z`` and a shift; Softermax, arXiv 2103.09301: base 2, row max subtracted,
the sum normalized once per row by a reciprocal). With ``x`` the signed score codes of a row
(real value ``x · 2**-f``, ``f = score.frac``):

1. ``m = max(x)`` over the valid entries, ``d = m − x`` (``0 ≤ d < 2**score.width``);
2. ``t = d · L`` with ``L = round(log2(e) · 2**log2e_bits)``: the exponent ``d · 2**-f · log2 e``
   in fixed point with ``F = log2e_bits + f`` fractional bits;
3. ``u = round_half_up(t · 2**(lut_bits − F))``; integer part ``n = u >> lut_bits``, fraction
   index ``j = u mod 2**lut_bits``;
4. ``e = round_half_up(LUT[j] / 2**n)`` with ``LUT[j] = round(2**P · 2**(−j / 2**lut_bits))``,
   ``P = exp_frac`` (so ``e`` is ``exp(−d · 2**-f)`` with ``P`` fractional bits; the row max
   gets exactly ``2**P``);
5. ``S = Σ e`` (``S ≥ 2**P``), ``k = bitlen(S) − 1 + recip_bits``, ``r = floor(2**k / S)``
   (an integer reciprocal with ``recip_bits + 1`` significant bits, computed in hardware by a
   restoring divider);
6. ``p = prob.fit(round_shift(e · r, k − prob.frac, prob.rounding))``: unsigned probability
   codes of the QType ``prob`` (default uint8 with 8 fractional bits, saturating).

Masked entries (``mask`` False) take no part in the max or the sum and get probability 0.

Exactness contract: integer codes in, integer codes out; the RTL equals :func:`softmax_int` with
``==``. Against float64 softmax of ``x · 2**-f`` the error of every probability is at most
:func:`max_abs_error_bound` (derived in its docstring; proved for all two-element rows of the
whole int8 range, random and extreme rows by ``tests/golden/test_softmax_int.py``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import exact, jit
from quant.qtype import Overflow, QType, Rounding, round_exact, round_shift

__all__ = [
    "PROB_UINT8",
    "SCORE_INT8",
    "SoftmaxParams",
    "action_counts",
    "exp2_neg",
    "exp_lut",
    "exp_pass_cycles",
    "exp_table",
    "float_exact",
    "log2e_code",
    "max_abs_error_bound",
    "probs_float",
    "recip_cycles",
    "reciprocal",
    "softmax_float",
    "softmax_int",
]

#: default softmax input: int8 scores with 4 fractional bits (real range [−8, 7.9375])
SCORE_INT8 = QType(8, frac=4)
#: default probability code: uint8 with 8 fractional bits (p = code / 256, saturating at 255)
PROB_UINT8 = QType(8, frac=8, signed=False)


@dataclass(frozen=True)
class SoftmaxParams:
    """Number formats and precisions of the integer softmax.

    Parameters
    ----------
    score : QType
        Signed input codes (real value ``code · 2**-score.frac``), at most 16 bits.
    prob : QType
        Unsigned output codes; its rounding and overflow modes are used.
    exp_frac : int
        ``P``: fractional bits of the exponentials (the row max is ``2**P``).
    lut_bits : int
        ``2**lut_bits`` LUT entries for ``2**-j/2**lut_bits``.
    log2e_bits : int
        Fractional bits of the ``log2 e`` constant.
    recip_bits : int
        Significant bits of the reciprocal of the row sum, minus one.

    Raises
    ------
    HwsimError
        On formats or precisions the algorithm cannot honour.
    """

    score: QType = SCORE_INT8
    prob: QType = PROB_UINT8
    exp_frac: int = 15
    lut_bits: int = 8
    log2e_bits: int = 16
    recip_bits: int = 16

    def __post_init__(self):
        check_ints(self, "softmax", (("exp_frac", 2, 30), ("lut_bits", 1, 12),
                                     ("log2e_bits", 4, 30), ("recip_bits", 4, 30)))
        if not isinstance(self.score, QType) or not self.score.signed or self.score.width > 16:
            raise HwsimError(f"softmax scores must be a signed QType of ≤ 16 bits, not {self.score}")
        if not isinstance(self.prob, QType) or self.prob.signed:
            raise HwsimError(f"softmax probabilities must be an unsigned QType, not {self.prob}")
        if self.prob.frac < 0 or self.prob.frac > self.exp_frac + self.recip_bits:
            raise HwsimError(f"softmax prob.frac must be 0 … exp_frac + recip_bits, "
                             f"not {self.prob.frac}")
        if self.score.frac < 0:
            raise HwsimError(f"softmax score.frac must be ≥ 0, not {self.score.frac}")

    @property
    def exp_width(self) -> int:
        """Unsigned bits of an exponential (``2**P`` included)."""
        return self.exp_frac + 1

    @property
    def diff_width(self) -> int:
        """Unsigned bits of ``d = max − x``."""
        return self.score.width

    @property
    def fix_frac(self) -> int:
        """``F``: fractional bits of ``t = d · L``."""
        return self.log2e_bits + self.score.frac

    def sum_width(self, length: int) -> int:
        """Unsigned bits of the sum of ``length`` exponentials."""
        return (length << self.exp_frac).bit_length()


# ------------------------------------------------------------------------------------------
def log2e_code(p: SoftmaxParams) -> int:
    """``L = round(log2(e) · 2**log2e_bits)``."""
    return round(math.log2(math.e) * (1 << p.log2e_bits))


@functools.lru_cache(maxsize=64)
def _exp_lut(lut_bits: int, exp_frac: int) -> np.ndarray:
    j = np.arange(1 << lut_bits, dtype=np.float64)
    t = np.round(np.ldexp(np.exp2(-j / (1 << lut_bits)), exp_frac)).astype(np.int64)
    t.setflags(write=False)
    return t


def exp_lut(p: SoftmaxParams) -> np.ndarray:
    """``LUT[j] = round(2**P · 2**(−j / 2**lut_bits))``, ``2**lut_bits`` entries (int64)."""
    return _exp_lut(p.lut_bits, p.exp_frac).copy()


def exp2_neg(d, p: SoftmaxParams) -> np.ndarray:
    """Steps 2–4: exponentials ``≈ 2**P · exp(−d · 2**-f)`` of non-negative differences ``d``."""
    d = np.asarray(d, dtype=np.int64)
    if d.size and (d.min() < 0 or d.max() >= (1 << p.diff_width)):
        raise HwsimError(f"softmax differences must be 0 … {(1 << p.diff_width) - 1}")
    t = d * log2e_code(p)
    shift = p.fix_frac - p.lut_bits
    u = round_shift(t, shift, Rounding.HALF_UP) if shift >= 0 else t << -shift
    n = u >> p.lut_bits
    j = u & ((1 << p.lut_bits) - 1)
    lut = _exp_lut(p.lut_bits, p.exp_frac)[j]
    big = n > p.exp_frac + 1  # every bit shifted out, and the rounding bit too
    e = round_shift(lut, np.minimum(n, p.exp_frac + 2), Rounding.HALF_UP)
    return np.where(big, 0, e)


@functools.lru_cache(maxsize=64)
def exp_table(p: SoftmaxParams, dtype=np.int64) -> np.ndarray:
    """:func:`exp2_neg` of every difference ``d = 0 … 2**diff_width − 1``, then one 0 (the
    entry of a masked score), read-only, as ``dtype`` (int64, or float64: every entry is below
    ``2**31``, exact): the softmax looks its exponentials up here, which is :func:`exp2_neg`
    code for code."""
    t = np.append(exp2_neg(np.arange(1 << p.diff_width, dtype=np.int64), p), 0).astype(dtype)
    t.setflags(write=False)
    return t


def reciprocal(s, recip_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalized integer reciprocal: ``(r, k)`` with ``k = bitlen(s) − 1 + recip_bits`` and
    ``r = floor(2**k / s)``, so ``2**(recip_bits−1) ≤ r ≤ 2**recip_bits`` for ``s ≥ 1``.

    ``s = 0`` gives ``(0, recip_bits)``. This is what :class:`rtl.common.recip.Reciprocal`
    computes in ``recip_bits + 1`` cycles.
    """
    return exact.reciprocal(s, recip_bits)


def _check_rows(x, p: SoftmaxParams, mask):
    x = p.score.check(x, "softmax scores")
    if x.ndim == 0:
        raise HwsimError("softmax needs at least one row of scores")
    if mask is None:
        mask = np.ones(x.shape, dtype=bool)
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != x.shape:
            raise HwsimError(f"softmax mask shape {mask.shape} differs from scores {x.shape}")
    if x.shape[-1] == 0 or not np.all(mask.any(axis=-1)):
        raise HwsimError("every softmax row needs at least one unmasked score")
    return x, mask


def softmax_int(x, p: SoftmaxParams | None = None, mask=None) -> np.ndarray:
    """Integer softmax along the last axis: score codes → probability codes (int64).

    Parameters
    ----------
    x : int array (..., L) of ``p.score`` codes
    p : SoftmaxParams (defaults: int8 scores with 4 fractional bits, uint8 probabilities / 256)
    mask : bool array like ``x``, optional
        False entries are excluded (causal masking, padding); each row keeps at least one.
    """
    p = p or SoftmaxParams()
    x, mask = _check_rows(x, p, mask)
    if jit.enabled():                              # the compiled rows (== the lines below)
        probs, bad = jit.specialized("softmax_rows", p.prob)(
            np.ascontiguousarray(x.reshape(-1, x.shape[-1])),
            np.ascontiguousarray(mask.reshape(-1, x.shape[-1])), exp_table(p),
            p.score.min_code, p.recip_bits, p.prob.frac)
        if bad < 0:
            return probs.reshape(x.shape)
    if float_exact(p, x.shape[-1]):
        return probs_float(x, p, mask).astype(np.int64)
    lo = p.score.min_code
    m = np.max(np.where(mask, x, lo), axis=-1, keepdims=True)
    # d = m − x (0 … 2**w − 1); a masked entry looks up the table's extra entry 2**w, a zero
    e = exp_table(p)[np.where(mask, m - x, 1 << p.diff_width)]
    s = np.sum(e, axis=-1, keepdims=True)
    r, k = reciprocal(s, p.recip_bits)
    return p.prob.fit(round_shift(e * r, k - p.prob.frac, p.prob.rounding))


def float_exact(p: SoftmaxParams, length: int) -> bool:
    """Whether float64 holds every exponential, every row sum of ``length`` of them and every
    product ``e·r`` exactly (then :func:`probs_float` computes :func:`softmax_int`)."""
    return (p.exp_frac + p.recip_bits + 2 <= 53 and length << (p.exp_frac + 1) < 1 << 53
            and p.prob.overflow is Overflow.SATURATE)


def probs_float(x: np.ndarray, p: SoftmaxParams, mask, bias=None) -> np.ndarray:
    """:func:`softmax_int`'s codes as float64 (integral) from checked score codes ``x`` (int64,
    or integral float64) and a mask with one unmasked score per row, where
    :func:`float_exact` holds: each step below is exact in float64, so the codes are those of
    the integer definition (``tests/golden/test_vectorized_golden.py`` compares them).

    ``bias``: the mask as 0 / −inf addends (any shape broadcasting to ``x``'s, e.g. one
    (T, L) causal pattern for every head), which saves the element-wise selects; ``mask`` is
    then not read (may be None)."""
    if bias is None:
        bias = np.where(mask, 0.0, -np.inf)
    # score codes and their differences (< 2**17) are exact in float32
    d = np.add(x, bias, dtype=np.float32)
    m = np.max(d, axis=-1, keepdims=True)
    # d = m − x (0 … 2**w − 1); a masked entry (+inf) looks up the table's extra entry 2**w, a 0
    np.subtract(m, d, out=d)
    np.minimum(d, 1 << p.diff_width, out=d)
    e = exp_table(p, np.float64)[d.astype(np.intp)]
    s = np.sum(e, axis=-1, keepdims=True)
    r, k = reciprocal(s.astype(np.int64), p.recip_bits)
    e *= np.ldexp(r.astype(np.float64), -(k - p.prob.frac))
    round_exact(e, p.prob.rounding, out=e)
    return np.clip(e, p.prob.min_code, p.prob.max_code, out=e)


def softmax_float(x, p: SoftmaxParams | None = None, mask=None) -> np.ndarray:
    """float64 softmax of the real scores ``x · 2**-f`` (masked entries 0): the reference."""
    p = p or SoftmaxParams()
    x, mask = _check_rows(x, p, mask)
    v = np.where(mask, x * p.score.lsb, -np.inf)
    v = v - np.max(v, axis=-1, keepdims=True)
    e = np.exp(v)
    return e / np.sum(e, axis=-1, keepdims=True)


def max_abs_error_bound(p: SoftmaxParams, length: int) -> float:
    """Upper bound of ``|softmax_int · 2**-prob.frac − softmax_float|`` for rows of ≤ ``length``.

    Derivation. The exponent ``d · 2**-f · log2 e`` is off by at most
    ``η = 2**-(lut_bits+1)`` (LUT index rounding) ``+ (2**w − 1) · 2**-f · |L·2**-log2e_bits −
    log2 e|`` (constant rounding), so an exponential is ``e·(1 + δ_i) + a_i`` with
    ``|δ_i| ≤ δ = 2**η − 1`` and ``|a_i| ≤ 1`` (LUT entry and shift rounding, in units of
    ``2**-P``). With ``S ≥ 2**P`` (the row max contributes ``2**P`` exactly) the ratio
    ``ê_i / Ŝ`` differs from ``p_i`` by at most
    ``(2δ·p_i(1−p_i)·S + L) / (S(1−δ) − L) ≤ (δ/2 + L·2**-P) / (1 − δ − L·2**-P)``.
    The truncated reciprocal adds ``2**-(recip_bits−1)``, the output rounding half an LSB (a
    full LSB for FLOOR/TRUNC), and a probability clamped to the largest code is off by at most
    ``1 − prob.max_value``.
    """
    if length < 1:
        raise HwsimError("softmax row length must be ≥ 1")
    eta = ((2.0 ** -(p.lut_bits + 1)) if p.fix_frac > p.lut_bits else 0.0) + (
        ((1 << p.score.width) - 1) * p.score.lsb
        * abs(log2e_code(p) / (1 << p.log2e_bits) - math.log2(math.e)))
    delta = 2.0 ** eta - 1.0
    add = length * 2.0 ** -p.exp_frac
    ratio = (delta / 2 + add) / (1 - delta - add)
    half = p.prob.rounding not in (Rounding.FLOOR, Rounding.TRUNC)
    rnd = p.prob.lsb * (0.5 if half else 1.0)
    return max(ratio + 2.0 ** -(p.recip_bits - 1) + rnd, 1.0 - p.prob.max_value)


# ------------------------------------------------------------------------------------------
def exp_pass_cycles(length: int, exp_lanes: int) -> int:
    """Issue cycles of the exponential pass: ``ceil(L / exp_lanes)``."""
    return -(-length // exp_lanes)


def recip_cycles(p: SoftmaxParams) -> int:
    """Cycles of the restoring-divider reciprocal, from its start to its result register."""
    return p.recip_bits + 2


def action_counts(p: SoftmaxParams, length: int, rows: int = 1) -> dict[str, int]:
    """Actions of ``rows`` softmax rows of ``length`` scores."""
    return {
        "max_compare": rows * length,
        "exp_lut_read": rows * length,
        "exp_shift": rows * length,
        "sum_add": rows * length,
        "reciprocal": rows,
        "recip_iterations": rows * (p.recip_bits + 1),
        "normalize_mul": rows * length,
        "score_read_bits": rows * length * p.score.width * 2,
        "exp_write_bits": rows * length * p.exp_width,
        "exp_read_bits": rows * length * p.exp_width,
    }
