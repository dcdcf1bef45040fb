"""The whole BitNet b1.58 decoder on hwsim's golden kernels, integer codes between every layer.

:func:`build_integer_model` turns a trained ternary :class:`~models.bitnet.model.BitNetModel`
into integer parameters (after a short calibration on training text for the static scales);
:func:`integer_forward` then runs a token sequence (causal prefill) on integer numpy arrays:

==========================  ===============================================================
residual stream             int64 codes of ``QType(48, frac=F)`` (``F`` from calibration)
embedding                   table quantized to the residual format (a lookup)
RMSNorm, SubLN              :func:`hwsim.golden.vitallm.rmsnorm_int.rmsnorm_int` → int24 codes
                            (each row first shifted right to ≤ 22 significant bits); gains
                            in one format per kind of norm for all layers (one datapath)
activation quantizer        :func:`hwsim.golden.common.attention_head.absmax_requant` → int8 + amax
projections                 :func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu_acc` (exact)
RoPE                        ``round(acc·cos + rot(acc)·sin)`` with Q1.20 tables
q, k, v                     static per-head int8 scales (calibrated absmax) by ``requantize``
attention                   :func:`hwsim.golden.common.attention_head.attention_head` (causal),
                            int8 scores → integer softmax → int8 output + per-row amax
gated FFN                   ``relu(g)² · u`` on the exact accumulators (SubLN follows), or
                            ``silu(g) · u`` with the integer SiLU (gate at step 2⁻⁷, table)
residual adds               ``requantize(acc · amax, M, S)`` into the residual format
LM head                     int8 per-tensor weights × int8 activations (exact), argmax
==========================  ===============================================================

Only integers flow between layers, and every per-token quantity is computed from integers.
Floats appear only in constants fixed at build time: the requantization multipliers and each
norm's ε constant ``E = round(ε · 2**(2G) / step²)`` at its fixed input step
(:func:`hwsim.golden.vitallm.layer_codes.eps_constant`); a row's ε code is ``E`` divided by
``amax**power · 4**shift`` in integers (:func:`~hwsim.golden.vitallm.layer_codes.eps_code`; ε is
the one term that breaks RMSNorm's scale invariance, so it follows the row's step).

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
from hwsim.golden.common import attention_head as ah
from hwsim.golden.common.int8_matmul import Int8Weights, int8_matmul
from hwsim.golden.vitallm import bitnet_layer as bl
from hwsim.golden.vitallm import layer_codes as lc
from quant.brevitas_quantizers import SCALE_FLOOR
from quant.qtype import INT8, QType, quantize, quantize_multiplier

from .model import BitLinear, BitNetModel, apply_rope

__all__ = ["IntegerBitNet", "attach_datapath", "build_integer_model", "integer_forward",
           "integer_generate"]

NORM_OUT = lc.NORM_OUT               # RMSNorm output codes: real range ±128
GAMMA_BITS = lc.NORM_GAMMA_BITS      # RMSNorm gain codes (fractional bits from the peak)
ROPE_FRAC = lc.ROPE_FRAC             # cos / sin table codes
HEAD_RATIO_FRAC = 20                 # per-head v-step ratios
RMS_FRAC = lc.RMS_FRAC               # G of the integer RMSNorm (Σx² · 2**2G stays below 2**62)
WIDE = lc.WIDE                       # container of wide integer codes fed to the norms
RES_BITS = 36                        # twice the calibrated residual peak maps to 2**RES_BITS
NORM_IN_BITS = lc.NORM_IN_BITS       # a norm input row is right-shifted to at most this many bits


# one decoder layer's integer parameters live in hwsim.golden.vitallm.layer_codes, its datapath in
# hwsim.golden.vitallm.bitnet_layer
_Norm = lc.NormCodes
_Proj = lc.ProjCodes
_Layer = lc.LayerCodes


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


def _norm(weight: torch.Tensor, n: int, eps: float, step: float, eps_power: int = 0,
          peak: float | None = None) -> _Norm:
    """A norm's codes; its input codes have real step ``step · amax**(eps_power / 2)``. The
    gains' format comes from ``peak`` (default: their own largest ``|γ|``)."""
    g = weight.detach().double().numpy()
    peak = max(float(np.abs(g).max()) if peak is None else peak, 1e-6)
    top = (1 << (GAMMA_BITS - 1)) - 1
    frac = min(GAMMA_BITS - 2, math.floor(math.log2(top / peak)))   # |γ| · 2**frac ≤ top
    p = lc.norm_params(n, math.gcd(n, 16), frac)
    return _Norm(quantize(g, p.gamma), p, eps=lc.eps_constant(eps, step), eps_power=eps_power)


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
    if cfg.act == "relu2" and not cfg.subln:
        raise HwsimError(f"{cfg.name}: the integer relu² FFN needs SubLN (its product's step "
                         "∝ amax³ is too wide for the barrier without a norm); use act=silu or "
                         "subln=True")
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
    # one datapath runs every layer (the accelerator's decode-model): each kind of norm has one
    # gain format for the whole model, set by its largest |γ| over the layers
    kinds = {"attn_norm": lambda ly: ly.attn_norm, "ffn_norm": lambda ly: ly.ffn_norm}
    if cfg.subln:
        kinds |= {"attn_sub": lambda ly: ly.attn.sub_norm, "ffn_sub": lambda ly: ly.ffn.sub_norm}
    peak = {k: max(float(get(ly).weight.detach().abs().max()) for ly in model.layers)
            for k, get in kinds.items()}
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
        if cfg.act == "relu2":
            # relu(g)²·u of a row with FFN-input amax a has step (a·norm_step)³ · s_w1² · s_w3
            ffn_sub_step = norm_step ** 3 * proj["w1"].scale ** 2 * proj["w3"].scale
            gate_mult, sub_power = None, lc.FFN_SUB_EPS_POWER
        else:
            # silu(g)·u: the gate g·a·norm_step·s_w1 at the fixed step 2**-SILU_FRAC, times u
            # (step a·norm_step·s_w3)
            gate_mult = quantize_multiplier(norm_step * proj["w1"].scale * 2 ** lc.SILU_FRAC,
                                            bits=lc.MULT_BITS)
            ffn_sub_step = 2.0 ** -lc.SILU_FRAC * norm_step * proj["w3"].scale
            sub_power = lc.SILU_SUB_EPS_POWER
        # the barrier before wo / w2 quantizes norm codes (SubLN) or the wide rows themselves
        # (no SubLN: codes at wide_step, or the FFN product at ffn_sub_step · amax**k)
        act_step = ({"wo": norm_step, "w2": norm_step} if cfg.subln else
                    {"wo": wide_step / 127, "w2": ffn_sub_step / 127})
        res_mult = {n: quantize_multiplier(act_step[n] * proj[n].scale / res.lsb,
                                           bits=lc.MULT_BITS) for n in ("wo", "w2")}
        eps = cfg.norm_eps
        layers.append(_Layer(
            attn_norm=_norm(layer.attn_norm.weight, cfg.hidden, eps, res.lsb,
                            peak=peak["attn_norm"]),
            ffn_norm=_norm(layer.ffn_norm.weight, cfg.hidden, eps, res.lsb,
                           peak=peak["ffn_norm"]),
            attn_sub=(_norm(layer.attn.sub_norm.weight, cfg.hidden, eps, wide_step,
                            peak=peak["attn_sub"]) if cfg.subln else None),
            ffn_sub=(_norm(layer.ffn.sub_norm.weight, cfg.ffn, eps, ffn_sub_step, sub_power,
                           peak=peak["ffn_sub"]) if cfg.subln else None),
            proj=proj, qkv_mult=qkv_mult, s_qkv=s_qkv, score_mult=score_mult,
            wide_step=wide_step, res_mult=res_mult, act=cfg.act, gate_mult=gate_mult))
    head_w = model.head.weight.detach().double().numpy()
    head_step = float(np.abs(head_w).max()) / 127
    cos = quantize(model.rope_cos.double().numpy(), QType(ROPE_FRAC + 2, frac=ROPE_FRAC))
    sin = quantize(model.rope_sin.double().numpy(), QType(ROPE_FRAC + 2, frac=ROPE_FRAC))
    return IntegerBitNet(
        res=res, embed=quantize(model.embed.weight.detach().double().numpy(), res),
        layers=layers, final_norm=_norm(model.norm.weight, cfg.hidden, cfg.norm_eps, res.lsb),
        head=quantize(head_w, INT8, head_step), head_step=head_step,
        cos=cos, sin=sin, attn=attn, heads=cfg.heads, kv_heads=cfg.kv_heads,
        head_dim=cfg.head_dim, norm_eps=cfg.norm_eps, act=cfg.act,
        info={"residual": str(res), "score": str(attn.score), "calibration": {
            "residual_peak": st["res"], "score_peak": st["score"]}})


_act = lc.act_quant


def _head_weights(m: IntegerBitNet) -> Int8Weights:
    """The LM head's int8 codes checked and prepared for the exact product, on first use."""
    cached = m.__dict__.get("_head_weights")
    if cached is None or cached[0] is not m.head:
        cached = (m.head, Int8Weights(m.head))
        m.__dict__["_head_weights"] = cached
    return cached[1]


#: sequences of a batch that :func:`integer_forward` runs side by side (bounds the memory of the
#: attention scores, (chunk, heads, T, T) int64, and keeps them in cache)
BATCH_CHUNK = 4


def integer_forward(m: IntegerBitNet, tokens, capture: dict | None = None, attend=None,
                    with_step: bool = False):
    """Integer logits (T, vocab) of one token sequence (causal prefill); argmax = greedy choice.

    ``tokens`` (B, T) runs a batch of sequences of one length: logits (B, T, vocab), each
    sequence's codes exactly those of running it alone (the batch goes through the layers
    ``BATCH_CHUNK`` sequences at a time).

    Row ``t``'s logits are integers at a positive per-token step, so ``argmax`` is the greedy
    next-token choice after token ``t``. With ``capture`` (a dict), each layer's int8 attention
    inputs and outputs are stored there as ``capture[layer] = {"q", "k", "v", "o", "amax"}``
    (q: (T, heads, hd), k, v: (T, kv_heads, hd), o: (T, heads, hd), amax: (T, heads)), plus
    the layer's residual rows in, after the attention block's ``wo`` add and out, ``x_in``,
    ``x_attn``, ``x_out`` (T, hidden), and the FFN's ``ffn_a``, ``ffn_amax``, ``prod``
    (:func:`hwsim.golden.vitallm.bitnet_layer.layer_forward`); a batch gives them a leading
    ``B`` axis.

    ``attend`` replaces dense causal attention in every layer (e.g.
    :func:`hwsim.golden.vitallm.bitnet_layer.sparse_attend`). With ``with_step`` the result is
    ``(logits, step)``: ``logits · step[..., None]`` are the real-valued logits.
    """
    tokens = np.asarray(tokens)
    if tokens.dtype.kind not in "iu" or tokens.ndim not in (1, 2):
        raise HwsimError(f"tokens must be integer ids, (T,) or (B, T), not {tokens.dtype} "
                         f"{tokens.shape}")
    tokens = tokens.astype(np.int64)
    T = tokens.shape[-1]
    if not 1 <= T <= m.attn.max_len:
        raise HwsimError(f"sequence length must be 1 … {m.attn.max_len}, not {T}")
    if tokens.min() < 0 or tokens.max() >= m.embed.shape[0]:
        raise HwsimError("token id outside the vocabulary")
    if tokens.ndim == 2 and capture is None and tokens.shape[0] > BATCH_CHUNK:
        parts = [integer_forward(m, tokens[i:i + BATCH_CHUNK], attend=attend,
                                 with_step=with_step)
                 for i in range(0, tokens.shape[0], BATCH_CHUNK)]
        if with_step:
            return (np.concatenate([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]))
        return np.concatenate(parts)
    r = m.embed[tokens]                                                 # (…, T, d) residual
    for li, L in enumerate(m.layers):
        cap = {"x_in": r} if capture is not None else None
        r, _, _ = bl.layer_forward(L, m, r, attend=attend, capture=cap)
        if capture is not None:
            capture[li] = {**cap, "x_out": r}
    logits, amax = _head(m, r)
    if with_step:
        return logits, amax.astype(np.float64) * (NORM_OUT.lsb / 127) * m.head_step
    return logits


def _head(m: IntegerBitNet, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Residual rows (…, d) → final norm → int8 + amax → exact int8 LM head: ``(logits (…,
    vocab), amax (…))``."""
    a, amax = _act(lc.rms_rows(r.reshape(-1, r.shape[-1]), m.final_norm))
    logits = int8_matmul(a, _head_weights(m))                                 # exact
    return logits.reshape(*r.shape[:-1], -1), amax.reshape(r.shape[:-1])


def integer_generate(m: IntegerBitNet, prompt, new_tokens: int, attend=None) -> list[int]:
    """Greedy continuation of ``prompt`` by ``new_tokens`` tokens on the integer model: the
    prompt in one causal prefill, then one decode step per new token against every layer's
    KV cache, so no earlier position is recomputed. Returns prompt + new tokens; each new token
    is ``argmax(integer_forward(m, prefix, attend=attend)[-1])`` of its prefix, code for code
    (``attend`` must, like the dense and top-K rules, treat a row the same whether its keys
    come from the cache or from its own step)."""
    prompt = np.asarray(prompt)
    if prompt.ndim != 1 or prompt.size == 0 or prompt.dtype.kind not in "iu":
        raise HwsimError("generation needs a prompt of at least one integer token id")
    if isinstance(new_tokens, bool) or not isinstance(new_tokens, int) or new_tokens < 0:
        raise HwsimError(f"new_tokens must be a non-negative integer, not {new_tokens!r}")
    if prompt.size + new_tokens - 1 > m.attn.max_len:
        raise HwsimError(f"prompt ({prompt.size}) + new tokens ({new_tokens}) need "
                         f"{prompt.size + new_tokens - 1} positions > {m.attn.max_len}")
    if prompt.min() < 0 or prompt.max() >= m.embed.shape[0]:
        raise HwsimError("token id outside the vocabulary")
    seq = [int(t) for t in prompt]
    caches: list = [None] * len(m.layers)
    step, pos = prompt.astype(np.int64), 0
    while len(seq) < prompt.size + new_tokens:
        r = m.embed[step]
        for i, L in enumerate(m.layers):
            r, k8, v8 = bl.layer_forward(L, m, r, caches[i], pos, attend)
            caches[i] = (k8, v8) if caches[i] is None else (
                np.concatenate([caches[i][0], k8]), np.concatenate([caches[i][1], v8]))
        pos += step.size
        logits, _ = _head(m, r[-1:])
        seq.append(int(np.argmax(logits[0])))
        step = np.array(seq[-1:], dtype=np.int64)
    return seq


def attach_datapath(model: BitNetModel, m: IntegerBitNet) -> BitNetModel:
    """A copy of ``model`` whose attention and LM head fake-quantize exactly where ``m``
    quantizes (static per-head int8 q/k/v, int8 scores, uint8 probabilities, per-row int8
    head outputs, int8 LM head), and whose SiLU FFN (``act="silu"``) rounds the gate and its
    SiLU to ``2**-SILU_FRAC`` as the integer SiLU does: the torch fake-quant model of the
    integer datapath."""
    import copy

    from .model import AttentionQuant

    out = copy.deepcopy(model).eval()
    for layer, L in zip(out.layers, m.layers, strict=True):
        layer.attn.datapath = AttentionQuant(
            torch.tensor(L.s_qkv["q"]), torch.tensor(L.s_qkv["k"]), torch.tensor(L.s_qkv["v"]),
            m.attn.score.frac)
        if m.act == "silu":
            layer.ffn.silu_frac = lc.SILU_FRAC
    out.head_step = m.head_step
    return out
