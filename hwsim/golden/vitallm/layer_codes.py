"""Integer codes and primitives every unit of the BitNet decoder layer shares (the leaf of the
decoder-layer goldens: it imports none of them).

The number formats of the layer's datapath (``NORM_OUT``, ``WIDE``, ``NORM_IN_BITS``, …), the
layer's integer parameters (:class:`NormCodes`, :class:`ProjCodes`, :class:`LayerCodes`), and
the steps the model reference (:mod:`hwsim.golden.vitallm.bitnet_layer`) and the kernels built from it
(``norm-quant``, ``eps-divider``, ``qkv-frontend``, ``attn-out``, ``ffn-in``, ``ffn-out``, …)
compute alike: a row's shift to ``NORM_IN_BITS`` bits (:func:`shift_rows`), the integer ε of a
norm (:func:`eps_constant`, :func:`eps_code`), the integer RMSNorm of rows (:func:`rms_rows`),
the per-token activation quantizer (:func:`act_quant`), RoPE and the static int8 requantizer
(:func:`rope`, :func:`to_static_int8`), the v-rescale (:func:`v_rescale`), the residual add
(:func:`residual_add`) and the FFN's gated products: ``relu(g)²·u`` (:func:`relu2_mul`, BitNet
b1.58 2B4T) and ``silu(g)·u`` (:func:`silu_mul`, the 1bitLLM / LLaMA form) with its integer SiLU
(:func:`silu_table`, :func:`silu_int`).

Integer SiLU. The gate accumulator ``g`` (step ``amax · c``, ``c`` fixed per layer) is first
requantized to ``GATE`` codes at the fixed real step ``2**-SILU_FRAC``
(:func:`silu_gate`: ``requantize(g · amax, M, S)``, half even, saturated to 24 bits). The SiLU of
a code ``n`` uses ``silu(x) = x + silu(−x)``: one table ``T[k] = round(silu(−k · 2**-F) · 2**F)``
(``F = SILU_FRAC``, half up, ``k = 0 … 2**SILU_LUT_BITS − 1``, values −36 … 0) serves both signs,
``silu_int(n) = T[−n]`` for ``n ≤ 0`` and ``n + T[n]`` for ``n > 0``, and ``T[k] = 0`` beyond the
table (``|silu(−x)| ≤ 8 · e⁻⁸ < 2**-(F+1)`` for ``x ≥ 8``). Since ``n`` is exact, every output is
``silu(n · 2**-F)`` rounded to the nearest ``2**-F``: the error is at most ½ output LSB for every
input code (tested exhaustively against float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import attention_head as ah
from hwsim.golden.common import exact
from hwsim.golden.vitallm import rmsnorm_int as rn
from hwsim.golden.vitallm import ternary_mvu as mvu
from hwsim.golden.vitallm.absmax_barrier import RECIP_BITS
from quant.qtype import INT8, QType, Rounding, requantize, round_shift

__all__ = [
    "ACT_RECIP_BITS",
    "EPS_CAP",
    "FFN_SUB_EPS_POWER",
    "GATE",
    "MULT_BITS",
    "NORM_GAMMA_BITS",
    "NORM_IN_BITS",
    "NORM_OUT",
    "NORM_RECIP_BITS",
    "RMS_FRAC",
    "ROPE_CODE",
    "ROPE_FRAC",
    "SILU_FRAC",
    "SILU_LUT_BITS",
    "SILU_SUB_EPS_POWER",
    "V_RATIO_FRAC",
    "WIDE",
    "LayerCodes",
    "NormCodes",
    "ProjCodes",
    "act_quant",
    "act_quant_wide",
    "eps_code",
    "eps_constant",
    "norm_eps_codes",
    "norm_params",
    "relu2_mul",
    "requantize_heads",
    "residual_add",
    "rms_rows",
    "rms_shifted",
    "rope",
    "shift_rows",
    "shift_width",
    "silu_gate",
    "silu_int",
    "silu_mul",
    "silu_table",
    "to_static_int8",
    "v_ratios",
    "v_rescale",
]

NORM_OUT = QType(24, frac=16)        # RMSNorm output codes: real range ±128
ROPE_FRAC = 20                       # cos / sin table codes
RMS_FRAC = 4                         # G of the integer RMSNorm (Σx² · 2**2G stays below 2**62)
WIDE = QType(32)                     # container of wide integer codes fed to the norms
NORM_IN_BITS = 22                    # a norm input row is right-shifted to at most this many bits
V_RATIO_FRAC = 15                    # per-head v-step ratio to the layer's largest v step
NORM_GAMMA_BITS = 19                 # RMSNorm gain codes (fractional bits from the peak)
NORM_RECIP_BITS = 19                 # reciprocal of the RMS
ACT_RECIP_BITS = RECIP_BITS          # reciprocal of the amax in the activation quantizer
MULT_BITS = 24                       # static requantization multipliers
ROPE_CODE = QType(ROPE_FRAC + 2, frac=ROPE_FRAC)   # cos / sin table codes
SILU_FRAC = 7                        # SiLU input and output codes: real step 2**-7
SILU_LUT_BITS = 10                   # SiLU table: 2**10 entries, inputs −8 … 0 (real)
GATE = QType(24, frac=SILU_FRAC)     # requantized gate codes (saturated: real range ±65536)


@dataclass
class NormCodes:
    """One RMSNorm of the layer: gain codes, kernel parameters and its integer ε.

    ``eps`` is the constant ``E`` of :func:`eps_constant` (an exact integer, possibly wider than
    64 bits) and ``eps_power`` the power of the row amax in the input step squared (0: the input
    step is fixed); each row's ε code is :func:`eps_code` of them, the row's shift and amax.
    """

    gamma: np.ndarray
    p: rn.RmsNormParams
    eps: int = 0
    eps_power: int = 0

    def __post_init__(self):
        check_ints(self, "norm", ("eps", "eps_power"), lo=0, types=(int, np.integer))


@dataclass
class ProjCodes:
    W: np.ndarray      # ternary codes (rows, cols)
    scale: float       # real weight step (mean|W| · gain); enters only build-time constants


@dataclass
class LayerCodes:
    """Integer parameters of one decoder layer (built by
    :func:`models.bitnet.integer_model.build_integer_model`)."""

    attn_norm: NormCodes
    ffn_norm: NormCodes
    attn_sub: NormCodes | None                     # None: no SubLN (1bitLLM configs)
    ffn_sub: NormCodes | None
    proj: dict[str, ProjCodes]
    qkv_mult: dict[str, list[tuple[int, int]]]     # per head: acc·amax → static int8 code
    s_qkv: dict[str, np.ndarray]                   # static per-head steps
    score_mult: list[tuple[int, int]]              # per query head
    wide_step: float                               # real step of the attention "wide" codes
                                                   # (sets attn_sub.eps at build time)
    res_mult: dict[str, tuple[int, int]]           # wo / w2: acc·amax → residual codes
    act: str = "relu2"                             # gated FFN: relu2 or silu
    gate_mult: tuple[int, int] | None = None       # silu: g·amax → GATE codes (M, S)

    def fused(self, *names: str) -> mvu.TernaryWeights:
        """The projections ``names`` stacked row-wise as one checked weight matrix (one GEMM
        computes them all: their accumulators side by side), built on first use (again if a
        ``W`` is replaced; a ``W`` must not be modified in place after that)."""
        cache = self.__dict__.setdefault("_fused", {})
        ws = tuple(self.proj[n].W for n in names)
        cached = cache.get(names)
        if cached is None or any(a is not b for a, b in zip(cached[0], ws, strict=True)):
            cached = cache[names] = (ws, mvu.TernaryWeights(np.concatenate(ws, axis=0)))
        return cached[1]

    @property
    def prod_power(self) -> int:
        """Power of the FFN input's amax in the step of the gated product: ``relu(g)²·u``
        has step ∝ amax³, ``silu(g)·u`` (its SiLU at a fixed step) ∝ amax."""
        return 3 if self.act == "relu2" else 1


def norm_params(n: int, lanes: int, gamma_frac: int) -> rn.RmsNormParams:
    """The formats of every RMSNorm of the layer: ``WIDE`` input rows (at most
    ``NORM_IN_BITS`` significant bits after :func:`shift_rows`), ``NORM_GAMMA_BITS``-bit gains
    with ``gamma_frac`` fractional bits, ``NORM_OUT`` codes, ``G = RMS_FRAC``."""
    return rn.RmsNormParams(n=n, lanes=lanes, x=WIDE, gamma=QType(NORM_GAMMA_BITS, frac=gamma_frac),
                            out=NORM_OUT, rms_frac=RMS_FRAC, recip_bits=NORM_RECIP_BITS)


EPS_CAP = 1 << 62                    # an ε code saturates here (the norm's int64 sums)
FFN_SUB_EPS_POWER = 6                # relu(g)²·u has step ∝ amax³, so step² ∝ amax⁶
SILU_SUB_EPS_POWER = 2               # silu(g)·u has step ∝ amax (u's), so step² ∝ amax²

def eps_constant(eps: float, step: float) -> int:
    """``E = round(ε · 2**(2G) / step²)`` (half up, exact from the two float64 values): ε in
    units of the norm's mean square for input codes at the fixed real step ``step``.

    Fixed at model build time; an unbounded Python integer (the FFN SubLN's step is tiny, so its
    ``E`` has far more than 64 bits). :func:`eps_code` derives every row's code from it."""
    if not (isinstance(eps, int | float) and math.isfinite(eps) and eps >= 0):
        raise HwsimError(f"norm ε must be a finite non-negative number, not {eps!r}")
    if not (isinstance(step, int | float) and math.isfinite(step) and step > 0):
        raise HwsimError(f"norm input step must be a finite positive number, not {step!r}")
    return math.floor(Fraction(eps) * 4 ** RMS_FRAC / Fraction(step) ** 2 + Fraction(1, 2))


def eps_code(E: int, shift: int, amax: int = 1, power: int = 0) -> int:
    """ε code of one norm row, from integers only: ``min(floor((2E + D) / (2D)), EPS_CAP)`` with
    ``D = amax**power · 4**shift`` (``E / D`` rounded half up).

    A row shifted right by ``shift`` bits has its step multiplied by ``2**shift``; a row whose
    input step is ``c · amax**k`` (``c`` folded into ``E``) has ``power = 2k``. ``D = 0`` (a zero
    amax with ``power > 0``: the row is all zeros, its output 0 whatever ε) gives ``EPS_CAP``.
    With ``power = 0`` this is ``E`` rounding-shifted right by ``2·shift`` bits."""
    for name, v in (("E", E), ("shift", shift), ("amax", amax), ("power", power)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 0:
            raise HwsimError(f"eps_code {name} must be a non-negative integer, not {v!r}")
    D = int(amax) ** int(power) << (2 * int(shift))
    if D == 0:
        return EPS_CAP
    return min((2 * int(E) + D) // (2 * D), EPS_CAP)


def shift_width(width: int) -> int:
    """Bits of the shift port of a norm unit that takes rows of ``width``-bit codes
    (:func:`shift_rows`: the peak's bits above ``NORM_IN_BITS``; at least 1)."""
    return max(1, (width - NORM_IN_BITS).bit_length())


def shift_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, shifts)``: each row of ``x`` shifted right (half even) by the bits that bring
    its peak to ``NORM_IN_BITS`` bits (``shifts``, int64; 0 for a row that fits already)."""
    x = np.asarray(x, dtype=np.int64)
    peak = np.maximum(-x.min(axis=-1), x.max(axis=-1))
    shifts = np.maximum(exact.bit_length(peak) - NORM_IN_BITS, 0)
    if not shifts.any():
        return x, shifts
    return round_shift(x, shifts[:, None], Rounding.HALF_EVEN), shifts


def norm_eps_codes(norm: NormCodes, shifts, amax=None) -> np.ndarray:
    """The ε code (:func:`eps_code`) of each row of ``norm``'s input, from the rows' shifts and
    amax (``None``: the norm's step does not depend on it, ``eps_power = 0``)."""
    shifts = np.asarray(shifts, dtype=np.int64)
    if amax is None:
        if norm.eps_power:
            raise HwsimError("this norm's ε depends on the rows' amax; pass amax")
        amax = np.ones(shifts.shape, dtype=np.int64)
    amax = np.asarray(amax, dtype=np.int64)
    if amax.shape != shifts.shape:
        raise HwsimError(f"a norm needs one amax per row ({shifts.shape}), got {amax.shape}")
    if (shifts.size and shifts.min() < 0) or (amax.size and amax.min() < 0):
        raise HwsimError("norm row shifts and amax must be non-negative")
    # eps_code of every row at once, in exact Python integers (object arrays)
    E = int(norm.eps)
    D = (amax.astype(object) ** int(norm.eps_power)) * (1 << (2 * shifts).astype(object))
    zero = D == 0
    codes = (2 * E + D) // np.where(zero, 1, 2 * D)
    codes = np.where(zero | (codes > EPS_CAP), EPS_CAP, codes)
    return codes.astype(np.int64).reshape(shifts.shape)


def rms_shifted(xs: np.ndarray, norm: NormCodes, codes, *, checked: bool = False) -> np.ndarray:
    """Integer RMSNorm of shifted rows ``xs`` (rows, n) with one ε code per row (``checked``:
    ``xs`` are int64 rows of :func:`shift_rows`, no range pass)."""
    return rn.rmsnorm_int(xs, norm.gamma, np.asarray(codes, dtype=np.int64), norm.p,
                          checked=checked)


def rms_rows(x: np.ndarray, norm: NormCodes, amax=None) -> np.ndarray:
    """Integer RMSNorm of each row of ``x`` (any integer width).

    Each row is first shifted right by :func:`shift_rows` (RMSNorm is scale invariant; the row
    keeps ``NORM_IN_BITS`` significant bits) and gets the ε code :func:`eps_code` of
    ``norm.eps``, its shift and its ``amax`` (one per row; needed when ``norm.eps_power > 0``).
    """
    xs, shifts = shift_rows(x)          # int64 rows of at most NORM_IN_BITS bits: no range pass
    return rms_shifted(xs, norm, norm_eps_codes(norm, shifts, amax), checked=True)


def act_quant(norm_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-token absmax activation quantizer (norm codes → int8 + amax): hwsim's one absmax
    requantizer (:func:`hwsim.golden.common.attention_head.absmax_requant`, the rule of the
    ``absmax-barrier`` kernel, :mod:`hwsim.golden.vitallm.absmax_barrier`)."""
    return ah.absmax_requant(norm_codes, INT8, ACT_RECIP_BITS)


def rope(acc: np.ndarray, cos: np.ndarray, sin: np.ndarray, pos0: int = 0) -> np.ndarray:
    """acc (T, heads, hd) exact integers at positions ``pos0 …`` → rotated, same scale
    (leading batch axes (…, T, heads, hd) share the positions)."""
    half = acc.shape[-1] // 2
    rot = np.concatenate([-acc[..., half:], acc[..., :half]], axis=-1)
    T = acc.shape[-3]
    c, s = cos[pos0:pos0 + T, None, :], sin[pos0:pos0 + T, None, :]
    return round_shift(acc * c + rot * s, ROPE_FRAC, Rounding.HALF_EVEN)


def to_static_int8(x: np.ndarray, amax: np.ndarray, mults) -> np.ndarray:
    """x (T, heads, hd) integers at step amax·unit → int8 codes at each head's static step."""
    return requantize_heads(np.asarray(x, dtype=np.int64) * np.asarray(amax)[..., None, None],
                            mults, INT8)


def requantize_heads(x: np.ndarray, mults, out: QType) -> np.ndarray:
    """``requantize(x[..., h, :], M_h, S_h, out)`` for every head ``h`` at once: ``x`` (…, H, d)
    integers, ``mults`` one ``(M, S)`` per head (exact, as :func:`quant.qtype.requantize`)."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim < 2 or x.shape[-2] != len(mults):
        raise HwsimError(f"{len(mults)} multipliers for heads of shape {x.shape}")
    M = np.array([int(m) for m, _ in mults], dtype=object)[:, None]
    S = np.array([int(s) for _, s in mults], dtype=np.int64)[:, None]
    return requantize(x, M, S, out)


def v_ratios(L: LayerCodes, heads: int, kv_heads: int) -> list[int]:
    """Per query head, the ``V_RATIO_FRAC``-bit ratio of its KV head's static v step to the
    layer's largest (build-time constants, at most ``2**V_RATIO_FRAC``)."""
    sv_max = float(L.s_qkv["v"].max())
    rep = heads // kv_heads
    return [round(float(L.s_qkv["v"][h // rep]) / sv_max * (1 << V_RATIO_FRAC))
            for h in range(heads)]


def v_rescale(o, amax_o, ratio) -> np.ndarray:
    """One head's attention outputs ``o`` (…, hd) int8 with their row ``amax_o`` (…) → "wide"
    codes at the layer's common v step: ``round_half_even(o · amax_o · ratio / 2**15)``.
    ``ratio``: one integer, or an array broadcasting against ``amax_o`` (e.g. one per head of
    ``o`` (T, H, hd))."""
    o = np.asarray(o, dtype=np.int64)
    amax_o = np.asarray(amax_o, dtype=np.int64)
    r = np.asarray(ratio, dtype=np.int64)[..., None]
    return round_shift(o * amax_o[..., None] * r, V_RATIO_FRAC, Rounding.HALF_EVEN)


def residual_add(x, acc, amax, mult: tuple[int, int], res: QType) -> np.ndarray:
    """``x + requantize(acc · amax, M, S, res)``: a projection's exact accumulators ``acc``
    (T, n), at the step of their activations' per-row ``amax`` (T,), rescaled to residual codes
    and added to the residual rows ``x`` (T, n). The add itself is exact (not saturated).

    ``amax`` may be any per-row integer scale (e.g. the product of two amax and a shift,
    :func:`act_quant_wide`); a product ``acc · amax`` past 62 bits is formed in Python
    integers, so the result is exact for any width."""
    acc = np.asarray(acc, dtype=np.int64)
    scale = np.ravel(amax)
    peak = max(-int(acc.min()), int(acc.max())) if acc.size else 0
    if peak * (int(scale.max()) if scale.size else 0) < 1 << 62:
        prod = acc * scale.astype(np.int64)[:, None]
    else:
        prod = acc.astype(object) * scale.astype(object)[:, None]
    return np.asarray(x, dtype=np.int64) + requantize(prod, *mult, res)


def act_quant_wide(x) -> tuple[np.ndarray, np.ndarray]:
    """The activation quantizer on rows of any integer width (no norm before it: the 1bitLLM
    configurations without SubLN): each row is shifted right to ``NORM_IN_BITS`` bits
    (:func:`shift_rows`), then :func:`act_quant`. Returns ``(a, scale)``: int8 codes and each
    row's ``amax << shift`` (Python integers in an object array), so that ``a · scale / 127``
    approximates the row at its input step."""
    xs, shifts = shift_rows(x)
    a, amax = act_quant(xs)
    return a, amax.astype(object) << shifts.astype(object)


_SILU_TABLE: np.ndarray | None = None


def silu_table() -> np.ndarray:
    """The SiLU table ``T[k] = floor(silu(−k · 2**-F) · 2**F + ½)``, ``k = 0 … 2**SILU_LUT_BITS
    − 1`` (int64, values −36 … 0; ``F = SILU_FRAC``), from float64 (no value lies within
    3·10⁻⁴ LSB of a rounding tie, so the float evaluation fixes every entry). Read-only."""
    global _SILU_TABLE
    if _SILU_TABLE is None:
        x = -np.arange(1 << SILU_LUT_BITS, dtype=np.float64) / (1 << SILU_FRAC)
        t = np.floor(x / (1.0 + np.exp(-x)) * (1 << SILU_FRAC) + 0.5).astype(np.int64)
        t.setflags(write=False)
        _SILU_TABLE = t
    return _SILU_TABLE


def silu_int(n) -> np.ndarray:
    """SiLU of ``GATE`` codes ``n`` (real ``n · 2**-SILU_FRAC``) → codes at the same step:
    ``T[−n]`` for ``n ≤ 0``, ``n + T[n]`` for ``n > 0``, ``T[k] = 0`` for ``k ≥ 2**SILU_LUT_BITS``
    (see the module docstring; error ≤ ½ LSB for every code)."""
    n = np.asarray(n, dtype=np.int64)
    t = silu_table()
    k = np.abs(n)
    tk = np.where(k < t.size, t[np.minimum(k, t.size - 1)], 0)
    return np.where(n > 0, n, 0) + tk


def silu_gate(g, amax, mult: tuple[int, int]) -> np.ndarray:
    """The gate accumulators ``g`` (T, ffn) of rows whose FFN activations have ``amax`` (T,) →
    ``GATE`` codes: ``requantize(g · amax, M, S, GATE)`` (half even, saturated)."""
    g = np.asarray(g, dtype=np.int64)
    amax = np.asarray(amax, dtype=np.int64)
    return requantize(g * amax[..., None], *mult, GATE)


def silu_mul(g, u, amax, mult: tuple[int, int]) -> np.ndarray:
    """The FFN's gated product ``silu(g)·u`` of the w1 and w3 accumulators: ``silu_int`` of the
    requantized gate (:func:`silu_gate`) times ``u``, exact (int64; ``|·| < 2**23 · max|u|``).
    Its step is ``2**-SILU_FRAC`` times ``u``'s (∝ the row's amax)."""
    return silu_int(silu_gate(g, amax, mult)) * np.asarray(u, dtype=np.int64)


def relu2_mul(g, u) -> np.ndarray:
    """The FFN's gated product ``relu(g)² · u`` of the w1 and w3 accumulators, exact (int64;
    the caller bounds the operands so the product fits: ``hwsim.golden.vitallm.ffn_in`` sizes it)."""
    gp = np.maximum(np.asarray(g, dtype=np.int64), 0)
    return gp * gp * np.asarray(u, dtype=np.int64)

