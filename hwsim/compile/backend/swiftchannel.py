"""Back end of the SwiftChannel ops: ``SpabGate`` (``swiftchannel-gate``) and the convolutions
that ``swiftchannel-conv`` builds.

An ``IntConv → Requant`` pair that the integer-ONNX lowering writes (uint8 codes, 1×1 or 3×3
"same" kernel, stride 1, group 1, half-up per-channel requantizer with 16-bit ``M`` and
``S ≤ 40``, no ReLU clip) is one ``swiftchannel-conv`` engine (:func:`swift_conv`, called by
the ``IntConv`` handler first): the window and all output channels in one unit, one pixel per
beat in and out, ``k²/taps`` cycles per pixel. The ``conv-window`` + ``int8-mvu`` path takes
``oc·k²·C/lanes`` cycles per pixel (≥ 8× slower on the student's layers), so this is what
keeps a compiled student within reach of the hand-composed ``swiftchannel-pipeline``.
Timing (:mod:`hwsim.golden.swiftchannel.pipeline`): the engine issues pixel ``j`` once input
pixel ``min(j + W + 1, P − 1)`` is there (``j`` for 1×1) and ``S`` cycles after pixel
``j − 1``, and delivers it ``S + 2`` cycles after the issue: ``tail = S + 3``,
``interval = S``, ``depends`` the needed pixels.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError

from . import Node, _consumers, handler, stream_dims

__all__ = ["TAPS", "swift_conv"]

#: taps of the 3×3 window per cycle in every compiled SwiftChannel conv engine (1, 3 or 9)
TAPS = 3


def swift_conv(model: ModelWrapper, node, opts: dict):
    """The ``swiftchannel-conv`` node of ``IntConv`` ``node`` and its ``Requant``, or None
    where the engine does not compute them."""
    from hwsim.golden.swiftchannel import conv as conv_spec
    from hwsim.golden.swiftchannel.network import MAX_SHIFT, MULT_BITS

    g = getCustomOp(node).get_nodeattr
    users = _consumers(model, node.output[0])
    if len(users) != 1 or users[0].op_type != "Requant":
        return None
    rq = getCustomOp(users[0])
    r = rq.get_nodeattr
    w = model.get_initializer(node.input[1])
    shape = model.get_tensor_shape(node.input[0])
    k = g("kernel_size")
    if (w is None or len(shape) != 4 or shape[0] != 1 or g("a_width") != 8 or g("a_signed")
            or g("group") != 1 or g("stride") != 1 or k not in (1, 3) or g("pad") != k // 2
            or r("width") != 8 or r("signed") or r("narrow") or r("relu")
            or r("rounding") != "half_up"):
        return None
    mult, shift = rq.scales()
    oc = w.shape[0]
    if mult.ndim and (r("axis") not in (1, -3) or mult.size not in (1, oc)):
        return None
    mult, shift = np.broadcast_to(mult, (oc,)), np.broadcast_to(shift, (oc,))
    if mult.max() >= 1 << MULT_BITS or shift.max() > MAX_SHIFT:
        return None
    bias = model.get_initializer(node.input[2]) if len(node.input) == 3 else np.zeros(oc)
    w64 = np.asarray(w, np.int64)
    # the engine centres its input (x − z_in): the IntConv bias folded z_in·ΣW in
    b = np.asarray(bias, np.int64).reshape(-1) + g("pad_code") * w64.sum(axis=(1, 2, 3))
    _, c, h, wd = shape
    p = conv_spec.ConvEngineParams(ic=c, oc=oc, height=h, width=wd, k=k, ocp=oc, weights=w64,
                                   bias=b, mults=mult, shifts=shift, z_in=int(g("pad_code")),
                                   z_out=int(r("zero_point")), taps=min(opts.get("taps", TAPS),
                                                                         k * k))
    s = p.pixel_cycles
    P = h * wd
    depends = [min(j + wd + 1, P - 1) for j in range(P)] if k == 3 else None
    out = Node(name=node.name, op_type=node.op_type, kernel="swiftchannel-conv", params=p,
               inputs=[("x", node.input[0], c, False)], output=("y", users[0].output[0], oc, False),
               vectors=P, onnx_nodes=[node.name, users[0].name], tail=s + 3, interval=s,
               out_len=oc, depends=depends, in_per_unit=P if depends else 0, unit_calls=1,
               # the host (or a faster producer) may run a whole image ahead of the engine
               fifo_depth={"x": P + 4}, wide_output=True)
    return out, out.onnx_nodes


@handler("SpabGate")
def _gate(model: ModelWrapper, node, opts: dict):
    from hwsim.golden.swiftchannel.gate import PIPELINE_DEPTH
    from hwsim.golden.swiftchannel.pipeline import skip_depth_for
    from rtl.dataflow.spab_gate import SpabGateJoin

    x, c = node.input
    shape = model.get_tensor_shape(x)
    if list(model.get_tensor_shape(c)) != list(shape) or len(shape) != 4:
        raise HwsimError(f"node {node.name!r}: the SPAB gate pairs two NCHW code tensors of "
                         "one shape")
    vectors, lanes = stream_dims(model, x)
    p = getCustomOp(node).params(lanes)
    # x (the skip path) waits here while the two convolutions compute c
    depth = {"a": skip_depth_for(shape[3]) + 8, "b": 4}
    out = Node(name=node.name, op_type=node.op_type, kernel="swiftchannel-gate", params=p,
               inputs=[("a", x, lanes, False), ("b", c, lanes, False)],
               output=("y", node.output[0], lanes, False), vectors=vectors, fifo_depth=depth,
               onnx_nodes=[node.name], tail=PIPELINE_DEPTH, interval=1, out_len=lanes,
               builder=lambda: SpabGateJoin(p))
    return out, [node.name]
