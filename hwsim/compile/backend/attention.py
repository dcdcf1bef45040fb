"""Back-end handler of ``IntAttention``: an :class:`rtl.dataflow.attention.AttentionNode`
(``heads`` × kernel ``attention-head``, one lane each) that takes whole sequences."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError

from . import Node, handler


@handler("IntAttention")
def _attention(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    from hwsim.golden.common import attention_head as spec
    op = getCustomOp(node)
    shape = model.get_tensor_shape(node.input[0])
    if op.get_nodeattr("causal"):
        raise HwsimError(f"node {node.name!r}: the dataflow back end builds non-causal "
                         "attention only")
    p = op.params(shape)
    heads, T, d = op.get_nodeattr("heads"), p.max_len, p.head_dim
    g = op.get_nodeattr
    args = (p, heads, g("score_mult"), g("score_shift"), g("out_mult"), g("out_shift"))

    def build():
        from rtl.dataflow.attention import AttentionNode
        return AttentionNode(*args)

    period = spec.query_cycles(p, T)
    D = heads * d
    q, k, v = node.input
    out = Node(name=node.name, op_type=node.op_type, kernel="attention-head", params=p,
               inputs=[("k", k, 1, True), ("v", v, 1, True), ("q", q, 1, True)],
               output=("y", node.output[0], 1, True), vectors=T * heads,
               # q waits in its FIFO while the heads load every k, v: a whole sequence
               fifo_depth={"q": T * D + 2, "k": D + 2, "v": D + 2},
               onnx_nodes=[node.name],
               # every output token needs the last k, v token; the first leaves one query
               # period plus the head merge after it, the next ones a period apart
               depends=[T - 1] * T, in_per_unit=T, tail=period + (heads - 1) * d + 1,
               interval=period, out_len=D, calls_per_vector=1, builder=build,
               sequence=T)
    return out, [node.name]
