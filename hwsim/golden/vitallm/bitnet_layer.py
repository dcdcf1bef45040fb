"""One BitNet b1.58 decoder layer on integer codes: the model reference of the VitaLLM
decoder-layer datapath.

This module is the single definition of a layer of hwsim's integer BitNet
(:func:`models.bitnet.integer_model.integer_forward` loops over :func:`layer_forward`) and of
one decode step of it with a KV cache (:func:`decode_step`). The accelerator that runs it is
:class:`hwsim.golden.vitallm.decoder_layer.DecoderLayerParams` (its cycles and KV traffic); the shared
integer steps are in :mod:`hwsim.golden.vitallm.layer_codes`.

Datapath of one layer (``x`` residual codes, integer everywhere)::

    a  = barrier(rmsnorm(x))                 int8 + per-token amax (absmax re-quantization)
    q, k, v = TINT(wq, wk, wv) · a           exact ternary accumulators
    q, k = rope(q), rope(k)                  Q1.20 tables
    q8, k8, v8 = static per-head int8        requantize(acc · amax, M, S)
    o_h = attention(q8_h, K_cache, V_cache)  Booth int8 core: dense, or LO surrogate + top-K
    x += requant(TINT(wo) · barrier(subln(o)))
    a  = barrier(rmsnorm(x))
    x += requant(TINT(w2) · barrier(subln(relu(w1·a)² · (w3·a))))      act="relu2" (2B4T)
    x += requant(TINT(w2) · barrier(subln(silu(w1·a) · (w3·a))))       act="silu" (1bitLLM)

``silu`` is the integer SiLU of :func:`hwsim.golden.vitallm.layer_codes.silu_mul` (the gate
requantized to a fixed step, a 1024-entry table, ≤ ½ LSB). Without SubLN (``attn_sub`` /
``ffn_sub`` None, the 700M–3B configurations) the barrier takes the wide rows directly
(:func:`~hwsim.golden.vitallm.layer_codes.act_quant_wide`); the row's per-token scale — its
amax, shift and, for the FFN, the FFN input's amax to the product's power — enters the residual
add's integer scale.

Attention is pluggable (``attend``): :func:`dense_attend` (causal attention on every cached
token) or :func:`sparse_attend` (VitaLLM's predictive sparse attention: each query keeps
``ceil(ratio · L)`` of its ``L`` visible tokens by the leading-one surrogate and attends to
those exactly; ratio 1 is dense, code for code).
"""

from __future__ import annotations

import math

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.golden.vitallm import sparse_attention as sa
from hwsim.golden.vitallm import ternary_mvu as mvu

__all__ = [
    "decode_step",
    "dense_attend",
    "layer_forward",
    "qkv_frontend",
    "sparse_attend",
    "sparse_keep",
    "topk_attend",
]


def qkv_frontend(L: lc.LayerCodes, ctx, a, amax, pos0: int = 0):
    """TINT core → Booth core: int8 activations ``a`` (T, hidden) with their per-token
    ``amax`` (T,) → the ternary q, k, v accumulators → RoPE on q and k (positions ``pos0 …``)
    → int8 codes at each head's static step. Returns ``q8`` (T, heads, hd), ``k8``, ``v8``
    (T, kv_heads, hd). Leading batch axes (``a`` (B, T, hidden), ``amax`` (B, T)) carry
    through: sequences side by side at the same positions."""
    lead = a.shape[:-1]
    H, KV, hd = ctx.heads, ctx.kv_heads, ctx.head_dim
    # q | k | v accumulators in one product (a: the quantizer's int8 codes, no range pass)
    qkv = mvu.ternary_mvu_acc(L.fused("wq", "wk", "wv"), a, checked=True)
    q = lc.rope(qkv[..., :H * hd].reshape(*lead, H, hd), ctx.cos, ctx.sin, pos0)
    k = lc.rope(qkv[..., H * hd:(H + KV) * hd].reshape(*lead, KV, hd), ctx.cos, ctx.sin, pos0)
    v = qkv[..., (H + KV) * hd:].reshape(*lead, KV, hd)
    return (lc.to_static_int8(q, amax, L.qkv_mult["q"]),
            lc.to_static_int8(k, amax, L.qkv_mult["k"]),
            lc.to_static_int8(v, amax, L.qkv_mult["v"]))


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
    return _sparse(lambda visible: sparse_keep(ratio, visible), stats)


def topk_attend(keep: int, stats: dict | None = None):
    """The accelerator's rule as an ``attend`` function: query row ``t`` sees ``L_t`` tokens
    and keeps ``min(keep, L_t)`` of them (the ``decode-attention`` kernel of ``K = keep`` at
    run-time length ``L_t``); ``stats`` as :func:`sparse_attend`."""
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise HwsimError(f"keep (K) must be a positive integer, not {keep!r}")
    return _sparse(lambda visible: min(keep, visible), stats)


def _sparse(keep_of, stats: dict | None):
    def attend(q, K, V, M, S, p):
        T, L = q.shape[0], K.shape[0]
        o = np.empty_like(q)
        amax = np.empty(T, dtype=np.int64)
        masks = np.zeros((T, L), dtype=bool)
        for t in range(T):
            Lt = L - T + t + 1
            keep = keep_of(Lt)
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



def layer_forward(L: lc.LayerCodes, ctx, x, cache=None, pos0: int = 0, attend=None,
                  capture: dict | None = None):
    """Rows ``x`` (T, hidden) of the residual stream at positions ``pos0 … pos0+T−1`` through
    one decoder layer; ``cache = (k8, v8)`` holds the int8 keys and values (P, kv_heads, hd) of
    the ``P = pos0`` earlier positions (``None``: no earlier positions).

    A batch ``x`` (B, T, hidden) runs ``B`` sequences side by side at the same positions (the
    cache then (B, P, kv_heads, hd), every result with the leading ``B``); each sequence's codes
    are exactly those of running it alone.

    ``ctx`` carries the model-wide constants: ``heads``, ``kv_heads``, ``head_dim``,
    ``res`` (residual QType), ``attn`` (:class:`AttentionParams`), ``cos``,
    ``sin`` (an :class:`models.bitnet.integer_model.IntegerBitNet`).

    Returns ``(x_out, k8, v8)``: the new residual rows and this step's int8 keys and values.
    ``capture`` (a dict) receives ``q``, ``k``, ``v`` (int8, this step's rows), ``o``, ``amax``,
    ``x_attn`` (the residual rows after the attention block's ``wo`` add), and the FFN's
    ``ffn_a``, ``ffn_amax`` (its int8 activations and their amax), ``prod`` (the exact
    ``relu(g)²·u`` or ``silu(g)·u`` rows, (T, ffn)).
    """
    attend = attend or dense_attend
    x = np.asarray(x, dtype=np.int64)
    if x.ndim not in (2, 3):
        raise HwsimError(f"a layer takes residual rows (T, hidden) or (B, T, hidden), "
                         f"got {x.shape}")
    batched = x.ndim == 3
    xb = x if batched else x[None]
    B, T, D = xb.shape
    H, KV, hd = ctx.heads, ctx.kv_heads, ctx.head_dim
    rep = H // KV
    if cache is None:
        ck = cv = np.zeros((B, 0, KV, hd), dtype=np.int64)
    else:
        ck, cv = (np.asarray(c, dtype=np.int64) for c in cache)
        if not batched:
            ck, cv = ck[None], cv[None]
    if ck.ndim != 4 or ck.shape[1] != pos0:
        raise HwsimError(f"the KV cache holds {ck.shape[1] if ck.ndim == 4 else ck.shape} "
                         f"positions, not pos0={pos0}")
    if ck.shape != (B, pos0, KV, hd) or cv.shape != ck.shape:
        raise HwsimError(f"the KV cache must be ({B}, {pos0}, {KV}, {hd}) keys and values, "
                         f"got {ck.shape} and {cv.shape}")
    rows = xb.reshape(B * T, D)
    a, amax = nq.norm_act_rows(rows, L.attn_norm)
    q8, k8, v8 = qkv_frontend(L, ctx, a.reshape(B, T, D), amax.reshape(B, T), pos0)
    K_all = np.concatenate([ck, k8], axis=1)
    V_all = np.concatenate([cv, v8], axis=1)
    ratios = np.asarray(lc.v_ratios(L, H, KV), dtype=np.int64)
    if attend is dense_attend:                     # every sequence and head at once
        o, amax_o = ah.attention_heads(q8, K_all, V_all, L.score_mult, ctx.attn, causal=True)
    else:
        o, amax_o = np.empty_like(q8), np.empty((B, T, H), dtype=np.int64)
        for b in range(B):
            for h in range(H):
                o[b, :, h], amax_o[b, :, h] = attend(q8[b, :, h], K_all[b, :, h // rep],
                                                     V_all[b, :, h // rep], *L.score_mult[h],
                                                     ctx.attn)
    wide = lc.v_rescale(o, amax_o, ratios).reshape(B * T, H * hd)
    if L.attn_sub is not None:
        a2, amax2 = nq.norm_act_rows(wide, L.attn_sub)
    else:                                  # wide codes at the fixed step wide_step
        a2, amax2 = lc.act_quant_wide(wide)
    rows = lc.residual_add(rows, mvu.ternary_mvu_acc(L.fused("wo"), a2, checked=True), amax2,
                           L.res_mult["wo"], ctx.res)
    x_attn = rows
    a, amax = nq.norm_act_rows(rows, L.ffn_norm)
    gu = mvu.ternary_mvu_acc(L.fused("w1", "w3"), a, checked=True)    # g | u accumulators
    g, u = gu[:, :gu.shape[1] // 2], gu[:, gu.shape[1] // 2:]
    if L.act == "silu":
        prod = lc.silu_mul(g, u, amax, L.gate_mult)                       # (rows, ffn) exact
    else:
        prod = lc.relu2_mul(g, u)                                         # (rows, ffn) exact
    if L.ffn_sub is not None:
        # row t of `prod` has step c·amax_t**k (c fixed, k = L.prod_power): its ε code carries
        # amax_t (eps_power 2k)
        a3, amax3 = nq.norm_act_rows(prod, L.ffn_sub, amax)
    else:
        a3, scale3 = lc.act_quant_wide(prod)
        amax3 = scale3 * amax.astype(object) ** L.prod_power
    rows = lc.residual_add(rows, mvu.ternary_mvu_acc(L.fused("w2"), a3, checked=True), amax3,
                           L.res_mult["w2"], ctx.res)

    def shaped(v, *tail):                  # rows back to (B, T, …), the batch axis dropped
        v = v.reshape(B, T, *tail)         # for an unbatched call
        return v if batched else v[0]

    if capture is not None:
        capture.update({"q": shaped(q8, H, hd), "k": shaped(k8, KV, hd),
                        "v": shaped(v8, KV, hd), "o": shaped(o, H, hd),
                        "amax": shaped(amax_o, H), "x_attn": shaped(x_attn, D),
                        "ffn_a": shaped(a, D), "ffn_amax": shaped(amax),
                        "prod": shaped(prod, prod.shape[-1])})
    return shaped(rows, D), shaped(k8, KV, hd), shaped(v8, KV, hd)


def decode_step(L: lc.LayerCodes, ctx, x, k_cache, v_cache, attend=None,
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
