"""One BitNet b1.58 decoder layer on integer codes: the VitaLLM decoder-layer datapath.

This module is the single definition of a layer of hwsim's integer BitNet
(:func:`models.bitnet.integer_model.integer_forward` loops over :func:`layer_forward`), of one
decode step of it with a KV cache (:func:`decode_step`), and of the accelerator's cycle and
KV-traffic counts for one decode step (:func:`decode_cycles`, :func:`kv_read_bytes`), which the
estimator's VitaLLM target and ``hwsim bench vitallm`` import.

Datapath of one layer (``x`` residual codes, integer everywhere)::

    a  = barrier(rmsnorm(x))                 int8 + per-token amax (absmax re-quantization)
    q, k, v = TINT(wq, wk, wv) · a           exact ternary accumulators
    q, k = rope(q), rope(k)                  Q1.20 tables
    q8, k8, v8 = static per-head int8        requantize(acc · amax, M, S)
    o_h = attention(q8_h, K_cache, V_cache)  Booth int8 core: dense, or LO surrogate + top-K
    x += requant(TINT(wo) · barrier(subln(o)))
    a  = barrier(rmsnorm(x))
    x += requant(TINT(w2) · barrier(subln(relu(w1·a)² · (w3·a))))

Attention is pluggable (``attend``): :func:`dense_attend` (causal attention on every cached
token) or :func:`sparse_attend` (VitaLLM's predictive sparse attention: each query keeps
``ceil(ratio · L)`` of its ``L`` visible tokens by the leading-one surrogate and attends to
those exactly; ratio 1 is dense, code for code).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import INT8, QType, Rounding, requantize, round_shift

from . import absmax_barrier as ab
from . import attention_head as ah
from . import lo_topk as lt
from . import rmsnorm_int as rn
from . import sparse_attention as sa
from . import ternary_mvu as mvu

if TYPE_CHECKING:   # these units build on this module; imported where used
    from . import attn_layer as al
    from . import attn_out as ao
    from . import decoder_layer_rtl as lr
    from . import ffn_in as fi
    from . import ffn_out as fo
    from . import norm_quant as nq

__all__ = [
    "ACT_RECIP_BITS",
    "EPS_CAP",
    "FFN_SUB_EPS_POWER",
    "NORM_OUT",
    "DecodeAttentionParams",
    "DecodeStepParams",
    "DecoderLayerParams",
    "LayerCodes",
    "NormCodes",
    "ProjCodes",
    "QkvFrontendParams",
    "decode_attention",
    "decode_attention_cycles",
    "decode_cycles",
    "decode_step",
    "decode_step_attention",
    "decode_step_cycles",
    "decode_step_phases",
    "dense_attend",
    "eps_code",
    "eps_constant",
    "kv_read_bytes",
    "layer_forward",
    "norm_eps_codes",
    "norm_params",
    "qkv_codes",
    "qkv_frontend",
    "qkv_frontend_cycles",
    "relu2_mul",
    "residual_add",
    "rms_rows",
    "rms_shifted",
    "shift_rows",
    "sparse_attend",
    "storage_bits",
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
ACT_RECIP_BITS = 16                  # reciprocal of the amax in the activation quantizer


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
    attn_sub: NormCodes
    ffn_sub: NormCodes
    proj: dict[str, ProjCodes]
    qkv_mult: dict[str, list[tuple[int, int]]]     # per head: acc·amax → static int8 code
    s_qkv: dict[str, np.ndarray]                   # static per-head steps
    score_mult: list[tuple[int, int]]              # per query head
    wide_step: float                               # real step of the attention "wide" codes
                                                   # (sets attn_sub.eps at build time)
    res_mult: dict[str, tuple[int, int]]           # wo / w2: acc·amax → residual codes


# ------------------------------------------------------------------------------------------
# The integer layer
def norm_params(n: int, lanes: int, gamma_frac: int) -> rn.RmsNormParams:
    """The formats of every RMSNorm of the layer: ``WIDE`` input rows (at most
    ``NORM_IN_BITS`` significant bits after :func:`shift_rows`), ``NORM_GAMMA_BITS``-bit gains
    with ``gamma_frac`` fractional bits, ``NORM_OUT`` codes, ``G = RMS_FRAC``."""
    return rn.RmsNormParams(n=n, lanes=lanes, x=WIDE, gamma=QType(NORM_GAMMA_BITS, frac=gamma_frac),
                            out=NORM_OUT, rms_frac=RMS_FRAC, recip_bits=NORM_RECIP_BITS)


EPS_CAP = 1 << 62                    # an ε code saturates here (the norm's int64 sums)
FFN_SUB_EPS_POWER = 6                # relu(g)²·u has step ∝ amax³, so step² ∝ amax⁶


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


def shift_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, shifts)``: each row of ``x`` shifted right (half even) by the bits that bring
    its peak to ``NORM_IN_BITS`` bits (``shifts``, int64; 0 for a row that fits already)."""
    x = np.asarray(x, dtype=np.int64)
    peak = np.abs(x).max(axis=-1)
    shifts = np.array([max(0, int(v).bit_length() - NORM_IN_BITS) for v in peak], dtype=np.int64)
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
    return np.array([eps_code(norm.eps, int(s), int(a), norm.eps_power)
                     for s, a in zip(shifts.ravel(), amax.ravel(), strict=True)],
                    dtype=np.int64).reshape(shifts.shape)


def rms_shifted(xs: np.ndarray, norm: NormCodes, codes) -> np.ndarray:
    """Integer RMSNorm of shifted rows ``xs`` with one ε code per row (rows sharing a code go
    through the golden kernel together)."""
    out = np.empty(np.shape(xs), dtype=np.int64)
    codes = np.asarray(codes, dtype=np.int64)
    for e in np.unique(codes):
        rows = codes == e
        out[rows] = rn.rmsnorm_int(xs[rows], norm.gamma, int(e), norm.p)
    return out


def rms_rows(x: np.ndarray, norm: NormCodes, amax=None) -> np.ndarray:
    """Integer RMSNorm of each row of ``x`` (any integer width).

    Each row is first shifted right by :func:`shift_rows` (RMSNorm is scale invariant; the row
    keeps ``NORM_IN_BITS`` significant bits) and gets the ε code :func:`eps_code` of
    ``norm.eps``, its shift and its ``amax`` (one per row; needed when ``norm.eps_power > 0``).
    """
    xs, shifts = shift_rows(x)
    return rms_shifted(xs, norm, norm_eps_codes(norm, shifts, amax))


def act_quant(norm_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The per-token absmax activation quantizer (norm codes → int8 + amax)."""
    return ah.absmax_requant(norm_codes, INT8, ACT_RECIP_BITS)


def rope(acc: np.ndarray, cos: np.ndarray, sin: np.ndarray, pos0: int = 0) -> np.ndarray:
    """acc (T, heads, hd) exact integers at positions ``pos0 …`` → rotated, same scale."""
    half = acc.shape[-1] // 2
    rot = np.concatenate([-acc[..., half:], acc[..., :half]], axis=-1)
    T = acc.shape[0]
    c, s = cos[pos0:pos0 + T, None, :], sin[pos0:pos0 + T, None, :]
    return round_shift(acc * c + rot * s, ROPE_FRAC, Rounding.HALF_EVEN)


def to_static_int8(x: np.ndarray, amax: np.ndarray, mults) -> np.ndarray:
    """x (T, heads, hd) integers at step amax·unit → int8 codes at each head's static step."""
    out = np.empty_like(x)
    for h, (M, S) in enumerate(mults):
        out[:, h] = requantize(x[:, h] * amax[:, None], M, S, INT8)
    return out


def qkv_frontend(L: LayerCodes, ctx, a, amax, pos0: int = 0):
    """TINT core → Booth core: int8 activations ``a`` (T, hidden) with their per-token
    ``amax`` → the ternary q, k, v accumulators → RoPE on q and k (positions ``pos0 …``) →
    int8 codes at each head's static step. Returns ``q8`` (T, heads, hd), ``k8``, ``v8``
    (T, kv_heads, hd)."""
    T = a.shape[0]
    H, KV, hd = ctx.heads, ctx.kv_heads, ctx.head_dim
    acc = {n: mvu.ternary_mvu_acc(L.proj[n].W, a) for n in ("wq", "wk", "wv")}
    q = rope(acc["wq"].reshape(T, H, hd), ctx.cos, ctx.sin, pos0)
    k = rope(acc["wk"].reshape(T, KV, hd), ctx.cos, ctx.sin, pos0)
    v = acc["wv"].reshape(T, KV, hd)
    return (to_static_int8(q, amax, L.qkv_mult["q"]), to_static_int8(k, amax, L.qkv_mult["k"]),
            to_static_int8(v, amax, L.qkv_mult["v"]))


def dense_attend(q, K, V, M: int, S: int, p: ah.AttentionParams):
    """Causal attention of the last ``T = len(q)`` positions on every visible cached token."""
    return ah.attention_head(q, K, V, M, S, p, causal=True)


def sparse_keep(ratio: float, visible: int) -> int:
    """Tokens kept of ``visible``: ``ceil(ratio · visible)`` (at least 1; ratio 1 keeps all)."""
    return max(1, min(visible, math.ceil(ratio * visible - 1e-9)))


def sparse_attend(ratio: float, stats: dict | None = None):
    """VitaLLM's predictive sparse attention as an ``attend`` function: query row ``t`` sees
    ``L_t`` tokens and keeps ``sparse_keep(ratio, L_t)`` of them (LO surrogate + top-K).

    ``stats`` (a dict), when given, accumulates ``rows_visible`` and ``rows_kept``; if it has a
    ``masks`` list, each call (one query head of one layer, in head order) appends its (T, L)
    boolean selection."""
    if not 0 < ratio <= 1:
        raise HwsimError(f"keep ratio K/M must be in (0, 1], not {ratio}")

    def attend(q, K, V, M, S, p):
        T, L = q.shape[0], K.shape[0]
        o = np.empty_like(q)
        amax = np.empty(T, dtype=np.int64)
        masks = np.zeros((T, L), dtype=bool)
        for t in range(T):
            Lt = L - T + t + 1
            keep = sparse_keep(ratio, Lt)
            r = sa.sparse_attention(q[t], K[:Lt], V[:Lt], keep, M, S, p)
            o[t], amax[t] = r["o"], r["amax"]
            masks[t, :Lt] = r["mask"]
            if stats is not None:
                stats["rows_visible"] = stats.get("rows_visible", 0) + Lt
                stats["rows_kept"] = stats.get("rows_kept", 0) + keep
        if stats is not None and "masks" in stats:
            stats["masks"].append(masks)
        return o, amax

    return attend


def v_ratios(L: LayerCodes, heads: int, kv_heads: int) -> list[int]:
    """Per query head, the ``V_RATIO_FRAC``-bit ratio of its KV head's static v step to the
    layer's largest (build-time constants, at most ``2**V_RATIO_FRAC``)."""
    sv_max = float(L.s_qkv["v"].max())
    rep = heads // kv_heads
    return [round(float(L.s_qkv["v"][h // rep]) / sv_max * (1 << V_RATIO_FRAC))
            for h in range(heads)]


def v_rescale(o, amax_o, ratio: int) -> np.ndarray:
    """One head's attention outputs ``o`` (…, hd) int8 with their row ``amax_o`` (…) → "wide"
    codes at the layer's common v step: ``round_half_even(o · amax_o · ratio / 2**15)``."""
    o = np.asarray(o, dtype=np.int64)
    amax_o = np.asarray(amax_o, dtype=np.int64)
    return round_shift(o * amax_o[..., None] * int(ratio), V_RATIO_FRAC, Rounding.HALF_EVEN)


def residual_add(x, acc, amax, mult: tuple[int, int], res: QType) -> np.ndarray:
    """``x + requantize(acc · amax, M, S, res)``: a projection's exact accumulators ``acc``
    (T, n), at the step of their activations' per-row ``amax`` (T,), rescaled to residual codes
    and added to the residual rows ``x`` (T, n). The add itself is exact (not saturated)."""
    acc = np.asarray(acc, dtype=np.int64)
    amax = np.asarray(amax, dtype=np.int64)
    return np.asarray(x, dtype=np.int64) + requantize(acc * amax[:, None], *mult, res)


def relu2_mul(g, u) -> np.ndarray:
    """The FFN's gated product ``relu(g)² · u`` of the w1 and w3 accumulators, exact (int64;
    the caller bounds the operands so the product fits: ``hwsim.golden.ffn_in`` sizes it)."""
    gp = np.maximum(np.asarray(g, dtype=np.int64), 0)
    return gp * gp * np.asarray(u, dtype=np.int64)


def layer_forward(L: LayerCodes, ctx, x, cache=None, pos0: int = 0, attend=None,
                  capture: dict | None = None):
    """Rows ``x`` (T, hidden) of the residual stream at positions ``pos0 … pos0+T−1`` through
    one decoder layer; ``cache = (k8, v8)`` holds the int8 keys and values (P, kv_heads, hd) of
    the ``P = pos0`` earlier positions (``None``: no earlier positions).

    ``ctx`` carries the model-wide constants: ``heads``, ``kv_heads``, ``head_dim``,
    ``res`` (residual QType), ``attn`` (:class:`AttentionParams`), ``cos``,
    ``sin`` (an :class:`models.bitnet.integer_model.IntegerBitNet`).

    Returns ``(x_out, k8, v8)``: the new residual rows and this step's int8 keys and values.
    ``capture`` (a dict) receives ``q``, ``k``, ``v`` (int8, this step's rows), ``o``, ``amax``,
    ``x_attn`` (the residual rows after the attention block's ``wo`` add), and the FFN's
    ``ffn_a``, ``ffn_amax`` (its int8 activations and their amax), ``prod`` (the exact
    ``relu(g)²·u`` rows, (T, ffn)).
    """
    attend = attend or dense_attend
    x = np.asarray(x, dtype=np.int64)
    T = x.shape[0]
    H, KV, hd = ctx.heads, ctx.kv_heads, ctx.head_dim
    rep = H // KV
    if cache is None:
        cache = (np.zeros((0, KV, hd), dtype=np.int64), np.zeros((0, KV, hd), dtype=np.int64))
    if cache[0].shape[0] != pos0:
        raise HwsimError(f"the KV cache holds {cache[0].shape[0]} positions, not pos0={pos0}")
    a, amax = act_quant(rms_rows(x, L.attn_norm))
    q8, k8, v8 = qkv_frontend(L, ctx, a, amax, pos0)
    K_all = np.concatenate([cache[0], k8])
    V_all = np.concatenate([cache[1], v8])
    wide = np.empty((T, H, hd), dtype=np.int64)
    ratios = v_ratios(L, H, KV)
    if capture is not None:
        capture.update({"q": q8, "k": k8, "v": v8, "o": np.empty_like(q8),
                        "amax": np.empty((T, H), dtype=np.int64)})
    for h in range(H):
        o, amax_o = attend(q8[:, h], K_all[:, h // rep], V_all[:, h // rep],
                           *L.score_mult[h], ctx.attn)
        if capture is not None:
            capture["o"][:, h], capture["amax"][:, h] = o, amax_o
        wide[:, h] = v_rescale(o, amax_o, ratios[h])
    wide = wide.reshape(T, H * hd)
    a2, amax2 = act_quant(rms_rows(wide, L.attn_sub))
    x = residual_add(x, mvu.ternary_mvu_acc(L.proj["wo"].W, a2), amax2, L.res_mult["wo"],
                     ctx.res)
    if capture is not None:
        capture["x_attn"] = x
    a, amax = act_quant(rms_rows(x, L.ffn_norm))
    prod = relu2_mul(mvu.ternary_mvu_acc(L.proj["w1"].W, a),
                     mvu.ternary_mvu_acc(L.proj["w3"].W, a))              # (T, ffn) exact
    if capture is not None:
        capture.update({"ffn_a": a, "ffn_amax": amax, "prod": prod})
    # row t of `prod` has step c·amax_t³ (c fixed): its ε code carries amax_t (eps_power 6)
    a3, amax3 = act_quant(rms_rows(prod, L.ffn_sub, amax))
    x = residual_add(x, mvu.ternary_mvu_acc(L.proj["w2"].W, a3), amax3, L.res_mult["w2"],
                     ctx.res)
    return x, k8, v8


def decode_step(L: LayerCodes, ctx, x, k_cache, v_cache, attend=None,
                capture: dict | None = None):
    """One decode step: the residual row ``x`` (hidden,) of the token at position
    ``P = len(k_cache)`` attends to the ``P`` cached positions and itself.

    Returns ``(x_out (hidden,), k8 (kv_heads, hd), v8)`` — the caller appends ``k8``, ``v8`` to
    its cache (the accelerator writes them to its KV memory)."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 1:
        raise HwsimError(f"a decode step takes one residual row (hidden,), got {x.shape}")
    P = int(np.shape(k_cache)[0])
    if ctx.attn.max_len < P + 1:
        raise HwsimError(f"KV cache full: position {P} needs {P + 1} > {ctx.attn.max_len} slots")
    out, k8, v8 = layer_forward(L, ctx, x[None, :], (np.asarray(k_cache), np.asarray(v_cache)),
                                P, attend, capture)
    return out[0], k8[0], v8[0]


# ------------------------------------------------------------------------------------------
# The accelerator: shape, memories, cycles and KV traffic of one decode step
def _check_heads_and_keep(kind: str, p, positive: tuple[str, ...]) -> None:
    """The checks every decode-step parameter set shares: positive integer sizes, 1 ≤ K ≤ M,
    and kv_heads dividing heads (one line naming ``kind`` and the field)."""
    check_ints(p, kind, positive)
    if isinstance(p.keep, bool) or not isinstance(p.keep, int) or p.keep < 1:
        raise HwsimError(f"{kind} keep (K) must be at least 1, not {p.keep!r}")
    if p.keep > p.tokens:
        raise HwsimError(f"{kind} keep (K={p.keep}) cannot exceed the cached tokens "
                         f"(M={p.tokens})")
    if p.heads % p.kv_heads:
        raise HwsimError(f"{kind} kv_heads ({p.kv_heads}) must divide heads ({p.heads})")


@dataclass(frozen=True)
class DecoderLayerParams:
    """A decoder-layer accelerator holding one BitNet layer on chip.

    ``tokens`` (M) is the number of cached tokens a decode step attends to (itself included),
    ``keep`` (K) how many the sparse selector keeps (K = M: dense). ``lanes`` is the width of
    the ternary MVU, the Booth attention engine and the norm unit; ``exp_lanes`` the softmax
    exponentials per cycle. ``weight_kib`` / ``kv_kib`` are the on-chip memories (weights at 2
    bits, I2_S packing; the KV cache at int8 for ``max_len`` tokens plus the 4-bit LO table).
    """

    hidden: int = 128
    ffn: int = 352
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    max_len: int = 128
    tokens: int = 128
    keep: int = 128
    lanes: int = 16
    exp_lanes: int = 4
    weight_kib: int = 64
    kv_kib: int = 48

    def __post_init__(self):
        _check_heads_and_keep("decoder-layer", self, ("hidden", "ffn", "heads", "kv_heads",
                                                      "head_dim", "max_len", "tokens", "lanes",
                                                      "exp_lanes", "weight_kib", "kv_kib"))
        if self.tokens > self.max_len:
            raise HwsimError(f"decoder-layer tokens (M={self.tokens}) exceed the KV cache "
                             f"capacity max_len={self.max_len}")
        if self.heads * self.head_dim != self.hidden:
            raise HwsimError(f"decoder-layer heads × head_dim ({self.heads}×{self.head_dim}) "
                             f"must equal hidden ({self.hidden})")
        for f in ("hidden", "ffn", "head_dim"):
            if getattr(self, f) % self.lanes:
                raise HwsimError(f"decoder-layer lanes ({self.lanes}) must divide {f} "
                                 f"({getattr(self, f)})")
        if self.weight_bytes > self.weight_kib * 1024:
            raise HwsimError(f"layer weights need {self.weight_bytes} B at 2 bits, more than the "
                             f"{self.weight_kib} KiB weight memory")
        if self.kv_bytes > self.kv_kib * 1024:
            raise HwsimError(f"KV cache of {self.max_len} tokens needs {self.kv_bytes} B, more "
                             f"than the {self.kv_kib} KiB KV memory")

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    def projection_shapes(self) -> dict[str, tuple[int, int]]:
        d, f, kvd = self.hidden, self.ffn, self.kv_dim
        return {"wq": (d, d), "wk": (kvd, d), "wv": (kvd, d), "wo": (d, d),
                "w1": (f, d), "w3": (f, d), "w2": (d, f)}

    @property
    def weight_bytes(self) -> int:
        return sum(r * c for r, c in self.projection_shapes().values()) * 2 // 8

    @property
    def kv_bytes(self) -> int:
        """int8 K and V of ``max_len`` tokens, plus their 4-bit (sign, leading-one) codes."""
        return self.max_len * self.kv_dim * 2 + self.max_len * self.kv_dim // 2

    def kv_read_bytes(self) -> dict[str, int]:
        return kv_read_bytes(self.heads, self.kv_heads, self.head_dim, self.tokens, self.keep)

    def decode_step(self) -> DecodeStepParams:
        return DecodeStepParams(hidden=self.hidden, heads=self.heads, kv_heads=self.kv_heads,
                                head_dim=self.head_dim, tokens=self.tokens, keep=self.keep,
                                lanes=self.lanes, exp_lanes=self.exp_lanes)

    def decode_attention(self) -> DecodeAttentionParams:
        return self.decode_step().attention_phase()

    def mvu(self, name: str) -> mvu.TernaryMvuParams:
        rows, cols = self.projection_shapes()[name]
        return mvu.TernaryMvuParams(lanes=self.lanes, rows=rows, cols=cols)

    def norm(self, n: int) -> rn.RmsNormParams:
        return norm_params(n, math.gcd(n, self.lanes), 16)

    def attn_out(self) -> ao.AttnOutParams:
        """The attention output path (:mod:`hwsim.golden.attn_out`) after the attention
        phase: its heads' amax are the attention engine's."""
        from . import attn_out as ao

        return ao.AttnOutParams(heads=self.heads, head_dim=self.head_dim, lanes=self.lanes,
                                amax_width=self.decode_attention().attention().av_acc_width)

    def attn_layer(self) -> al.AttnLayerParams:
        """The attention half of the layer in one controller (:mod:`hwsim.golden.attn_layer`):
        residual row → attention RMSNorm → decode step → output path."""
        from . import attn_layer as al

        return al.AttnLayerParams(heads=self.heads, kv_heads=self.kv_heads,
                                  head_dim=self.head_dim, tokens=self.tokens, keep=self.keep,
                                  lanes=self.lanes, exp_lanes=self.exp_lanes)

    def ffn_in(self) -> fi.FfnInParams:
        """The input half of the FFN (:mod:`hwsim.golden.ffn_in`): residual row → FFN RMSNorm
        → w1 ∥ w3 → relu(g)²·u."""
        from . import ffn_in as fi

        return fi.FfnInParams(hidden=self.hidden, ffn=self.ffn, lanes=self.lanes)

    def norm_quant(self, n: int) -> nq.NormQuantParams:
        """The norm unit (:mod:`hwsim.golden.norm_quant`) of a length-``n`` norm with a fixed
        input step."""
        from . import norm_quant as nq

        return nq.NormQuantParams(n=n, lanes=math.gcd(n, self.lanes), gamma_frac=16)

    def ffn_out(self) -> fo.FfnOutParams:
        """The FFN output half (:mod:`hwsim.golden.ffn_out`): ``prod`` codes as wide as
        ``relu(g)²·u`` of int8 activations can be (``|g|, |u| ≤ hidden · 2**7``)."""
        from . import ffn_out as fo

        return fo.FfnOutParams(hidden=self.hidden, ffn=self.ffn, lanes=self.lanes,
                               prod_width=((self.hidden << 7) ** 3).bit_length() + 1)

    def layer_rtl(self) -> lr.LayerRtlParams:
        """The whole layer in one controller (:mod:`hwsim.golden.decoder_layer_rtl`):
        ``attn-layer`` → repacker → ``ffn-in`` → ``ffn-out``."""
        from . import decoder_layer_rtl as lr

        return lr.LayerRtlParams(heads=self.heads, kv_heads=self.kv_heads,
                                 head_dim=self.head_dim, ffn=self.ffn, tokens=self.tokens,
                                 keep=self.keep, lanes=self.lanes, exp_lanes=self.exp_lanes)

    def barrier(self, n: int) -> ab.AbsmaxBarrierParams:
        return ab.AbsmaxBarrierParams(length=n, in_width=NORM_OUT.width)


def attention_cycles(p: DecoderLayerParams) -> dict[str, int]:
    """The attention phase: :func:`decode_attention_cycles` of the RTL-verified
    :class:`rtl.decode_attention.DecodeAttention` (selector and attention engine pipelined one
    head apart), with the per-head selector (``select``) and engine (``exact``) latencies."""
    da = p.decode_attention()
    ap = da.attention()
    return {"select": lt.latency_cycles(da.selector()),
            "exact": 1 + da.keep * ap.chunks + ah.query_cycles(ap, da.keep),
            "pipelined": decode_attention_cycles(da)}


def decode_cycles(p: DecoderLayerParams) -> dict[str, int]:
    """Cycles of one decode step of one layer, by phase, and ``total`` (the phases in
    sequence): the ``decoder-layer`` RTL's schedule (:func:`hwsim.golden.decoder_layer_rtl.
    phase_cycles` of :meth:`DecoderLayerParams.layer_rtl`), measured exactly in simulation
    from the first residual beat to the last output code.

    The attention half (``attn_norm``, ``qkv_frontend``, ``kv_append``, ``attention``,
    ``attn_out``) is the ``attn-layer`` controller (:func:`hwsim.golden.attn_layer.
    phase_cycles`: the residual row's peak → shift, the ``norm-quant`` unit, the
    ``decode-step`` block, the ``attn-out`` path). ``ffn_norm`` and ``w1_w3`` are the
    ``ffn-in`` RTL after its last row beat, which is ``attn-layer``'s last output code (the
    repacker passes a beat on with its last code, so the row store overlaps ``attn_out``):
    ``ffn_norm`` is ``ffn-in``'s norm phase less its ``C`` row beats. ``ffn_subln`` and
    ``w2`` are the ``ffn-out`` RTL after its last ``prod`` beat (:func:`hwsim.golden.ffn_out.
    phase_cycles`: the wide ε divider, the SubLN + quantizer fed its code, the ``w2`` MVU and
    the residual add); its ``ffn`` input beats are ``ffn-in``'s output rows."""
    from . import decoder_layer_rtl as lr

    phases = lr.phase_cycles(p.layer_rtl())
    phases["total"] = sum(phases.values())
    return phases


def kv_read_bytes(heads: int, kv_heads: int, head_dim: int, tokens: int,
                  keep: int) -> dict[str, int]:
    """KV-cache bytes one decode step of one layer reads, built on
    :func:`hwsim.golden.lo_topk.action_counts` (one query head: ``2·K·d`` sparse, ``2·M·d``
    dense).

    The query heads of a GQA group run back to back on the same cached rows: dense attention
    reads each KV head's ``M`` key and value rows once; sparse attention reads the union of
    the rows its ``rep = heads / kv_heads`` query heads keep, at most ``min(M, rep·K)`` rows
    (``sparse``, the bound the cycle model and the estimator use; ``hwsim bench vitallm``
    measures the union on real data). With ``rep = 1`` the reduction is exactly ``1 − K/M``
    (``per_head_reduction``). ``lo_table``: the surrogate's 4-bit codes every query head reads
    (on-chip, sparse path only).
    """
    if heads % kv_heads:
        raise HwsimError(f"kv_heads ({kv_heads}) must divide heads ({heads})")
    c = lt.action_counts(lt.LoTopKParams(tokens=tokens, head_dim=head_dim, keep=keep))
    rep = heads // kv_heads
    dense = kv_heads * c["kv_read_bytes_dense"]
    sparse = kv_heads * min(rep * c["kv_read_bytes_sparse"], c["kv_read_bytes_dense"])
    return {"dense": dense, "sparse": sparse, "lo_table": heads * c["lo_sram_read_bytes"],
            "per_head_reduction": 1 - c["kv_read_bytes_sparse"] / c["kv_read_bytes_dense"]}


# ------------------------------------------------------------------------------------------
# The attention phase of a decode step on the accelerator (rtl/decode_attention.py)
@dataclass(frozen=True)
class DecodeAttentionParams:
    """Every query head of one decode step against ``M`` cached tokens held on chip.

    ``heads`` query heads share ``kv_heads`` KV heads (GQA); each query head keeps ``keep``
    (K) of the ``tokens`` (M) cached tokens by the LO surrogate + top-K, then exact int8
    attention on them (``keep = tokens``: dense). ``lanes``: multipliers of the attention
    engine; ``score_frac``: fractional bits of the int8 scores (the softmax's input format).
    """

    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    tokens: int = 128
    keep: int = 16
    lanes: int = 16
    exp_lanes: int = 4
    score_frac: int = 4

    def __post_init__(self):
        _check_heads_and_keep("decode-attention", self, ("heads", "kv_heads", "head_dim",
                                                         "tokens", "lanes", "exp_lanes"))
        if not isinstance(self.score_frac, int) or not 0 <= self.score_frac <= 7:
            raise HwsimError(f"decode-attention score_frac must be 0 … 7, not "
                             f"{self.score_frac!r}")
        self.attention()  # lanes | head_dim, sizes
        self.selector()

    def attention(self) -> ah.AttentionParams:
        """The attention engine: a KV buffer of ``keep`` tokens."""
        return ah.AttentionParams(head_dim=self.head_dim, max_len=self.keep, lanes=self.lanes,
                                  exp_lanes=min(self.exp_lanes, self.keep),
                                  score=QType(8, frac=self.score_frac))

    def selector(self) -> lt.LoTopKParams:
        return lt.LoTopKParams(tokens=self.tokens, head_dim=self.head_dim, keep=self.keep)


def decode_attention(q, K, V, mults, p: DecodeAttentionParams) -> tuple[np.ndarray, np.ndarray]:
    """Golden: ``q`` (heads, d), ``K``, ``V`` (kv_heads, M, d) int8, ``mults`` per head
    ``(score_mult, score_shift)`` → ``(o (heads, d), amax (heads,))``: each head's sparse
    attention (:func:`hwsim.golden.sparse_attention.sparse_attention`) on its KV head."""
    q, K, V = np.asarray(q), np.asarray(K), np.asarray(V)
    H, G, M, d = p.heads, p.kv_heads, p.tokens, p.head_dim
    if q.shape != (H, d) or K.shape != (G, M, d) or V.shape != (G, M, d):
        raise HwsimError(f"decode attention expects q ({H}, {d}), K and V ({G}, {M}, {d}); got "
                         f"{q.shape}, {K.shape}, {V.shape}")
    if len(mults) != H:
        raise HwsimError(f"decode attention needs {H} (score_mult, score_shift) pairs")
    ap, rep = p.attention(), H // G
    o = np.empty((H, d), dtype=np.int64)
    amax = np.empty(H, dtype=np.int64)
    for h in range(H):
        r = sa.sparse_attention(q[h], K[h // rep], V[h // rep], p.keep, *mults[h], ap)
        o[h], amax[h] = r["o"], r["amax"]
    return o, amax


def decode_attention_cycles(p: DecodeAttentionParams) -> int:
    """Cycles of the RTL's attention phase, first ``q`` beat to last output beat, both counted,
    with no idle input and no back-pressure (:class:`rtl.decode_attention.DecodeAttention`).

    Two stages run concurrently, one head apart (head-level pipelining), with a one-entry mask
    buffer between them: the selector (``S = lo_topk.latency_cycles``: q, M key rows,
    selection, mask) and the attention engine (``A = 1 + K·C + query_cycles(K)``: clear, K kv
    operations of ``C = d/lanes`` beats, the query). In cycles from the first q beat (cycle
    0): head ``h``'s query enters the selector at ``qb_h`` (``qb_0 = 1``, then the cycle after
    the previous mask leaves), its mask leaves at ``ms_h = max(qb_h + S − 1, tk_{h−1} + 1)``
    (the buffer is free), the attention controller takes it at ``tk_h = max(ms_h + 1,
    qd_{h−1} + 1)`` (after sending head ``h−1``'s q beats at ``qd``), the engine accepts the
    clear at ``cl_h = max(tk_h + 1, end_{h−1} + 1)`` and ends at ``end_h = cl_h + A − 1``.
    """
    ap, sel = p.attention(), p.selector()
    S = lt.latency_cycles(sel)
    C = ap.chunks
    A = 1 + p.keep * C + ah.query_cycles(ap, p.keep)
    qb, tk_prev, qd_prev, end_prev = 1, None, None, None
    for _ in range(p.heads):
        ms = qb + S - 1 if tk_prev is None else max(qb + S - 1, tk_prev + 1)
        tk = ms + 1 if qd_prev is None else max(ms + 1, qd_prev + 1)
        cl = tk + 1 if end_prev is None else max(tk + 1, end_prev + 1)
        end_prev = cl + A - 1
        qd_prev = cl + p.keep * C + C
        tk_prev, qb = tk, ms + 1
    return end_prev + 1


# ------------------------------------------------------------------------------------------
# The TINT → Booth front end of a decode step on the accelerator (rtl/qkv_frontend.py)
@dataclass(frozen=True)
class QkvFrontendParams:
    """q, k, v of one token: three ternary MVUs (``lanes`` wide) on the same int8 activation
    vector, then one element per cycle through RoPE and the static int8 requantizer."""

    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    lanes: int = 16

    def __post_init__(self):
        check_ints(self, "qkv-frontend", ("hidden", "heads", "kv_heads", "head_dim", "lanes"))
        if self.heads % self.kv_heads:
            raise HwsimError(f"qkv-frontend kv_heads ({self.kv_heads}) must divide heads "
                             f"({self.heads})")
        if self.head_dim % 2:
            raise HwsimError(f"qkv-frontend head_dim must be even (RoPE), not {self.head_dim}")
        self.mvu("wq")

    def rows(self, name: str) -> int:
        return (self.heads if name == "wq" else self.kv_heads) * self.head_dim

    def mvu(self, name: str) -> mvu.TernaryMvuParams:
        """A projection's MVU: its accumulators leave unscaled (``M = 1``, ``S = 0``)."""
        t = mvu.TernaryMvuParams(lanes=self.lanes, rows=self.rows(name), cols=self.hidden)
        return mvu.TernaryMvuParams(lanes=self.lanes, rows=t.rows, cols=t.cols,
                                    out=QType(t.acc_width))

    @property
    def elements(self) -> int:
        return (self.heads + 2 * self.kv_heads) * self.head_dim


ROPE_CODE = QType(ROPE_FRAC + 2, frac=ROPE_FRAC)   # cos / sin table codes
MULT_BITS = 24                                     # static requantization multipliers
AMAX_BITS = NORM_OUT.width                         # amax of int24 norm codes fits 24 bits


def qkv_codes(W: dict, a, amax: int, cos_row, sin_row, mults,
              p: QkvFrontendParams) -> np.ndarray:
    """Golden of the front end for one token: ``(heads + 2·kv_heads)·hd`` int8 codes, q (head
    major) then k then v. ``mults``: (heads + 2·kv_heads) ``(M, S)`` pairs in that order.
    The same functions as :func:`qkv_frontend` (the layer's own)."""
    H, G, hd = p.heads, p.kv_heads, p.head_dim
    a = INT8.check(np.asarray(a).reshape(1, p.hidden), "front-end activations")
    am = np.array([int(amax)], dtype=np.int64)
    acc = {n: mvu.ternary_mvu_acc(W[n], a) for n in ("wq", "wk", "wv")}
    cos, sin = np.asarray(cos_row)[None], np.asarray(sin_row)[None]
    mults = [tuple(int(v) for v in m) for m in mults]
    q = to_static_int8(rope(acc["wq"].reshape(1, H, hd), cos, sin), am, mults[:H])
    k = to_static_int8(rope(acc["wk"].reshape(1, G, hd), cos, sin), am, mults[H:H + G])
    v = to_static_int8(acc["wv"].reshape(1, G, hd), am, mults[H + G:])
    return np.concatenate([q.ravel(), k.ravel(), v.ravel()])


def qkv_frontend_cycles(p: QkvFrontendParams) -> int:
    """First ``x`` beat to last output code, both counted: the wq MVU (the most rows; wk and wv
    finish earlier on the same beats), one cycle to see every accumulator stored, then one
    element per cycle."""
    return mvu.latency_cycles(p.mvu("wq")) + 1 + p.elements


# ------------------------------------------------------------------------------------------
# Front end + attention phase chained (rtl/decode_step.py)
@dataclass(frozen=True)
class DecodeStepParams:
    """The attention block of one decode step on the accelerator: the token's int8
    activations → :class:`QkvFrontendParams` → its k, v appended to the on-chip KV cache at
    position ``tokens − 1`` → :class:`DecodeAttentionParams` over the ``tokens`` cached
    tokens."""

    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    tokens: int = 128
    keep: int = 16
    lanes: int = 16
    exp_lanes: int = 4
    score_frac: int = 4

    def __post_init__(self):
        self.frontend()
        self.attention_phase()

    def frontend(self) -> QkvFrontendParams:
        return QkvFrontendParams(hidden=self.hidden, heads=self.heads, kv_heads=self.kv_heads,
                                 head_dim=self.head_dim, lanes=self.lanes)

    def attention_phase(self) -> DecodeAttentionParams:
        return DecodeAttentionParams(heads=self.heads, kv_heads=self.kv_heads,
                                     head_dim=self.head_dim, tokens=self.tokens, keep=self.keep,
                                     lanes=math.gcd(self.head_dim, self.lanes),
                                     exp_lanes=self.exp_lanes, score_frac=self.score_frac)


def decode_step_attention(a: dict, p: DecodeStepParams) -> tuple[np.ndarray, np.ndarray]:
    """Golden of the chained block: ``a`` holds the front end's arrays (``wq``, ``wk``, ``wv``,
    ``a``, ``amax``, ``cos``, ``sin``, ``mults``), the earlier cache ``K``, ``V``
    (kv_heads, tokens − 1, d) and ``score_mults`` (heads, 2). Returns ``(o, amax)`` per head."""
    H, G, d, M = p.heads, p.kv_heads, p.head_dim, p.tokens
    codes = qkv_codes({n: a[n] for n in ("wq", "wk", "wv")}, a["a"], int(a["amax"]), a["cos"],
                      a["sin"], np.asarray(a["mults"]).reshape(-1, 2), p.frontend())
    q8 = codes[:H * d].reshape(H, d)
    k8 = codes[H * d:(H + G) * d].reshape(G, 1, d)
    v8 = codes[(H + G) * d:].reshape(G, 1, d)
    K = np.concatenate([np.asarray(a["K"]).reshape(G, M - 1, d), k8], axis=1)
    V = np.concatenate([np.asarray(a["V"]).reshape(G, M - 1, d), v8], axis=1)
    mults = [tuple(int(v) for v in m) for m in np.asarray(a["score_mults"]).reshape(-1, 2)]
    return decode_attention(q8, K, V, mults, p.attention_phase())


def decode_step_phases(p: DecodeStepParams) -> dict[str, int]:
    """The phases of :func:`decode_step_cycles`, in sequence: the front end
    (``qkv_frontend``), ``kv_heads`` cycles to append the new k, v rows (``kv_append``), then
    the attention phase (``attention``; its first q beat follows at once)."""
    return {"qkv_frontend": qkv_frontend_cycles(p.frontend()), "kv_append": p.kv_heads,
            "attention": decode_attention_cycles(p.attention_phase())}


def decode_step_cycles(p: DecodeStepParams) -> int:
    """First ``x`` beat to last output beat: the sum of :func:`decode_step_phases`."""
    return sum(decode_step_phases(p).values())


def storage_bits(p: DecodeAttentionParams | QkvFrontendParams | DecodeStepParams) -> int:
    """Bits of the memories of the decode-attention, qkv-frontend or decode-step RTL: the
    on-chip K and V caches (``kv_heads × tokens × head_dim`` int8 each) with the attention
    engine's memories, and the ternary weights of wq, wk and wv."""
    if isinstance(p, DecodeStepParams):
        return storage_bits(p.frontend()) + storage_bits(p.attention_phase())
    if isinstance(p, QkvFrontendParams):
        return sum(mvu.storage_bits(p.mvu(n)) for n in ("wq", "wk", "wv"))
    if isinstance(p, DecodeAttentionParams):
        return 2 * p.kv_heads * p.tokens * 8 * p.head_dim + ah.storage_bits(p.attention())
    raise TypeError(f"no storage formula for {type(p).__name__}")
