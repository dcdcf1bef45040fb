"""Back end of ``StreamFlatten``: no hardware; the matrix–vector unit that reads the flatten
takes the producer's stream directly.

A flatten into ``(N, rest)`` vectors is data movement only: the codes already stream in the
order the flatten writes them (the lowering made ``perm`` the stream order, NHWC pixels in a
graph with convolutions, and permuted the weight rows to match). The ``int8-mvu`` node of
the one ``IntMatMul`` that reads it gets the producer's tensor as its ``x``: its FIFO holds
the whole ``rest``-code vector, and its output vector ``n`` waits for the last of the
producer's vectors of image ``n`` (``depends``).
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError

from . import Node, _consumers, _lanes, _perm, handler, stream_dims
from .kernels import mvu_node


@handler("StreamFlatten")
def _flatten(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    src = node.input[0]
    shape = model.get_tensor_shape(src)
    want = _perm(model, shape) or tuple(range(len(shape)))
    perm = tuple(getCustomOp(node).get_nodeattr("perm"))
    if perm != tuple(want):
        raise HwsimError(f"node {node.name!r} flattens {src!r} in axis order {perm}, the "
                         f"design streams it in order {tuple(want)}")
    readers = _consumers(model, node.output[0])
    if len(readers) != 1 or readers[0].op_type != "IntMatMul":
        raise HwsimError(f"node {node.name!r}: a flatten must be read by one IntMatMul, not "
                         f"{', '.join(r.op_type for r in readers) or 'nothing'}")
    mm = readers[0]
    w = model.get_initializer(mm.input[1])
    if w is None:
        raise HwsimError(f"node {mm.name!r}: weights are not constant")
    bias = model.get_initializer(mm.input[2]) if len(mm.input) == 3 else None
    n = int(shape[0])
    src_vectors = stream_dims(model, src)[0]
    per = src_vectors // n  # the producer's vectors per flattened vector
    out = mvu_node(model, mm, w, bias, src, _lanes(w.shape[0], opts["max_lanes"]), n,
                   bool(getCustomOp(mm).get_nodeattr("a_signed")))
    out.depends, out.in_per_unit, out.unit_gap = [per - 1], per, out.interval
    out.onnx_nodes = [node.name, *out.onnx_nodes]
    return out, out.onnx_nodes
