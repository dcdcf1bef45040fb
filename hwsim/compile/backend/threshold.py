"""Back end of ``IntThreshold``: the ``threshold`` kernel reading an ``int8-mvu``'s 32-bit
accumulator stream (one int32 code per beat, carried as four byte lanes), one output code
per beat."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError

from . import Node, handler, stream_dims


@handler("IntThreshold")
def _threshold(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    from hwsim.golden.common import threshold as spec
    params = getCustomOp(node).params(1)
    if params.in_bits != 32:
        raise HwsimError(f"node {node.name!r}: the back end feeds a threshold unit 32-bit "
                         f"accumulators, not {params.in_bits}-bit codes")
    vectors, n = stream_dims(model, node.input[0])
    out = Node(name=node.name, op_type=node.op_type, kernel="threshold", params=params,
               inputs=[("x", node.input[0], 4, False)],  # one int32 code = four byte lanes
               output=("y", node.output[0], 1, params.out_signed), vectors=vectors,
               onnx_nodes=[node.name], tail=spec.latency_cycles(params), interval=n,
               out_len=n, calls_per_vector=n)
    return out, [node.name]
