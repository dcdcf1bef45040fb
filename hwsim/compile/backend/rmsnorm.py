"""Back-end handler of ``IntRmsNorm``: an :class:`rtl.dataflow.rmsnorm.RmsNormNode` (the
``rmsnorm`` kernel with its gains in a table), one code per beat."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.golden.vitallm import rmsnorm_int as spec

from . import Node, _double_buffer, _vectors, handler


@handler("IntRmsNorm")
def _rmsnorm(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    """One code per beat. The kernel loads a whole vector, then divides, takes the root and
    the reciprocal and writes the vector, and takes the next vector after its last output
    beat: ``interval`` = :func:`~hwsim.golden.vitallm.rmsnorm_int.latency_cycles`, ``tail`` =
    that minus the ``n`` load beats; its input FIFO holds a whole vector."""
    op = getCustomOp(node)
    p = op.params(1)
    gamma, eps = list(op.get_nodeattr("gamma")), int(op.get_nodeattr("eps_code"))

    def build():
        from rtl.dataflow.rmsnorm import RmsNormNode
        return RmsNormNode(p, gamma, eps)

    shape = model.get_tensor_shape(node.input[0])
    lat = spec.latency_cycles(p)
    out = Node(name=node.name, op_type=node.op_type, kernel="rmsnorm", params=p,
               inputs=[("x", node.input[0], 1, True)], output=("y", node.output[0], 1, True),
               vectors=_vectors(shape), fifo_depth={"x": _double_buffer(model, node.input[0], 1)},
               onnx_nodes=[node.name], tail=lat - p.chunks, interval=lat, out_len=p.n,
               builder=build)
    return out, [node.name]
