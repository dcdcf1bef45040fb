"""Back-end handler of ``IntLayerNorm``: the ``layernorm`` kernel, one code per beat."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.golden.common import layernorm_int as ln_spec

from . import Node, _double_buffer, _vectors, handler


@handler("IntLayerNorm")
def _layernorm(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    """One code per beat (what an MVU writes). The unit takes a whole vector before it writes
    the first output code and takes the next vector only after the last one: ``tail`` =
    :func:`~hwsim.golden.common.layernorm_int.tail_cycles`, ``interval`` =
    :func:`~hwsim.golden.common.layernorm_int.interval_cycles`; its input FIFO holds a whole
    vector, so its producer writes the next vector while it normalizes this one."""
    params = getCustomOp(node).params(1)
    shape = model.get_tensor_shape(node.input[0])
    out = Node(name=node.name, op_type=node.op_type, kernel="layernorm", params=params,
               inputs=[("x", node.input[0], 1, params.in_signed)],
               output=("y", node.output[0], 1, params.out_signed), vectors=_vectors(shape),
               fifo_depth={"x": _double_buffer(model, node.input[0], 1)},
               onnx_nodes=[node.name], tail=ln_spec.tail_cycles(params),
               interval=ln_spec.interval_cycles(params), out_len=params.n)
    return out, [node.name]
