"""The whole BitNet b1.58 decoder on hwsim's golden kernels, integer codes between every layer.

:func:`build_integer_model` turns a trained ternary :class:`~models.bitnet.model.BitNetModel`
into integer parameters (after a short calibration on training text for the static scales);
:func:`integer_forward` then runs a token sequence (causal prefill) on integer numpy arrays:

==========================  ===============================================================
residual stream             int64 codes of ``QType(48, frac=F)`` (``F`` from calibration)
embedding                   table quantized to the residual format (a lookup)
RMSNorm, SubLN              :func:`hwsim.golden.rmsnorm_int.rmsnorm_int` → int24 codes
                            (each row first shifted right to ≤ 22 significant bits)
activation quantizer        :func:`hwsim.golden.attention_head.absmax_requant` → int8 + amax
projections                 :func:`hwsim.golden.ternary_mvu.ternary_mvu_acc` (exact)
RoPE                        ``round(acc·cos + rot(acc)·sin)`` with Q1.20 tables
q, k, v                     static per-head int8 scales (calibrated absmax) by ``requantize``
attention                   :func:`hwsim.golden.attention_head.attention_head` (causal),
                            int8 scores → integer softmax → int8 output + per-row amax
gated FFN                   ``relu(g)² · u`` on the exact accumulators (SubLN follows)
residual adds               ``requantize(acc · amax, M, S)`` into the residual format
LM head                     int8 per-tensor weights × int8 activations (exact), argmax
==========================  ===============================================================

Only integers flow between layers. Floats appear only as constants derived from scales: the
requantization multipliers (compile time) and each norm row's ε code, ``round(ε / step²)``,
whose step follows from integer amax values and shifts (ε is the one term that breaks
RMSNorm's scale invariance).

Contract. :func:`attach_datapath` gives the torch fake-quant model of this datapath (the trained
QAT model with the same static int8 q/k/v steps, int8 scores, uint8 probabilities, per-head
int8 outputs and int8 LM head). The projection accumulators are exact (``==``) given equal
codes; the int8 codes themselves agree except next to rounding ties, since the integer RMSNorm,
RoPE (Q1.20), softmax (its own error bound) and requantizers round differently from float32;
greedy next-token choices are measured against both the datapath model and the plain QAT
model (``hwsim bench bitnet``), not assumed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from hwsim.errors import HwsimError
from hwsim.golden import attention_head as ah
from hwsim.golden import rmsnorm_int as rn
from hwsim.golden import ternary_mvu as mvu
from hwsim.golden.int8_matmul import int8_matmul
from quant.brevitas_quantizers import SCALE_FLOOR
from quant.qtype import INT8, QType, Rounding, quantize, quantize_multiplier, requantize, round_shift

from .model import BitLinear, BitNetModel, apply_rope

__all__ = ["IntegerBitNet", "attach_datapath", "build_integer_model", "integer_forward"]

NORM_OUT = QType(24, frac=16)        # RMSNorm output codes: real range ±128
GAMMA_BITS = 19                      # RMSNorm gain codes (fractional bits from the peak)
RECIP_BITS = 19                      # reciprocal of the RMS
ROPE_FRAC = 20                       # cos / sin table codes
HEAD_RATIO_FRAC = 20                 # per-head v-step ratios
RMS_FRAC = 4                         # G of the integer RMSNorm (Σx² · 2**2G stays below 2**62)
WIDE = QType(32)                     # container of wide integer codes fed to the norms
RES_BITS = 36                        # twice the calibrated residual peak maps to 2**RES_BITS
NORM_IN_BITS = 22                    # a norm input row is right-shifted to at most this many bits


@dataclass
class _Norm:
    gamma: np.ndarray
    p: rn.RmsNormParams


@dataclass
class _Proj:
    W: np.ndarray
    scale: float   # real weight step (mean|W| · gain)


@dataclass
class _Layer:
    attn_norm: _Norm
    ffn_norm: _Norm
    attn_sub: _Norm
    ffn_sub: _Norm
    proj: dict[str, _Proj]
    qkv_mult: dict[str, list[tuple[int, int]]]     # per head: acc·amax → static int8 code
    s_qkv: dict[str, np.ndarray]                   # static per-head steps
    score_mult: list[tuple[int, int]]              # per query head
    wide_step: float                               # real step of the attention "wide" codes
    res_mult: dict[str, tuple[int, int]]           # wo / w2: acc·amax → residual codes


@dataclass
class IntegerBitNet:
    """Integer parameters of a BitNet b1.58 model (see the module docstring)."""

    res: QType
    embed: np.ndarray
    layers: list[_Layer]
    final_norm: _Norm
    head: np.ndarray
    head_step: float
    cos: np.ndarray
    sin: np.ndarray
    attn: ah.AttentionParams
    heads: int
    kv_heads: int
    head_dim: int
    norm_eps: float
    act: str
    info: dict = field(default_factory=dict)


def _norm(weight: torch.Tensor, n: int) -> _Norm:
    g = weight.detach().double().numpy()
    peak = max(float(np.abs(g).max()), 1e-6)
    top = (1 << (GAMMA_BITS - 1)) - 1
    frac = min(GAMMA_BITS - 2, math.floor(math.log2(top / peak)))   # |γ| · 2**frac ≤ top
    gq = QType(GAMMA_BITS, frac=frac)
    p = rn.RmsNormParams(n=n, lanes=math.gcd(n, 16), x=WIDE, gamma=gq, out=NORM_OUT,
                         rms_frac=RMS_FRAC, recip_bits=RECIP_BITS)
    return _Norm(quantize(g, gq), p)


def _eps_code(eps: float, step: float) -> int:
    """ε in units of the norm's mean square (step² · 2**-2G), kept below 2**62 (int64 sums)."""
    return min(round(eps / (step * step) * 2.0 ** (2 * RMS_FRAC)), 1 << 62)


@torch.no_grad()
def _calibrate(model: BitNetModel, windows: np.ndarray) -> dict:
    """Peaks of the residual stream, q/k/v after RoPE (per head) and the attention scores."""
    cfg, hd = model.config, model.config.head_dim
    stats: dict = {"res": 0.0, "q": [], "k": [], "v": [], "score": 0.0}
    grabbed: dict = {}
    hooks = []
    for i, layer in enumerate(model.layers):
        for name in ("wq", "wk", "wv"):
            hooks.append(getattr(layer.attn, name).register_forward_hook(
                lambda m, a, out, _k=(i, name): grabbed.__setitem__(_k, out)))
    tok = torch.as_tensor(windows)
    x = model.embed(tok)
    stats["res"] = float(x.abs().max())
    for i, layer in enumerate(model.layers):
        x = layer(x, model.rope_cos, model.rope_sin)
        stats["res"] = max(stats["res"], float(x.abs().max()))
        B, T, _ = x.shape
        q = grabbed[(i, "wq")].view(B, T, cfg.heads, hd).transpose(1, 2)
        k = grabbed[(i, "wk")].view(B, T, cfg.kv_heads, hd).transpose(1, 2)
        v = grabbed[(i, "wv")].view(B, T, cfg.kv_heads, hd).transpose(1, 2)
        q, k = apply_rope(q, model.rope_cos, model.rope_sin), apply_rope(k, model.rope_cos,
                                                                         model.rope_sin)
        stats["q"].append(q.abs().amax(dim=(0, 2, 3)).double().numpy())
        stats["k"].append(k.abs().amax(dim=(0, 2, 3)).double().numpy())
        stats["v"].append(v.abs().amax(dim=(0, 2, 3)).double().numpy())
        kk = k.repeat_interleave(cfg.heads // cfg.kv_heads, dim=1)
        s = (q @ kk.transpose(-2, -1)) / math.sqrt(hd)
        stats["score"] = max(stats["score"], float(s.abs().max()))
    for h in hooks:
        h.remove()
    return stats


def _proj(lin: BitLinear) -> _Proj:
    with torch.no_grad():
        qw = lin.quant_weight()
    return _Proj(qw.int().numpy().astype(np.int64),
                 float(qw.scale.detach()) * float(lin.weight_gain))


def build_integer_model(model: BitNetModel, calib_windows: np.ndarray) -> IntegerBitNet:
    """Integer parameters of ``model``; static scales from ``calib_windows`` ((n, T) tokens)."""
    if not model.quantized:
        raise HwsimError("the integer model needs the ternary model, not the float baseline")
    cfg = model.config
    if cfg.act != "relu2" or not cfg.subln:
        raise HwsimError("the integer model needs SubLN and the relu² FFN (BitNet b1.58 2B4T "
                         f"style); {cfg.name} has act={cfg.act}, subln={cfg.subln}")
    model = model.eval()
    st = _calibrate(model, calib_windows)
    # residual: the calibrated peak (with 2× headroom) maps to 2**RES_BITS codes
    F = math.floor(math.log2(2 ** RES_BITS / (2 * st["res"])))
    res = QType(48, frac=F)
    score_frac = int(min(6, max(0, math.floor(math.log2(127 / max(st["score"], 1e-6))))))
    attn = ah.AttentionParams(head_dim=cfg.head_dim, max_len=cfg.max_seq,
                              lanes=math.gcd(cfg.head_dim, 16), exp_lanes=4,
                              score=QType(8, frac=score_frac))
    norm_step = NORM_OUT.lsb / 127          # real activation step per unit of amax
    layers = []
    for i, layer in enumerate(model.layers):
        proj = {n: _proj(getattr(layer.attn if n in ("wq", "wk", "wv", "wo") else layer.ffn, n))
                for n in ("wq", "wk", "wv", "wo", "w1", "w3", "w2")}
        s_qkv = {n: np.maximum(st[n][i], SCALE_FLOOR) / 127 for n in ("q", "k", "v")}
        qkv_mult = {n: [quantize_multiplier(norm_step * proj["w" + n].scale / s, bits=24)
                        for s in s_qkv[n]] for n in ("q", "k", "v")}
        rep = cfg.heads // cfg.kv_heads
        score_mult = [quantize_multiplier(s_qkv["q"][h] * s_qkv["k"][h // rep]
                                          / math.sqrt(cfg.head_dim) * 2 ** score_frac, bits=16)
                      for h in range(cfg.heads)]
        # attention output of head h in "wide" codes o·amax_o has step 2**-prob.frac · s_v / 127;
        # per-head s_v differ, so each head's wide codes are rescaled to the largest s_v first
        wide_step = attn.prob.lsb * float(s_qkv["v"].max()) / 127
        res_mult = {n: quantize_multiplier(norm_step * proj[n].scale / res.lsb, bits=24)
                    for n in ("wo", "w2")}
        layers.append(_Layer(
            attn_norm=_norm(layer.attn_norm.weight, cfg.hidden),
            ffn_norm=_norm(layer.ffn_norm.weight, cfg.hidden),
            attn_sub=_norm(layer.attn.sub_norm.weight, cfg.hidden),
            ffn_sub=_norm(layer.ffn.sub_norm.weight, cfg.ffn),
            proj=proj, qkv_mult=qkv_mult, s_qkv=s_qkv, score_mult=score_mult,
            wide_step=wide_step, res_mult=res_mult))
    head_w = model.head.weight.detach().double().numpy()
    head_step = float(np.abs(head_w).max()) / 127
    cos = quantize(model.rope_cos.double().numpy(), QType(ROPE_FRAC + 2, frac=ROPE_FRAC))
    sin = quantize(model.rope_sin.double().numpy(), QType(ROPE_FRAC + 2, frac=ROPE_FRAC))
    return IntegerBitNet(
        res=res, embed=quantize(model.embed.weight.detach().double().numpy(), res),
        layers=layers, final_norm=_norm(model.norm.weight, cfg.hidden),
        head=quantize(head_w, INT8, head_step), head_step=head_step,
        cos=cos, sin=sin, attn=attn, heads=cfg.heads, kv_heads=cfg.kv_heads,
        head_dim=cfg.head_dim, norm_eps=cfg.norm_eps, act=cfg.act,
        info={"residual": str(res), "score": str(attn.score), "calibration": {
            "residual_peak": st["res"], "score_peak": st["score"]}})


def _act(norm_codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, amax = ah.absmax_requant(norm_codes, INT8)
    return codes, amax


def _rope(acc: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """acc (T, heads, hd) exact integers → rotated, same scale (rounded from Q14)."""
    half = acc.shape[-1] // 2
    rot = np.concatenate([-acc[..., half:], acc[..., :half]], axis=-1)
    T = acc.shape[0]
    return round_shift(acc * cos[:T, None, :] + rot * sin[:T, None, :], ROPE_FRAC,
                       Rounding.HALF_EVEN)


def _to_static_int8(x: np.ndarray, amax: np.ndarray, mults) -> np.ndarray:
    """x (T, heads, hd) integers at step amax·unit → int8 codes at each head's static step."""
    out = np.empty_like(x)
    for h, (M, S) in enumerate(mults):
        out[:, h] = requantize(x[:, h] * amax[:, None], M, S, INT8)
    return out


def _rms(x: np.ndarray, norm: _Norm, eps: float, step) -> np.ndarray:
    """Integer RMSNorm of each row of ``x`` (any integer width) at real step ``step`` per row.

    Each row is first shifted right so its peak fits ``NORM_IN_BITS`` bits (RMSNorm is scale
    invariant; the row keeps ``NORM_IN_BITS`` significant bits) and ``ε`` is coded at the row's
    resulting step; rows sharing a shift and an ε code go through the golden kernel together.
    """
    peak = np.abs(x).max(axis=-1)
    shifts = np.array([max(0, int(v).bit_length() - NORM_IN_BITS) for v in peak], dtype=np.int64)
    xs = round_shift(x, shifts[:, None], Rounding.HALF_EVEN)
    steps = np.broadcast_to(np.asarray(step, dtype=np.float64), peak.shape) * np.exp2(shifts)
    eps_codes = np.array([_eps_code(eps, float(st)) if st > 0 else 0 for st in steps])
    out = np.empty(x.shape, dtype=np.int64)
    for e in np.unique(eps_codes):
        rows = eps_codes == e
        out[rows] = rn.rmsnorm_int(xs[rows], norm.gamma, int(e), norm.p)
    return out


def integer_forward(m: IntegerBitNet, tokens, capture: dict | None = None) -> np.ndarray:
    """Integer logits (T, vocab) of one token sequence (causal prefill); argmax = greedy choice.

    Row ``t``'s logits are integers at a positive per-token step, so ``argmax`` is the greedy
    next-token choice after token ``t``. With ``capture`` (a dict), each layer's int8 attention
    inputs and outputs are stored there as ``capture[layer] = {"q", "k", "v", "o", "amax"}``
    (q: (T, heads, hd), k, v: (T, kv_heads, hd), o: (T, heads, hd), amax: (T, heads)).
    """
    tokens = np.asarray(tokens, dtype=np.int64).ravel()
    T = tokens.size
    if not 1 <= T <= m.attn.max_len:
        raise HwsimError(f"sequence length must be 1 … {m.attn.max_len}, not {T}")
    if tokens.min() < 0 or tokens.max() >= m.embed.shape[0]:
        raise HwsimError("token id outside the vocabulary")
    H, KV, hd = m.heads, m.kv_heads, m.head_dim
    rep = H // KV
    r = m.embed[tokens]                                                       # (T, d) residual
    norm_step = NORM_OUT.lsb / 127
    for li, L in enumerate(m.layers):
        a, amax = _act(_rms(r, L.attn_norm, m.norm_eps, m.res.lsb))
        acc = {n: mvu.ternary_mvu_acc(L.proj[n].W, a) for n in ("wq", "wk", "wv")}
        q = _rope(acc["wq"].reshape(T, H, hd), m.cos, m.sin)
        k = _rope(acc["wk"].reshape(T, KV, hd), m.cos, m.sin)
        v = acc["wv"].reshape(T, KV, hd)
        q8 = _to_static_int8(q, amax, L.qkv_mult["q"])
        k8 = _to_static_int8(k, amax, L.qkv_mult["k"])
        v8 = _to_static_int8(v, amax, L.qkv_mult["v"])
        wide = np.empty((T, H, hd), dtype=np.int64)
        sv_max = float(L.s_qkv["v"].max())
        if capture is not None:
            capture[li] = {"q": q8, "k": k8, "v": v8, "o": np.empty_like(q8),
                           "amax": np.empty((T, H), dtype=np.int64)}
        for h in range(H):
            o, amax_o = ah.attention_head(q8[:, h], k8[:, h // rep], v8[:, h // rep],
                                          *L.score_mult[h], m.attn, causal=True)
            if capture is not None:
                capture[li]["o"][:, h], capture[li]["amax"][:, h] = o, amax_o
            # rescale head h's step s_v[h] to the common s_v max (Q15 ratio, exact rounding)
            ratio = round(float(L.s_qkv["v"][h // rep]) / sv_max * (1 << 15))
            wide[:, h] = round_shift(o * amax_o[:, None] * ratio, 15, Rounding.HALF_EVEN)
        wide = wide.reshape(T, H * hd)
        a2, amax2 = _act(_rms(wide, L.attn_sub, m.norm_eps, L.wide_step))
        acc_o = mvu.ternary_mvu_acc(L.proj["wo"].W, a2)
        r = r + requantize(acc_o * amax2[:, None], *L.res_mult["wo"], m.res)
        a, amax = _act(_rms(r, L.ffn_norm, m.norm_eps, m.res.lsb))
        g = mvu.ternary_mvu_acc(L.proj["w1"].W, a)
        u = mvu.ternary_mvu_acc(L.proj["w3"].W, a)
        gp = np.maximum(g, 0)
        prod = gp * gp * u                                                    # (T, ffn) exact
        # the real step of each row of `prod` (it sets the ε code of SubLN only)
        unit = amax.astype(np.float64) * norm_step
        step = unit ** 3 * L.proj["w1"].scale ** 2 * L.proj["w3"].scale
        a3, amax3 = _act(_rms(prod, L.ffn_sub, m.norm_eps, step))
        acc2 = mvu.ternary_mvu_acc(L.proj["w2"].W, a3)
        r = r + requantize(acc2 * amax3[:, None], *L.res_mult["w2"], m.res)
    a, _ = _act(_rms(r, m.final_norm, m.norm_eps, m.res.lsb))
    return int8_matmul(a, m.head)                                            # (T, vocab)


def attach_datapath(model: BitNetModel, m: IntegerBitNet) -> BitNetModel:
    """A copy of ``model`` whose attention and LM head fake-quantize exactly where ``m``
    quantizes (static per-head int8 q/k/v, int8 scores, uint8 probabilities, per-row int8
    head outputs, int8 LM head): the torch fake-quant model of the integer datapath."""
    import copy

    from .model import AttentionQuant

    out = copy.deepcopy(model).eval()
    for layer, L in zip(out.layers, m.layers, strict=True):
        layer.attn.datapath = AttentionQuant(
            torch.tensor(L.s_qkv["q"]), torch.tensor(L.s_qkv["k"]), torch.tensor(L.s_qkv["v"]),
            m.attn.score.frac)
    out.head_step = m.head_step
    return out
