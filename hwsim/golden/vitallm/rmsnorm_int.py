"""Integer RMSNorm: ``y = x · γ / sqrt(mean(x²) + ε)`` with an integer reciprocal square root.

BitNet b1.58 (arXiv 2402.17764, LLaMA-like) normalizes the residual stream with RMSNorm before
every BitLinear (SubLN in 2B4T). RMSNorm is invariant to the scale of ``x``, so the integer
version works on the codes directly:

1. ``ss = Σ x_i²`` (exact, int64);
2. ``v = floor(ss · 2**(2G) / n) + eps_code`` — the mean square with ``2G`` fractional bits
   (``G = rms_frac``), ``eps_code = round(ε / s_x² · 2**(2G))`` for an input step ``s_x``;
3. ``q = isqrt(v)`` (exact integer square root, digit by digit in hardware): the RMS with ``G``
   fractional bits;
4. ``(r, k) = reciprocal(q, recip_bits)`` (:func:`hwsim.golden.common.softmax_int.reciprocal`),
   ``r = floor(2**k / q)``;
5. ``y_i = out.fit(round_shift(x_i · γ_i · r, k + γ.frac − out.frac − G, out.rounding))``.

Exactness contract: integer codes in and out, RTL == golden with ``==``. Against the float64
RMSNorm of the same codes (``x · γ · 2**-γ.frac / sqrt(mean(x²) + ε)`` in the output format) the
result differs by at most 1 LSB for every element that does not saturate (proved by
``tests/golden/test_rmsnorm_int.py``): the square root and reciprocal carry ``G`` and
``recip_bits`` bits, so the real value before rounding is off by far less than one LSB and only
values next to a rounding tie can land on the neighbouring code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import jit
from hwsim.golden.common.isqrt import isqrt, sqrt_steps
from hwsim.golden.common.softmax_int import reciprocal
from quant.qtype import INT8, QType, _fit_int, _round_shift_int, round_shift

__all__ = [
    "GAMMA_Q7",
    "OUT_Q5",
    "RmsNormParams",
    "action_counts",
    "isqrt",
    "latency_cycles",
    "rmsnorm_float",
    "rmsnorm_int",
    "storage_bits",
]

#: default gain format: int8 with 6 fractional bits (γ in [−2, 1.98])
GAMMA_Q7 = QType(8, frac=6)
#: default output format: int8 with 5 fractional bits (a normalized value in [−4, 3.97])
OUT_Q5 = QType(8, frac=5)


@dataclass(frozen=True)
class RmsNormParams:
    """Formats and precisions of the integer RMSNorm.

    Parameters
    ----------
    n : int
        Vector length (hidden size).
    lanes : int
        Elements per cycle of the hardware; must divide ``n``.
    x : QType
        Input codes (int8 activations, or a wider integer residual).
    gamma : QType
        Per-element gain codes.
    out : QType
        Output codes (int8 by default), with rounding and overflow.
    rms_frac : int
        ``G``: fractional bits of the RMS.
    recip_bits : int
        Precision of the reciprocal of the RMS.
    multiplier : str
        RTL multiplier style, ``"dsp"`` or ``"booth"`` (:mod:`rtl.common.booth`).
    """

    n: int = 64
    lanes: int = 16
    x: QType = INT8
    gamma: QType = GAMMA_Q7
    out: QType = OUT_Q5
    rms_frac: int = 12
    recip_bits: int = 16
    multiplier: str = "dsp"

    def __post_init__(self):
        check_ints(self, "rmsnorm", (("n", 1, 1 << 20), ("lanes", 1, 1024), ("rms_frac", 0, 16),
                                     ("recip_bits", 4, 30)))
        if self.n % self.lanes:
            raise HwsimError(f"rmsnorm lanes ({self.lanes}) must divide n ({self.n})")
        if not self.x.signed or self.x.width > 32:
            raise HwsimError(f"rmsnorm input must be signed and ≤ 32 bits, not {self.x}")
        if self.multiplier not in ("dsp", "booth"):
            raise HwsimError(f"rmsnorm multiplier must be dsp or booth, not {self.multiplier!r}")
        if self.shift_base < 0:
            raise HwsimError("rmsnorm output has more fractional bits than the datapath carries")

    @property
    def chunks(self) -> int:
        return self.n // self.lanes

    @property
    def ss_width(self) -> int:
        """Unsigned bits of ``Σ x²``."""
        return (self.n << (2 * (self.x.width - 1))).bit_length()

    @property
    def num_width(self) -> int:
        """Bits of the dividend ``ss · 2**(2G)`` (one quotient bit per cycle)."""
        return self.ss_width + 2 * self.rms_frac

    @property
    def eps_width(self) -> int:
        """Bits of the ``eps`` port."""
        return 2 * self.x.width + 2 * self.rms_frac

    @property
    def v_width(self) -> int:
        """Bits of ``v = floor(ss · 2**(2G) / n) + eps_code``."""
        return max(self.num_width, self.eps_width) + 1

    @property
    def sqrt_steps(self) -> int:
        return sqrt_steps(self.v_width)

    @property
    def shift_base(self) -> int:
        """Right shift of step 5 minus ``k - recip_bits``: ``recip_bits + γ.frac − out.frac − G``."""
        return self.recip_bits + self.gamma.frac - self.out.frac - self.rms_frac


def _eps_codes(eps_code, x: np.ndarray, p: RmsNormParams):
    """``eps_code`` as an int, or as an int64 column (rows, 1) of per-row codes."""
    if isinstance(eps_code, bool):
        raise HwsimError(f"rmsnorm eps_code must be a non-negative integer, not {eps_code!r}")
    if isinstance(eps_code, int | np.integer):
        if eps_code < 0:
            raise HwsimError(f"rmsnorm eps_code must be a non-negative integer, not {eps_code!r}")
        if int(eps_code) >> p.eps_width:
            raise HwsimError(f"rmsnorm eps_code {eps_code} does not fit {p.eps_width} bits")
        return int(eps_code)
    e = np.asarray(eps_code)
    if e.dtype.kind not in "iu" or e.shape != x.shape[:-1] or x.ndim != 2:
        raise HwsimError(f"rmsnorm eps_code must be one non-negative integer, or one per row of "
                         f"a (rows, n) input; got {e.dtype} {e.shape} for rows {x.shape}")
    e = e.astype(np.int64)
    if e.size and (e.min() < 0 or int(e.max()) >> p.eps_width):
        raise HwsimError(f"rmsnorm eps_code must be 0 … 2**{p.eps_width} − 1")
    return e[:, None]


def rmsnorm_int(x, gamma, eps_code, p: RmsNormParams | None = None, *,
                checked: bool = False) -> np.ndarray:
    """Integer RMSNorm of each row of ``x`` ((n,) or (rows, n)) with gains ``gamma`` (n,).

    ``eps_code``: one integer for every row, or (for a (rows, n) input) an integer array of one
    code per row — rows with different ε codes in one call (e.g. rows shifted by different
    amounts before the norm). ``checked``: ``x`` is known to hold int64 codes of ``p.x`` (the
    range pass is skipped)."""
    p = p or RmsNormParams()
    x = np.asarray(x) if checked else p.x.check(x, "rmsnorm input")
    g = p.gamma.check(gamma, "rmsnorm gains")
    if x.shape[-1] != p.n or g.shape != (p.n,):
        raise HwsimError(f"rmsnorm expects rows of {p.n} and {p.n} gains, got {x.shape}, {g.shape}")
    eps = _eps_codes(eps_code, x, p)
    rows = np.ascontiguousarray(x.reshape(-1, p.n))
    if isinstance(eps, int):                       # one code (any width) for every row
        big = np.full(rows.shape[0], eps >= 1 << 61)
        e = np.full(rows.shape[0], 0 if eps >= 1 << 61 else eps, dtype=np.int64)
    else:                                          # int64 codes, one per row
        e = np.ascontiguousarray(eps.reshape(-1))
        big = e >= 1 << 61
    lim_sq, lim_ss, lim_y = int64_limits(p)
    if jit.enabled() and x.size and not big.any():
        codes, bad = jit.specialized("rmsnorm_rows", p.out)(
            rows, e, np.ascontiguousarray(g), 2 * p.rms_frac, p.recip_bits, p.shift_base,
            lim_sq, lim_ss, lim_y)
        if bad < 0:
            return codes.reshape(x.shape)
    out = np.empty_like(rows)
    peak = np.abs(rows).max(axis=1, initial=0)
    gmax = int(np.abs(g).max(initial=0))
    narrow = (peak <= math.isqrt(lim_sq)) & (peak <= lim_y // max(gmax, 1)) & ~big
    ss = np.zeros(rows.shape[0], dtype=np.int64)
    ss[narrow] = np.einsum("ij,ij->i", rows[narrow], rows[narrow])  # Σ x², exact int64 there
    narrow &= ss <= lim_ss
    t = np.zeros_like(ss)
    t[narrow] = (ss[narrow] << (2 * p.rms_frac)) // p.n
    narrow &= t <= np.iinfo(np.int64).max - e           # v = t + ε fits int64
    if narrow.any():
        xn = rows[narrow]
        v = (t + e)[narrow, None]
        q = isqrt(v)
        r, k = reciprocal(q, p.recip_bits)
        shift = k - p.recip_bits + p.shift_base
        if np.any(q == 0):  # all-zero row and ε = 0: output 0
            r = np.where(q == 0, 0, r)
        fits = shift[:, 0] <= 62
        narrow[narrow] = fits
        y = xn[fits] * g
        y *= r[fits]
        out[narrow] = p.out.fit(round_shift(y, shift[fits], p.out.rounding))
    for i in np.flatnonzero(~narrow):         # rows past int64: exact Python integers
        out[i] = _row_exact(rows[i], g, eps if isinstance(eps, int) else int(e[i]), p)
    return out.reshape(x.shape)


def int64_limits(p: RmsNormParams) -> tuple[int, int, int]:
    """``(lim_sq, lim_ss, lim_y)``: a row (peak ``|x|``, ε code below 2**61) computes in int64
    where ``peak² ≤ lim_sq`` (``n · peak² < 2**63``: ``Σx²`` fits), ``Σx² ≤ lim_ss``
    (``Σx² · 2**(2G)`` fits), the mean square ``v = Σx² · 2**(2G) // n + ε`` fits and
    ``peak · max|γ| ≤ lim_y`` (``|x · γ · r| < 2**63`` with ``r ≤ 2**recip_bits``); other
    rows take exact Python integers."""
    top = (1 << 63) - 1
    return top // p.n, top >> (2 * p.rms_frac), top >> p.recip_bits


def _row_exact(x, g, eps: int, p: RmsNormParams) -> np.ndarray:
    """One row in Python integers: the same five steps, any width."""
    ss = sum(int(v) * int(v) for v in x)
    q = math.isqrt((ss << (2 * p.rms_frac)) // p.n + eps)
    k = max(q.bit_length() - 1, 0) + p.recip_bits
    r = (1 << k) // q if q else 0
    shift = k - p.recip_bits + p.shift_base
    return np.array([_fit_int(_round_shift_int(int(a) * int(b) * r, shift, p.out.rounding),
                              p.out) for a, b in zip(x, g, strict=True)], dtype=np.int64)


def rmsnorm_float(x, gamma, eps_code: int, p: RmsNormParams | None = None) -> np.ndarray:
    """float64 reference in units of the output LSB (not rounded)."""
    p = p or RmsNormParams()
    x = np.asarray(x, dtype=np.float64)
    g = np.asarray(gamma, dtype=np.float64) * p.gamma.lsb
    ms = np.mean(x * x, axis=-1, keepdims=True) + eps_code * 2.0 ** (-2 * p.rms_frac)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(ms > 0, x * g / np.sqrt(ms), 0.0)
    return y / p.out.lsb


def latency_cycles(p: RmsNormParams) -> int:
    """Cycles of one vector on :class:`rtl.vitallm.rmsnorm_int.RmsNorm`, first input beat to last output
    beat: ``C`` beats in (sum of squares), one quotient bit per cycle of ``ss·2**(2G) / n``,
    one root bit per cycle of the square root, the reciprocal, ``C`` beats out."""
    C = p.chunks
    return C + p.num_width + p.sqrt_steps + p.recip_bits + 2 + C + 2


def action_counts(p: RmsNormParams, rows: int = 1) -> dict[str, int]:
    return {
        "square_mac": rows * p.n,
        "isqrt": rows,
        "reciprocal": rows,
        "scale_mul": rows * p.n * 2,  # x·γ, then ·r
        "x_read_bits": rows * p.n * p.x.width * 2,
        "gamma_read_bits": rows * p.n * p.gamma.width,
        "out_bits": rows * p.n * p.out.width,
    }


def storage_bits(p: RmsNormParams) -> int:
    """Bits of the RTL's row buffer: each of the ``n`` elements with its gain."""
    return p.chunks * p.lanes * (p.x.width + p.gamma.width)
