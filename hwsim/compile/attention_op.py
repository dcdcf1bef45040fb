"""The front end's reading of the opset-23 ``Attention`` op: :class:`DecomposeAttention` writes
it out as the softmax-attention pattern the lowering builds (``MatMul(q, kᵀ) → Mul(scale) →
[Add(mask)] → Softmax → MatMul(·, v)`` with the head split and merge as ``Reshape`` /
``Transpose`` and grouped-query heads repeated by ``Unsqueeze → Tile → Reshape``), so a file
that uses the fused op and one that writes attention out compile the same way.

Taken: 3-D inputs ``(B, S, heads·d)`` with ``q_num_heads`` / ``kv_num_heads`` or 4-D inputs
``(B, heads, S, d)``; ``is_causal`` (queries and keys of one sequence); a constant
``attn_mask`` (boolean: ``True`` attends; or additive); ``scale`` (default ``1/√d``);
``kv_num_heads`` dividing ``q_num_heads`` (head ``h`` reads kv head ``h // (H/KV)``, as the
operator's reference repeats them). Refused with one line naming the node: a KV cache
(``past_key`` / ``past_value``, the ``present_*`` outputs), ``softcap``, the ``qk_matmul_output``
output, a mask computed from the data, causal attention over a sequence of keys longer than the
queries.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.errors import HwsimError

__all__ = ["DecomposeAttention"]


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


class DecomposeAttention(Transformation):
    """Each ``Attention`` node (opset 23) → the nodes it stands for (module docstring); the
    graph computes the same function (the op scales q and k by ``√scale`` each, the written-out
    form the scores by ``scale``: equal up to float32 rounding)."""

    def apply(self, model):
        for node in [n for n in model.graph.node if n.op_type == "Attention"]:
            self._decompose(model, node)
        return model, False

    def _decompose(self, model, node) -> None:
        def fail(why):
            raise HwsimError(f"cannot read Attention node {node.name!r}: {why}")

        a = _attrs(node)
        ins = list(node.input) + [""] * (6 - len(node.input))
        q, k, v, mask_in, past_k, past_v = ins[:6]
        if past_k or past_v or any(node.input[6:]):
            fail("a KV cache (past_key / past_value) is not supported: export the prefill "
                 "graph")
        if any(node.output[1:]):
            fail("only the output Y is supported (not present_key / present_value / "
                 "qk_matmul_output)")
        if float(a.get("softcap", 0.0)) != 0.0:
            fail("softcap is not supported")
        shapes = [model.get_tensor_shape(t) for t in (q, k, v)]
        if any(not s for s in shapes) or len({len(s) for s in shapes}) != 1 \
                or len(shapes[0]) not in (3, 4):
            fail(f"q, k, v must all be 3-D or all 4-D with known shapes, got {shapes}")
        qs, ks, vs = shapes
        three = len(qs) == 3
        if three:
            H, KV = int(a.get("q_num_heads", 0) or 0), int(a.get("kv_num_heads", 0) or 0)
            if H < 1 or KV < 1 or qs[2] % H or ks[2] % KV or vs[2] % KV:
                fail("3-D inputs need q_num_heads and kv_num_heads dividing their last axes")
            B, Tq, d, Tk, dv = qs[0], qs[1], qs[2] // H, ks[1], vs[2] // KV
        else:
            B, H, Tq, d = qs
            KV, Tk, dv = ks[1], ks[2], vs[3]
        dk = ks[2] // KV if three else ks[3]
        if H % KV or dk != d:
            fail(f"{H} query heads need a multiple of {KV} kv heads of the same head size")
        causal = bool(a.get("is_causal", 0))
        if causal and Tq != Tk:
            fail(f"causal attention of {Tq} queries on {Tk} keys (a KV cache) is not supported")
        scale = a.get("scale")
        scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
        add = np.zeros((Tq, Tk), np.float32)
        if mask_in:
            m = model.get_initializer(mask_in)
            if m is None:
                fail("attn_mask is computed from the data; only a constant mask is supported")
            m = np.asarray(m)
            m = np.where(m, 0.0, -np.inf) if m.dtype == bool else m.astype(np.float32)
            if m.ndim > 2 and any(n != 1 for n in m.shape[:-2]):
                fail(f"attn_mask of shape {m.shape} differs between heads or batches")
            add = add + np.broadcast_to(m.reshape(m.shape[-2:]), (Tq, Tk))
        if causal:
            add = np.where(np.triu(np.ones((Tq, Tk), bool), 1), -np.inf, add)
        add = add.astype(np.float32)

        new, n = [], node.name
        consts = {}

        def const(tag, value, dtype=np.int64):
            name = f"{n}/{tag}"
            model.set_initializer(name, np.asarray(value, dtype))
            consts[tag] = name
            return name

        def emit(op, inputs, tag, **kw):
            out = f"{n}/{tag}"
            new.append(helper.make_node(op, inputs, [out], name=out, **kw))
            return out

        def heads(x, tag, nh, hd, seq):
            if not three:
                return x
            r = emit("Reshape", [x, const(f"{tag}_shape", [B, seq, nh, hd])], f"{tag}_split")
            return emit("Transpose", [r], f"{tag}_heads", perm=[0, 2, 1, 3])

        def repeat(x, tag, hd):
            rep = H // KV
            if rep == 1:
                return x
            u = emit("Unsqueeze", [x, const(f"{tag}_axis", [2])], f"{tag}_unsq")
            t = emit("Tile", [u, const(f"{tag}_reps", [1, 1, rep, 1, 1])], f"{tag}_tile")
            return emit("Reshape", [t, const(f"{tag}_rshape", [B, H, Tk, hd])], f"{tag}_rep")

        qh = heads(q, "q", H, d, Tq)
        kh = repeat(heads(k, "k", KV, d, Tk), "k", d)
        vh = repeat(heads(v, "v", KV, dv, Tk), "v", dv)
        kt = emit("Transpose", [kh], "k_t", perm=[0, 1, 3, 2])
        s = emit("MatMul", [qh, kt], "scores")
        s = emit("Mul", [s, const("scale", scale, np.float32)], "scaled")
        if mask_in or causal:
            s = emit("Add", [s, const("mask", add, np.float32)], "masked")
        p = emit("Softmax", [s], "probs", axis=-1)
        y = emit("MatMul", [p, vh], "context")
        if three:
            t = emit("Transpose", [y], "merge_t", perm=[0, 2, 1, 3])
            y = emit("Reshape", [t, const("merge_shape", [B, Tq, H * dv])], "merge")
        new[-1].output[0] = node.output[0]
        graph = model.graph
        at = list(graph.node).index(node)
        graph.node.remove(node)
        for i, m_ in enumerate(new):
            graph.node.insert(at + i, m_)
        from hwsim.compile.patterns import _record
        # the new nodes are ordinary nodes the attention patterns annotate next: listed under
        # "into", not "nodes" (a node listed there counts as taken by this pattern)
        _record(model, {"pattern": "attention_op", "nodes": [], "from": [node.name],
                        "into": [m_.name for m_ in new]})
