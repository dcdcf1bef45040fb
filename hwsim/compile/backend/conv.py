"""Back end of ``IntConv``: a ``conv-window`` unit feeding an ``int8-mvu`` (FINN style).

The window unit turns the NHWC pixel stream into one ``kh·kw·C`` window per output pixel; the
MVU (``rows`` = output channels, ``cols`` = ``kh·kw·C``, weights
:func:`~hwsim.golden.common.conv_window.conv_weight_matrix`) with the ``Requant`` that reads
the accumulators makes each output pixel. A 1×1 convolution with stride 1 and no padding
needs no window: its pixels are the MVU's vectors. A depthwise convolution runs on the same
MVU with a block-diagonal weight matrix: correct, but ``C`` times the multiplies it needs
(every window column times every output channel) — a dedicated depthwise unit would do one
multiply per tap and channel. A 1-D convolution (NCL, streamed as NLC) is a 2-D one of
height 1.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError
from hwsim.golden.common import conv_window as win_spec

from . import Node, _lanes, handler
from .kernels import mvu_node


@handler("IntConv")
def _conv(model: ModelWrapper, node, opts: dict) -> tuple[list[Node], list[str]]:
    from .swiftchannel import swift_conv
    op = getCustomOp(node)
    g, win = op.get_nodeattr, op.window()
    square = (win["kernel"], win["stride"], win["pad"]) == \
        (win["kernel_w"], win["stride_w"], win["pad_w"])
    built = swift_conv(model, node, opts) if square else None  # a SwiftChannel conv engine
    if built is not None:                                          # where it fits
        return built
    w = model.get_initializer(node.input[1])
    if w is None:
        raise HwsimError(f"node {node.name!r}: weights are not constant")
    bias = model.get_initializer(node.input[2]) if len(node.input) == 3 else None
    shape = model.get_tensor_shape(node.input[0])
    n, c, h, wd = shape if len(shape) == 4 else (shape[0], shape[1], 1, shape[2])
    w = np.asarray(w)
    mat = win_spec.conv_weight_matrix(w.reshape(*w.shape[:2], win["kernel"], win["kernel_w"]),
                                      g("group"))
    a_signed = bool(g("a_signed"))
    if win == dict(kernel=1, stride=1, pad=0, kernel_w=1, stride_w=1, pad_w=0):
        mvu = mvu_node(model, node, mat, bias, node.input[0], _lanes(mat.shape[0],
                       opts["max_lanes"]), n * h * wd, a_signed)
        return [mvu], mvu.onnx_nodes
    # the window and the MVU share their lanes (a divisor of the channels divides k·k·C):
    # the windows pass between them without a lane converter, one beat per cycle
    lanes = _lanes(c, opts["max_lanes"])
    params = win_spec.ConvWindowParams(channels=c, height=h, width=wd, lanes=lanes,
                                       signed=a_signed, zero_point=int(g("pad_code")), **win)
    oh, ow = params.out_height, params.out_width
    windows = f"{node.name}/windows"
    window = Node(name=f"{node.name}/window", op_type=node.op_type, kernel="conv-window",
                  params=params, inputs=[("x", node.input[0], lanes, a_signed)],
                  output=("y", windows, lanes, a_signed), vectors=n * oh * ow,
                  fifo_depth={"x": params.pixel_beats + 2}, onnx_nodes=[node.name],
                  tail=win_spec.tail_cycles(params), interval=win_spec.interval_cycles(params),
                  out_len=params.vector, depends=win_spec.dependencies(params),
                  in_per_unit=h * wd, unit_calls=n)
    mvu = mvu_node(model, node, mat, bias, windows, lanes, n * oh * ow, a_signed,
                   name=node.name)
    return [window, mvu], mvu.onnx_nodes
