"""Integer LayerNorm of one vector of ``n`` int8/uint8 codes: ``y = γ · (x − μ) / σ + β``.

The integer form of ``DequantizeLinear → LayerNormalization(γ, β, ε, axis=−1) →
QuantizeLinear`` (the compiler's ``IntLayerNorm``, :mod:`hwsim.compile.dialect`). This module
is the specification of the ``LayerNorm`` RTL in :mod:`rtl.common.layernorm`, the source of its
cycle formula and of the estimator's action counts.

LayerNorm is invariant to an offset and (but for ε) to a scale of its input, so it works on the
codes directly: the input zero point cancels in ``x − μ`` and the input scale ``s_x`` only
enters ``eps_code``. Exact integer formula, per vector ``x`` (codes, no float anywhere):

1. ``S1 = Σ x_i``, ``S2 = Σ x_i²``; ``V = n·S2 − S1²`` (``= n²·var``, exact);
2. ``v = V · 4**G + eps_code`` with ``eps_code = round(ε · n² · 4**G / s_x²)``
   (``G = sqrt_frac``);
3. ``q = isqrt(v)`` (:func:`hwsim.golden.common.isqrt.isqrt`): ``n·σ`` with ``G`` fractional
   bits; ``(r, k) = reciprocal(q, recip_bits)``
   (:func:`hwsim.golden.common.softmax_int.reciprocal`, ``r = floor(2**k / q)``; ``r = 0``
   where ``q = 0``); ``u = k − G``;
4. ``c_i = n·x_i − S1`` (``= n·(x_i − μ)``, exact);
5. ``y_i = sat_out(round_half_even((c_i · Γ_i · r + B_i · 2**u) · 2**−(u + F)))`` with the
   per-channel integer gains ``Γ_i ≈ γ_i / s_y · 2**F`` (``gamma_bits`` signed bits) and
   offsets ``B_i ≈ (β_i / s_y + z_y) · 2**F`` (``beta_bits`` signed bits; the output zero
   point is folded in), ``F = frac`` (:func:`params_for` picks the largest ``F`` that fits).

Precision (:func:`error_bound`): against the float64 LayerNorm of the same codes in output
LSBs, ``γ·(x − μ)/sqrt(var + ε/s_x²)/s_y + β/s_y + z_y``, the value before the final rounding
deviates by at most ``ε = Z·2**−(F+1)·(1 + 2**−G) + 2**−(F+1) + max|γ/s_y| · (Z·2**(1−R) +
2**−G + Z·4**−G)`` (``Z = sqrt(n − 1)`` the largest ``|x − μ|/σ``, ``R = recip_bits``):
rounding ``Γ`` and ``B``; the reciprocal's relative error ``< 2**(1−R)``; the floored root's
``1/q ≤ 2**−G/Z`` (``V ≥ n − 1`` whenever some ``c_i ≠ 0``); ``eps_code``'s rounding. Two
reals ``ε`` apart round to codes at most ``⌊ε⌋ + 1`` apart, so a non-saturated output code
is within ``⌊ε⌋ + 1`` LSB of the rounded float64 result (1 LSB for every parameter set
:func:`params_for` gives with ``max|γ/s_y| < 2**(G−1)``). ``tests/golden/test_layernorm_int.py``
checks both statements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common.isqrt import isqrt, sqrt_steps
from hwsim.golden.common.softmax_int import reciprocal
from quant.qtype import QType, Rounding, round_shift

__all__ = [
    "MAX_FRAC",
    "LayerNormParams",
    "action_counts",
    "error_bound",
    "interval_cycles",
    "latency_cycles",
    "layernorm_float",
    "layernorm_int",
    "params_for",
    "storage_bits",
    "stream_cycles",
    "tail_cycles",
]

#: the largest ``F`` :func:`params_for` chooses
MAX_FRAC = 30


@dataclass(frozen=True)
class LayerNormParams:
    """Elaboration parameters of the integer LayerNorm (every constant baked in).

    Parameters
    ----------
    n : int
        Vector length (the normalized axis).
    lanes : int
        Codes per beat; must divide ``n``.
    in_signed, out_signed : bool
        int8 (True) or uint8 (False) codes in and out.
    gamma : tuple of int
        ``Γ_i``: ``n`` signed integer gains of ``gamma_bits`` bits (``γ_i / s_y · 2**F``).
    beta : tuple of int
        ``B_i``: ``n`` signed integer offsets of ``beta_bits`` bits (``(β_i/s_y + z_y)·2**F``).
    frac : int
        ``F``: fractional bits of ``Γ`` and ``B``.
    eps_code : int
        ``round(ε · n² · 4**G / s_x²)`` (≥ 0).
    sqrt_frac : int
        ``G``: fractional bits of the root ``q``.
    recip_bits : int
        ``R``: precision of the reciprocal of ``q`` (≥ ``G``).
    gamma_bits, beta_bits : int
        Widths of ``Γ`` and ``B``.
    out_narrow : bool
        Signed output without its most negative code (−127 … 127).
    """

    n: int = 16
    lanes: int = 1
    in_signed: bool = True
    out_signed: bool = True
    gamma: tuple[int, ...] = (1 << 12,) * 16
    beta: tuple[int, ...] = (0,) * 16
    frac: int = 8
    eps_code: int = 0
    sqrt_frac: int = 8
    recip_bits: int = 16
    gamma_bits: int = 16
    beta_bits: int = 24
    out_narrow: bool = False

    def __post_init__(self):
        check_ints(self, "layernorm", (("n", 1, 1 << 14), ("lanes", 1, 1024),
                                       ("frac", 0, MAX_FRAC), ("sqrt_frac", 0, 16),
                                       ("recip_bits", 4, 30), ("gamma_bits", 2, 25),
                                       ("beta_bits", 2, 40)))
        if self.n % self.lanes:
            raise HwsimError(f"layernorm lanes ({self.lanes}) must divide n ({self.n})")
        for name in ("in_signed", "out_signed", "out_narrow"):
            if not isinstance(getattr(self, name), bool):
                raise HwsimError(f"layernorm {name} must be true or false, "
                                 f"not {getattr(self, name)!r}")
        for name, bits in (("gamma", self.gamma_bits), ("beta", self.beta_bits)):
            vals = getattr(self, name)
            if isinstance(vals, np.ndarray):
                vals = tuple(int(v) for v in vals)
                object.__setattr__(self, name, vals)
            if not isinstance(vals, tuple | list) or len(vals) != self.n or any(
                    isinstance(v, bool) or not isinstance(v, int | np.integer)
                    or not -(1 << (bits - 1)) <= v < (1 << (bits - 1)) for v in vals):
                raise HwsimError(f"layernorm {name} must be {self.n} integers of {bits} "
                                 "signed bits")
            object.__setattr__(self, name, tuple(int(v) for v in vals))
        if isinstance(self.eps_code, bool) or not isinstance(self.eps_code, int | np.integer) \
                or self.eps_code < 0:
            raise HwsimError(f"layernorm eps_code must be a non-negative integer, "
                             f"not {self.eps_code!r}")
        if self.recip_bits < self.sqrt_frac:
            raise HwsimError("layernorm recip_bits must be ≥ sqrt_frac")
        if self.t_width > 63 or self.u_max + self.frac > 62:
            raise HwsimError(f"layernorm datapath needs {self.t_width} bits (shift "
                             f"{self.u_max + self.frac}): reduce frac, eps_code or n")

    # ---- formats and widths (the RTL sizes its registers from these) ------------------------
    @property
    def inp(self) -> QType:
        return QType(8, signed=self.in_signed)

    @property
    def out(self) -> QType:
        return QType(8, signed=self.out_signed, narrow=self.out_narrow and self.out_signed,
                     rounding=Rounding.HALF_EVEN)

    @property
    def chunks(self) -> int:
        return self.n // self.lanes

    @property
    def x_peak(self) -> int:
        """The largest ``|x|``."""
        return 128 if self.in_signed else 255

    @property
    def s1_width(self) -> int:
        """Signed bits of ``S1`` (and of ``c_i``)."""
        return (self.n * 255).bit_length() + 1

    @property
    def s2_width(self) -> int:
        """Unsigned bits of ``S2``."""
        return (self.n * self.x_peak ** 2).bit_length()

    @property
    def v_width(self) -> int:
        """Unsigned bits of ``v`` (``V ≤ n²·255²/4``)."""
        return (((self.n * self.n * 255 * 255) // 4 << (2 * self.sqrt_frac))
                + self.eps_code).bit_length()

    @property
    def q_width(self) -> int:
        """Bits of the root ``q``."""
        return sqrt_steps(self.v_width)

    @property
    def sqrt_steps(self) -> int:
        return sqrt_steps(self.v_width)

    @property
    def u_max(self) -> int:
        """The largest ``u = k − G``."""
        return self.q_width - 1 + self.recip_bits - self.sqrt_frac

    @property
    def t_width(self) -> int:
        """Signed bits of ``c·Γ·r + B·2**u`` (never overflows)."""
        peak = (self.n * 255) * (1 << (self.gamma_bits - 1)) * (1 << self.recip_bits) \
            + (1 << (self.beta_bits - 1 + self.u_max))
        return peak.bit_length() + 1


# ------------------------------------------------------------------------------------------
def layernorm_int(x, p: LayerNormParams) -> np.ndarray:
    """Golden integer LayerNorm of each vector along the last axis of ``x`` (codes of
    ``p.inp``, last axis ``p.n``). Returns int64 codes of ``p.out``."""
    x = p.inp.check(x, "layernorm input")
    if x.ndim == 0 or x.shape[-1] != p.n:
        raise HwsimError(f"layernorm expects vectors of {p.n} codes, got shape {x.shape}")
    g = np.asarray(p.gamma, dtype=np.int64)
    b = np.asarray(p.beta, dtype=np.int64)
    s1 = np.sum(x, axis=-1, keepdims=True)
    s2 = np.sum(x * x, axis=-1, keepdims=True)
    v = ((p.n * s2 - s1 * s1) << (2 * p.sqrt_frac)) + int(p.eps_code)
    q = isqrt(v)
    r, k = reciprocal(q, p.recip_bits)
    r = np.where(q == 0, 0, r)
    u = k - p.sqrt_frac
    c = p.n * x - s1
    t = c * g * r + (b << u)
    return p.out.fit(round_shift(t, u + p.frac, Rounding.HALF_EVEN))


def layernorm_float(x, gamma, beta, eps: float, in_scale: float, out_scale: float,
                    out_zero: int = 0) -> np.ndarray:
    """float64 LayerNorm of the codes ``x`` along the last axis, in output LSBs (not rounded
    or saturated): ``γ·(x − μ)/sqrt(var + ε/s_x²)/s_y + β/s_y + z_y``."""
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    z = (x - mu) / np.sqrt(var + float(eps) / float(in_scale) ** 2)
    return (np.asarray(gamma, np.float64) * z + np.asarray(beta, np.float64)) / out_scale \
        + out_zero


def params_for(gamma, beta, eps: float, in_scale: float, out_scale: float, out_zero: int = 0,
               *, lanes: int = 1, in_signed: bool = True, out_signed: bool = True,
               out_narrow: bool = False, sqrt_frac: int = 8, recip_bits: int = 16,
               gamma_bits: int = 16, beta_bits: int = 24) -> LayerNormParams:
    """The :class:`LayerNormParams` of ``Q_out(LayerNorm(s_x·(x − z_x); γ, β, ε))``: the
    largest ``F`` ≤ :data:`MAX_FRAC` whose ``Γ`` and ``B`` (rounded half even) fit their
    widths and keep the datapath within 63 bits."""
    gr = np.asarray(gamma, np.float64).ravel() / float(out_scale)
    br = np.asarray(beta, np.float64).ravel() / float(out_scale) + int(out_zero)
    if gr.shape != br.shape or gr.size < 1:
        raise HwsimError("layernorm gamma and beta must have one value per channel")
    for name, s in (("eps", eps), ("in_scale", in_scale), ("out_scale", out_scale)):
        if not (isinstance(s, int | float | np.floating) and np.isfinite(s) and s >= 0):
            raise HwsimError(f"layernorm {name} must be a finite real ≥ 0, not {s!r}")
    if not (in_scale > 0 and out_scale > 0) or not (np.all(np.isfinite(gr))
                                                     and np.all(np.isfinite(br))):
        raise HwsimError("layernorm scales must be positive and gamma, beta finite")
    n = gr.size
    eps_code = round(float(eps) * n * n * 4.0 ** sqrt_frac / float(in_scale) ** 2)
    common = dict(n=n, lanes=lanes, in_signed=bool(in_signed), out_signed=bool(out_signed),
                  out_narrow=bool(out_narrow), eps_code=eps_code, sqrt_frac=sqrt_frac,
                  recip_bits=recip_bits, gamma_bits=gamma_bits, beta_bits=beta_bits)
    for f in range(MAX_FRAC, -1, -1):
        g = np.round(gr * 2.0 ** f)
        b = np.round(br * 2.0 ** f)
        if np.max(np.abs(g)) >= 2 ** (gamma_bits - 1) or np.max(np.abs(b)) >= 2 ** (beta_bits - 1):
            continue
        try:
            return LayerNormParams(**common, frac=f, gamma=tuple(int(v) for v in g),
                                   beta=tuple(int(v) for v in b))
        except HwsimError:
            continue
    raise HwsimError("layernorm gamma/beta do not fit their integer widths at any frac")


def error_bound(p: LayerNormParams, gamma_ratio_peak: float) -> float:
    """``ε`` of the module docstring: the largest deviation, in output LSBs and before the
    final rounding, of the integer result from the float64 LayerNorm of the same codes, for
    gains with ``max|γ/s_y|`` = ``gamma_ratio_peak``."""
    Z = math.sqrt(max(p.n - 1, 0))
    G, R, F = p.sqrt_frac, p.recip_bits, p.frac
    return (Z * 2.0 ** -(F + 1) * (1 + 2.0 ** -G) + 2.0 ** -(F + 1)
            + gamma_ratio_peak * (Z * 2.0 ** (1 - R) + 2.0 ** -G + Z * 4.0 ** -G))


# ------------------------------------------------------------------------------------------
# Cycle formulas (rtl.common.layernorm states these; cocotb and the Amaranth tests measure them)
def latency_cycles(p: LayerNormParams) -> int:
    """Cycles from the first accepted ``x`` beat to the last ``y`` beat of one vector, both
    counted: ``C = n/lanes`` beats in (sums), one cycle for ``v``, ``S`` root bits, the
    reciprocal (``R + 2``), two pipeline stages and ``C`` beats out."""
    C = p.chunks
    return 2 * C + 1 + p.sqrt_steps + p.recip_bits + 4


def interval_cycles(p: LayerNormParams) -> int:
    """Cycles between the first beats of back-to-back vectors: one vector at a time (the
    next is taken in the cycle after the last output beat)."""
    return latency_cycles(p)


def tail_cycles(p: LayerNormParams) -> int:
    """Cycles from the last accepted ``x`` beat of a vector to its last ``y`` beat."""
    return latency_cycles(p) - p.chunks


def stream_cycles(p: LayerNormParams, vectors: int = 1) -> int:
    """Cycles for ``vectors`` back-to-back vectors (no idle input, no back-pressure)."""
    return vectors * interval_cycles(p)


def action_counts(p: LayerNormParams, vectors: int = 1) -> dict[str, int]:
    """Hardware actions for ``vectors`` vectors."""
    n = vectors * p.n
    return {
        "square_mac": n,          # S2 (and S1 beside it)
        "isqrt": vectors,
        "reciprocal": vectors,
        "center": n,              # c = n·x − S1
        "scale_mul": 2 * n,       # c·Γ, then ·r
        "add32": 2 * n,           # the offset B·2**u and the rounding increment
        "x_read_bits": 2 * n * 8,
        "gamma_read_bits": n * (p.gamma_bits + p.beta_bits),
        "out_bits": 8 * n,
        "cycles": stream_cycles(p, vectors),
    }


def storage_bits(p: LayerNormParams) -> int:
    """Bits of the RTL's vector buffer and its Γ/B ROM."""
    return p.n * (8 + p.gamma_bits + p.beta_bits)
