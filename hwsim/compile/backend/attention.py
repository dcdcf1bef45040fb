"""Back-end handler of ``IntAttention``: an :class:`rtl.dataflow.attention.AttentionNode`
(``heads`` × kernel ``attention-head``, one lane each) that takes whole sequences, causal or
not, with ``kv_heads`` key / value heads (grouped-query attention)."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from . import Node, handler


def causal_actions(p, heads: int, T: int) -> dict[str, int]:
    """Golden action counts of a causal sequence: query ``t`` of each head against ``t + 1``
    keys (:func:`~hwsim.golden.common.attention_head.action_counts`), summed."""
    from hwsim.golden.common.attention_head import action_counts
    total: dict[str, int] = {}
    for t in range(T):
        for k, v in action_counts(p, t + 1).items():
            total[k] = total.get(k, 0) + heads * v
    return total


@handler("IntAttention")
def _attention(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    """Non-causal: the q FIFO holds the whole sequence (the heads load every k, v first); every
    output token needs the last k, v token, the first leaves one query period plus the head
    merge after it, the next ones a period apart.

    Causal (``kv_0, q_0, kv_1, q_1, …`` per head): output token ``t`` ends
    ``max(A_t + P_t − d + 1, out_{t−1} + H·d + P_t)`` with ``P_t = query_cycles(p, t + 1)``
    and ``A_t`` the cycle head ``H−1`` could take its last q beat: ``max(last q beat, last k/v
    beat + H·d)`` (``skew`` of k, v: the ``H·d`` q beats follow the token's k, v); per vector
    ``tails``/``intervals``. The next token's kv beats wait for their heads' answers, so the
    producers would stall: the q, k, v FIFOs hold the whole sequence (the k, v, q producers of
    a decoder run from one broadcast input, in lockstep per token; a FIFO of one token each
    already avoids deadlock, since the router takes a token's k, v, then its q, then the next
    token's — whole sequences make the producers never wait, so the schedule's free-flow
    arrival times hold)."""
    from hwsim.golden.common import attention_head as spec
    op = getCustomOp(node)
    shape = model.get_tensor_shape(node.input[0])
    p = op.params(shape)
    heads, T, d = op.get_nodeattr("heads"), p.max_len, p.head_dim
    kv, causal = op.kv_count(), bool(op.get_nodeattr("causal"))
    g = op.get_nodeattr
    args = (p, heads, g("score_mult"), g("score_shift"), g("out_mult"), g("out_shift"),
            causal, kv)

    def build():
        from rtl.dataflow.attention import AttentionNode
        return AttentionNode(*args)

    period = spec.query_cycles(p, T)
    D = heads * d
    q, k, v = node.input
    ports = [("k", k, 1, True), ("v", v, 1, True), ("q", q, 1, True)]
    common = dict(name=node.name, op_type=node.op_type, kernel="attention-head", params=p,
                  inputs=ports, output=("y", node.output[0], 1, True), vectors=T * heads,
                  onnx_nodes=[node.name], in_per_unit=T, out_len=D, calls_per_vector=1,
                  builder=build, sequence=T)
    if not causal:
        out = Node(**common, fifo_depth={"q": T * D + 2, "k": kv * d + 2, "v": kv * d + 2},
                   depends=[T - 1] * T, tail=period + (heads - 1) * d + 1, interval=period)
        return out, [node.name]
    P = [spec.query_cycles(p, t + 1) for t in range(T)]
    intervals = [D + x for x in P]
    out = Node(**common, fifo_depth={"q": T * D + 2, "k": T * kv * d + 2,
                                     "v": T * kv * d + 2},
               depends=list(range(T)), tail=P[-1] - d + 1, tails=[x - d + 1 for x in P],
               interval=max(intervals), intervals=intervals, skew={"k": D, "v": D},
               actions=causal_actions(p, heads, T))
    return out, [node.name]
