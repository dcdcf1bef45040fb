"""Back end of ``IntMaxPool``: one ``maxpool`` unit on the NHWC pixel stream.

Its input is streamed as a convolution's (pixels of ``C`` codes, NHWC) and its output is the
pooled pixel stream the next convolution's window unit reads; both sides use the lanes a
convolution over ``C`` channels uses (the most ≤ ``max_lanes`` that divide ``C``), so a pool
between two convolutions needs no lane converter on its output. Timing is the window unit's
(``depends``: each output pixel waits for the last input pixel of its window) with the
comparator's register added to the tail.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError
from hwsim.golden.common import maxpool as spec

from . import Node, _lanes, handler


@handler("IntMaxPool")
def _maxpool(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    g = getCustomOp(node).get_nodeattr
    shape = model.get_tensor_shape(node.input[0])
    if shape is None or len(shape) != 4:
        raise HwsimError(f"node {node.name!r}: max pooling needs an NCHW input, not {shape}")
    n, c, h, w = shape
    signed = bool(g("signed"))
    lanes = _lanes(c, opts["max_lanes"])
    params = spec.MaxPoolParams(channels=c, height=h, width=w, kernel=g("kernel_size"),
                                stride=g("stride"), pad=g("pad"), lanes=lanes, signed=signed)
    built = Node(name=node.name, op_type=node.op_type, kernel="maxpool", params=params,
                 inputs=[("x", node.input[0], lanes, signed)],
                 output=("y", node.output[0], lanes, signed),
                 vectors=n * params.out_height * params.out_width,
                 fifo_depth={"x": params.pixel_beats + 2}, onnx_nodes=[node.name],
                 tail=spec.tail_cycles(params), interval=spec.interval_cycles(params),
                 out_len=c, depends=spec.dependencies(params), in_per_unit=h * w,
                 unit_calls=n)
    return built, [node.name]
