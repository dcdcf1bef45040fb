"""Workloads: the operations of a model, per layer, for one decode step or one prefill.

A :class:`Workload` is a list of :class:`Layer` s (each repeated ``count`` times) whose
:class:`Op` s name a kernel, its shape and how many vectors (tokens) go through it. Counts and
cycles are not computed here: :mod:`hwsim.estimate.kernels` gets them through the kernel
registry, from the golden modules. Workloads come from a model configuration
(:func:`bitnet_workload`, the BitNet b1.58 shapes of :mod:`models.bitnet.config`) or from an
ONNX graph (:func:`onnx_workload`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from hwsim.errors import HwsimError

from .kernels import ternary_tile_params

__all__ = ["Layer", "Op", "Workload", "bitnet_workload", "known_models", "model_workloads",
           "onnx_workload"]


@dataclass(frozen=True)
class Op:
    """One kernel invocation: ``vectors`` inputs through ``kernel`` of ``shape``.

    ``weights`` is the number of stored weights the op reads (0 for activation × activation
    products) and ``weight_bits`` their packed width off chip (``None``: the architecture's
    ternary packing). ``kv_bits`` is KV-cache traffic (read + written) the op needs.
    """

    name: str
    kernel: str
    shape: dict
    vectors: int
    weights: int = 0
    weight_bits: float | None = None
    kv_read_bits: int = 0
    kv_write_bits: int = 0
    kv_read_random: bool = False    # scattered K/V rows (sparse decode), else one long stream
    kv_write_random: bool = False   # one new row per head (decode), else rows in a run
    in_width: int = 0   # activation elements in per vector (for prefill tiling)
    out_width: int = 0  # activation elements out per vector


@dataclass(frozen=True)
class Layer:
    name: str
    ops: tuple[Op, ...]
    count: int = 1


@dataclass(frozen=True)
class Workload:
    model: str
    phase: str          # "decode" (one token, given context) or "prefill" (tokens at once)
    tokens: int         # tokens produced (decode: 1) or consumed (prefill: prompt length)
    context: int        # cached tokens attended to (decode) / prompt length (prefill)
    layers: tuple[Layer, ...]
    notes: dict = field(default_factory=dict)

    @property
    def weights(self) -> int:
        return sum(op.weights * layer.count for layer in self.layers for op in layer.ops)


# ------------------------------------------------------------------------------------------
# BitNet b1.58
_BITNET = {"bitnet-700m": "700M", "bitnet-1.3b": "1.3B", "bitnet-3b": "3B",
           "bitnet-2b4t": "2B4T", "bitnet-tiny": "tiny"}


def known_models() -> list[str]:
    return sorted(_BITNET)


def _bitnet_layer(cfg, phase: str, n: int, ctx: int, keep: int | None = None) -> Layer:
    """One decoder layer: RMSNorm, wq/wk/wv, absmax barriers on q/k/v, QKᵀ, softmax, AV, wo,
    RMSNorm, w1/w3, the SiLU-gated product (``act="silu"`` configs: 700M, 1.3B, 3B), w2.

    Decode: ``n = 1`` new token attending to ``ctx`` cached tokens (itself included).
    Prefill: ``n`` prompt tokens, causal: token ``i`` attends to ``i + 1`` tokens, so the
    score matrix has ``n(n+1)/2`` live entries per head.

    ``keep`` (decode only): VitaLLM's predictive sparse attention — a leading-one + top-K
    selector per query head (``lo_topk``, reading the keys' 4-bit LO codes), then QKᵀ, softmax
    and AV on ``keep`` tokens; the KV bytes read are
    :func:`hwsim.golden.vitallm.decoder_layer.kv_read_bytes` (dense ones too).
    """
    from hwsim.golden.vitallm.decoder_layer import kv_read_bytes
    d, hd, h, kvd = cfg.hidden, cfg.head_dim, cfg.heads, cfg.kv_dim
    shapes = cfg.projection_shapes()

    def proj(name):
        rows, cols = shapes[name]
        return Op(name, "ternary_mvu", {"rows": rows, "cols": cols}, n, weights=rows * cols,
                  in_width=cols, out_width=rows)

    # Attention: each of `n` queries of each head attends to `keys` tokens, or causally (query i
    # of a prefill to i + 1 tokens). The Cost entries turn this into their kernels' shapes.
    sparse = phase == "decode" and keep is not None and keep < ctx
    att = {"heads": h, "head_dim": hd, "queries": n, "keys": keep if sparse else ctx,
           "causal": phase == "prefill"}
    if phase == "decode":
        kv = kv_read_bytes(h, cfg.kv_heads, hd, ctx, keep if sparse else ctx)
        kv_read = kv["sparse" if sparse else "dense"] * 8 // 2   # K (or V) rows read, int8
        kv_write = kvd * 8
    else:
        kv_read = kv_write = n * kvd * 8
    decode = phase == "decode"
    qk = Op("qk", "int8_matmul", {**att, "product": "qk"}, 1, kv_read_bits=kv_read,
            kv_write_bits=kv_write, kv_read_random=sparse, kv_write_random=decode)
    av = Op("av", "int8_matmul", {**att, "product": "av"}, 1, kv_read_bits=kv_read,
            kv_write_bits=kv_write, kv_read_random=sparse, kv_write_random=decode)
    sm = Op("softmax", "softmax_int", att, 1)

    def barrier(name):
        # VitaLLM's absmax re-quantization barrier between the ternary and the Booth core:
        # the q, k, v accumulators of a token → int8 with a per-token scale
        rows, cols = shapes[name]
        acc = ternary_tile_params(rows, cols, 1).acc_width
        return Op(f"{name}_barrier", "absmax_barrier", {"length": rows, "in_width": acc}, n)

    ops = [Op("attn_norm", "rmsnorm_int", {"length": d}, n),
           proj("wq"), proj("wk"), proj("wv"), barrier("wq"), barrier("wk"), barrier("wv"),
           # the selector reads the cached keys' 4-bit (sign, leading-one) codes, stored with
           # the KV cache (off chip when the cache is)
           *([Op("select", "lo_topk", {"tokens": ctx, "head_dim": hd, "keep": keep}, h,
                 kv_read_bits=kv["lo_table"] * 8)] if sparse else []),
           qk, sm, av, proj("wo"),
           Op("ffn_norm", "rmsnorm_int", {"length": d}, n),
           proj("w1"), proj("w3"),
           *([Op("ffn_act", "silu_mul", {"length": cfg.ffn}, n)] if cfg.act == "silu" else []),
           proj("w2")]
    return Layer("decoder", tuple(ops), count=cfg.layers)


def bitnet_workload(model: str, phase: str, tokens: int = 1, context: int = 128,
                    lm_head: bool = False, keep: int | None = None) -> Workload:
    """BitNet b1.58 decoder stack for one decode step (``tokens=1`` at ``context``) or a
    prefill of ``tokens`` prompt tokens. ``lm_head`` adds the int8 output projection
    (vocab × hidden, 8-bit weights) for the last token only. ``keep``: decode with sparse
    attention on ``keep`` of the ``context`` tokens (``1 ≤ keep ≤ context``)."""
    from models.bitnet.config import get_config

    if model not in _BITNET:
        raise HwsimError(f"unknown model {model!r}; known: {', '.join(known_models())}")
    if phase not in ("decode", "prefill"):
        raise HwsimError(f"phase must be decode or prefill, not {phase!r}")
    from hwsim.limits import MAX_CONTEXT, MAX_PROMPT, check_budget

    for name, v in (("tokens", tokens), ("context", context)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise HwsimError(f"{name} must be a positive integer, not {v!r}")
    check_budget("context", context, MAX_CONTEXT, unit="tokens")
    if phase == "prefill":
        check_budget("prefill tokens", tokens, MAX_PROMPT)
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int)
                             or not 1 <= keep <= context):
        raise HwsimError(f"keep (K) must be an integer 1 … context ({context}), not {keep!r}")
    cfg = get_config(_BITNET[model])
    n = 1 if phase == "decode" else tokens
    layers = [_bitnet_layer(cfg, phase, n, context, keep)]
    if lm_head:
        layers.append(Layer("lm_head", (Op("lm_head", "int8_matmul",
                                           {"m": 1, "k": cfg.hidden, "n": cfg.vocab}, 1,
                                           weights=cfg.hidden * cfg.vocab, weight_bits=8,
                                           in_width=cfg.hidden, out_width=cfg.vocab),), 1))
    return Workload(model, phase, n, context if phase == "decode" else n, tuple(layers),
                    {"config": cfg.name, "source": cfg.source})


def model_workloads(model: str, prompt: int, context: int, lm_head: bool = False,
                    onnx_seq: int | None = None,
                    keep: int | None = None) -> tuple[Workload, Workload]:
    """(decode, prefill) workloads of a named model or an ONNX file; ``keep``: sparse decode
    attention (BitNet models)."""
    if str(model).endswith(".onnx"):
        dec = onnx_workload(Path(model), "decode", 1)
        pre = onnx_workload(Path(model), "prefill", prompt)
        return dec, pre
    return (bitnet_workload(model, "decode", 1, context, lm_head, keep),
            bitnet_workload(model, "prefill", prompt, prompt, lm_head))


# ------------------------------------------------------------------------------------------
# ONNX graphs
def onnx_workload(path: Path, phase: str = "decode", tokens: int = 1) -> Workload:
    """Matrix products of an ONNX graph as ops: ``MatMul``/``Gemm`` with a constant weight.

    A weight initializer whose values are all in {−1, 0, +1} is a ternary projection on the
    ternary core; any other constant weight is an int8 product on the Booth core (8-bit
    weights off chip). ``Gemm`` honours ``transB``. Each product processes ``tokens`` vectors.
    The file is checked first (:func:`hwsim.estimate.onnx_input.read_onnx`: ``onnx.checker``,
    initializer sizes, finite weights); an op the estimator cannot price (another domain, a
    standard op that is not element-wise or data movement, a product without a constant 2-D
    weight) is refused by name. Element-wise ops are free and listed in ``notes['not_priced']``.
    """
    import numpy as np
    from onnx import numpy_helper

    from .onnx_input import FREE_OPS, read_onnx, unpriced_ops

    path = Path(path)
    model = read_onnx(path)
    bad = unpriced_ops(model)
    if bad:
        more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
        raise HwsimError(f"{path.name}: the estimator cannot price {', '.join(bad[:3])}{more}")
    inits = {t.name: t for t in model.graph.initializer}
    # Constant / DequantizeLinear chains: follow a weight through Q/DQ/Cast/Transpose to its data
    producers = {o: n for n in model.graph.node for o in n.output}

    def const(name, depth=0):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        node = producers.get(name)
        if node is None or depth > 4:
            return None
        if node.op_type == "Constant":
            return numpy_helper.to_array(node.attribute[0].t)
        if node.op_type in ("DequantizeLinear", "QuantizeLinear", "Cast", "Identity") and node.input:
            return const(node.input[0], depth + 1)
        if node.op_type == "Transpose":
            a = const(node.input[0], depth + 1)
            return None if a is None else a.T
        return None

    ops, free = [], []
    for i, node in enumerate(model.graph.node):
        if node.op_type not in ("MatMul", "Gemm"):
            if node.op_type in FREE_OPS:
                free.append(node.op_type)
            continue
        w = const(node.input[1]) if len(node.input) >= 2 else None
        if w is None or w.ndim != 2:
            raise HwsimError(f"{path.name}: the estimator cannot price {node.op_type} (node "
                             f"{node.name or i!r}: no constant 2-D weight; activation × "
                             f"activation products are not priced)")
        trans_b = any(a.name == "transB" and a.i for a in node.attribute)
        k, n = (w.shape[1], w.shape[0]) if trans_b else w.shape
        name = node.name or f"{node.op_type.lower()}{i}"
        if np.all(np.isin(w, (-1, 0, 1))):
            ops.append(Op(name, "ternary_mvu", {"rows": int(n), "cols": int(k)}, tokens,
                          weights=int(k * n), in_width=int(k), out_width=int(n)))
        else:
            ops.append(Op(name, "int8_matmul", {"m": 1, "k": int(k), "n": int(n)}, tokens,
                          weights=int(k * n), weight_bits=8, in_width=int(k),
                          out_width=int(n)))
    if not ops:
        raise HwsimError(f"{path.name}: no MatMul/Gemm with a constant 2-D weight to estimate")
    return Workload(path.stem, phase, tokens, tokens, (Layer("graph", tuple(ops), 1),),
                    {"source": str(path), "not_priced": sorted(set(free))})
