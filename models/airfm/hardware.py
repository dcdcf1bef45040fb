"""AirFM-DDA on the attention-head kernel: one real DDA window as int8 codes, and the cost of
window versus global attention from the kernel's own formulas.

* :func:`window_case` runs a channel sample through the net up to one attention layer, takes
  the ``q, k, v`` of one window (``w`` tokens × ``dim``), quantizes each tensor to int8 codes
  with its own absmax scale (``s = max|x| / 127``, round half to even, saturate), folds
  ``s_q · s_k / √dim / 2**-4`` into the score multiplier ``(M, S)``
  (:func:`hwsim.golden.common.int8_matmul.fold_scale`) and writes the window as the kernel's operation
  stream: ``clear``, ``w × kv``, ``w × q`` (non-causal: every query sees the whole window).
  In odd (shifted-window) layers the window index counts windows of the rolled grid.
  :func:`hwsim.golden.common.attention_head.run_ops` is its golden result; the RTL must equal it.
  For a QAT net (``weight_bits`` set) the codes are those of its own int8 q/k/v quantizers
  (value / Brevitas scale), so the RTL sees exactly the integers the QAT model attends with.
* :func:`attention_cost` counts one inference's attention on the kernel: per layer,
  ``tokens / w`` windows, each ``stream_cycles`` of that window's operation stream and
  ``action_counts(p, w, queries=w)``, for ``w`` = window tokens (window attention) and
  ``w`` = all ``A·F`` tokens (global attention; the KV cache then holds the whole grid). The
  formulas are :mod:`hwsim.golden.common.attention_head`'s — none is restated here.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from hwsim.golden.common import attention_head as spec
from hwsim.golden.common.int8_matmul import fold_scale
from quant.qtype import INT8, quantize

from .model import AirFMConfig, AirFMNet

__all__ = ["attention_cost", "head_params", "window_case", "window_qkv"]


def head_params(cfg: AirFMConfig, attention: str, lanes: int = 16, exp_lanes: int = 4,
                multiplier: str = "dsp") -> spec.AttentionParams:
    """Attention-head parameters for one ``attention`` ("window" / "global") layer of ``cfg``."""
    L = cfg.replace(attention=attention).window_tokens
    return spec.AttentionParams(head_dim=cfg.dim, max_len=L, lanes=min(lanes, cfg.dim),
                                exp_lanes=min(exp_lanes, L), multiplier=multiplier)


def window_qkv(net: AirFMNet, x: np.ndarray, layer: int = 0, window: int = 0):
    """Float ``(q, k, v)`` (w, dim) of one window of one sample ``x`` (2P, A, F)."""
    net.eval()
    with torch.no_grad():
        _, h = net.tokens(torch.as_tensor(np.asarray(x, np.float32))[None])
        for blk in net.blocks[:layer]:
            h = blk(h)
        q, k, v = net.blocks[layer].qkv(h)
    return q[window].double().numpy(), k[window].double().numpy(), v[window].double().numpy()


def _codes(x: np.ndarray) -> tuple[np.ndarray, float]:
    s = max(float(np.abs(x).max()), 1e-12) / INT8.max_code
    return quantize(x, INT8, s), s


def _qat_codes(x: np.ndarray, quant) -> tuple[np.ndarray, float]:
    """The int8 codes a Brevitas ``QuantIdentity`` produced: ``x / scale``, checked integral."""
    s = float(quant.act_quant.scale().detach())
    c = np.rint(x / s)
    if np.abs(c - x / s).max() > 1e-3 or c.min() < INT8.min_code or c.max() > INT8.max_code:
        raise ValueError("q/k/v are not int8 codes of their quantizer's scale")
    return c.astype(np.int64), s


def window_case(net: AirFMNet, x: np.ndarray, p: spec.AttentionParams, layer: int = 0,
                window: int = 0) -> dict:
    """One window as a kernel case (``arrays`` for the runner) plus its golden and float result."""
    from hwsim.kernels.attention_head import ops_to_arrays

    q, k, v = window_qkv(net, x, layer, window)
    if q.shape != (p.max_len, p.head_dim):
        raise ValueError(f"window is {q.shape}, kernel expects ({p.max_len}, {p.head_dim})")
    if net.cfg.weight_bits is None:
        (Q, s_q), (K, s_k), (V, s_v) = _codes(q), _codes(k), _codes(v)
    else:
        blk = net.blocks[layer]
        (Q, s_q), (K, s_k), (V, s_v) = (_qat_codes(t, m) for t, m in
                                        ((q, blk.qq), (k, blk.kq), (v, blk.vq)))
    M, S = fold_scale(s_q, s_k, 1 / math.sqrt(p.head_dim), 1 / p.score.lsb, bits=p.mult_bits)
    ops = [("clear",), *[("kv", K[t], V[t]) for t in range(len(K))],
           *[("q", Q[t]) for t in range(len(Q))]]
    golden = spec.run_ops(ops, M, S, p)
    o = np.stack([g[0] for g in golden])
    amax = np.array([g[1] for g in golden])
    real = o * (amax[:, None] / p.out.max_code) * p.prob.lsb * s_v
    ref = spec.attention_float(Q, K, V, s_q, s_k, s_v)
    return {"name": f"airfm_layer{layer}_window{window}",
            "arrays": {**ops_to_arrays(ops, p), "mult": M, "shift": S},
            "golden_o": o, "golden_amax": amax, "scales": (s_q, s_k, s_v),
            "golden_real": real, "float_ref": ref, "float_qkv": (q, k, v)}


def attention_cost(cfg: AirFMConfig, lanes: int = 16, exp_lanes: int = 4,
                   clock_hz: float = 250e6) -> dict:
    """Cycles, latency and actions of all attention layers of one inference, window vs global."""
    out = {}
    for att in ("window", "global"):
        p = head_params(cfg, att, lanes, exp_lanes)
        w = p.max_len
        nw = cfg.tokens // w
        zero = np.zeros(p.head_dim, dtype=np.int64)
        ops = [("clear",), *[("kv", zero, zero)] * w, *[("q", zero)] * w]
        cyc = spec.stream_cycles(p, ops)
        counts = {k: v * nw * cfg.layers for k, v in spec.action_counts(p, w, queries=w).items()}
        total = cyc * nw * cfg.layers
        out[att] = {"window_tokens": w, "windows_per_layer": nw, "layers": cfg.layers,
                    "cycles_per_window": cyc, "cycles": total,
                    "latency_us": total / clock_hz * 1e6,
                    "kv_cache_bits": 2 * w * p.head_dim * 8, "actions": counts}
    g, wd = out["global"], out["window"]
    out["ratio_cycles"] = g["cycles"] / wd["cycles"]
    out["ratio_mac"] = ((g["actions"]["qk_mac"] + g["actions"]["av_mac"])
                        / (wd["actions"]["qk_mac"] + wd["actions"]["av_mac"]))
    out["ratio_kv_cache"] = g["kv_cache_bits"] / wd["kv_cache_bits"]
    out["clock_hz"] = clock_hz
    out["lanes"], out["exp_lanes"] = min(lanes, cfg.dim), exp_lanes
    return out
