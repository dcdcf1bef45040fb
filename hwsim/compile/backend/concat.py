"""Back end of ``IntConcat``: one ``concat`` unit per two-input node.

The unit passes, per output vector, the ``a`` vector's codes and then the ``b`` vector's,
one code per beat (what an MVU or a LUT writes). The joined axis must be the one the design
streams as vectors: the last axis, or the channels of an NCHW tensor in a graph with
convolutions (streamed as NHWC pixels, a pixel's channels contiguous).

Timing for :func:`~hwsim.compile.backend.schedule`: the output vector ends one cycle
(the latency) after the later of ``b``'s last beat and ``a``'s last beat plus the ``len_b``
beats of ``b`` still to pass (:attr:`~hwsim.compile.backend.Node.skew` of ``a``), and
``len_a + len_b`` cycles after the vector before. Each input FIFO holds two whole vectors
(in a graph with convolutions a whole image: a branch through a window unit lags a direct
one by rows of pixels): where one tensor feeds both a branch and the concatenation directly
(a fork), the direct path's codes wait there while the branch computes, so the fork never
stalls the branch's input (a FIFO shorter than a vector would deadlock when the direct path
is ``b``) and the composed cycle formula holds.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError
from hwsim.golden.common import concat as spec

from . import NHWC, Node, _perm, handler, stream_dims


@handler("IntConcat")
def _concat(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    op = getCustomOp(node)
    a, b = node.input[0], node.input[1]
    shape = list(model.get_tensor_shape(a))
    ndim = len(shape)
    axis = op.get_nodeattr("axis") % max(ndim, 1)
    vector_axis = NHWC[-1] if _perm(model, shape) == NHWC else ndim - 1
    if axis != vector_axis:
        raise HwsimError(f"node {node.name!r}: the concat kernel joins the streamed vectors "
                         f"(axis {vector_axis} of {tuple(shape)}), not axis {axis}")
    (va, na), (vb, nb) = stream_dims(model, a), stream_dims(model, b)
    if va != vb:
        raise HwsimError(f"node {node.name!r}: {a!r} has {va} vectors, {b!r} {vb}")
    params = op.params(na, nb, lanes=1)
    # two vectors per FIFO; in a graph with convolutions a whole image: a branch through a
    # window unit lags a direct one by rows of pixels, which wait here
    keep = 2 if vector_axis == ndim - 1 else shape[2] * shape[3]
    out = Node(name=node.name, op_type=node.op_type, kernel="concat", params=params,
               inputs=[("a", a, 1, params.signed), ("b", b, 1, params.signed)],
               output=("y", node.output[0], 1, params.signed), vectors=va,
               fifo_depth={"a": keep * na + 4, "b": keep * nb + 4}, onnx_nodes=[node.name],
               tail=spec.latency_cycles(params), interval=spec.interval_cycles(params),
               out_len=na + nb, skew={"a": nb})
    return out, [node.name]
