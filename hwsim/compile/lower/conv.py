"""The approximate step that lowers 1-D and 2-D convolutions to ``IntConv → Requant``."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from hwsim.golden.common.conv_window import conv_weight_matrix

from ._graph import MULT_BITS, Passes, _const, _refresh, _remove_dead_nodes, _replace
from .linear import fold_layer, layer_bound, make_requant, match_operands, match_tail, weight_scale


class LowerConvolutions(Passes, Transformation):
    """Approximate: ``Conv`` (2-D on NCHW or 1-D on NCL) on dequantized 8-bit codes with a
    quantized int8 weight [+ bias] [→ Relu] → ``QuantizeLinear [→ Clip]`` becomes
    ``IntConv → Requant``.

    Rectangular kernels, strides and pads (each axis its own; the same pad before and after),
    no dilation, ``group`` 1 or the input channel count (depthwise). A 1-D convolution is a
    2-D one of height 1 (kernel 1, stride 1, pad 0 along H). Padded pixels read the input's zero point
    (``pad_code``: the float convolution pads with real 0), and ``pad_code · Σ W`` joins the
    bias as for a linear layer: the scale folding, the bias rounding and the proven bound
    are :class:`~hwsim.compile.lower.linear.LowerLinearLayers`' on the im2col matrix
    (:func:`~hwsim.golden.common.conv_window.conv_weight_matrix`: ``kh·kw·C`` rows).
    :attr:`bounds` maps each ``Requant`` output to that bound.
    """

    exact = False

    def __init__(self, mult_bits: int = MULT_BITS):
        super().__init__()
        self.mult_bits = mult_bits
        self.bounds: dict[str, int] = {}

    def apply(self, model):
        self.bounds = {}
        self._new_pass()
        for node in [n for n in model.graph.node if n.op_type == "Conv"]:
            self._lower(model, node)
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _lower(self, model, node) -> None:
        def fail(why):
            raise HwsimError(f"cannot lower Conv node {node.name!r}: {why}")

        a_dq, w_dq, w = match_operands(model, node, fail)
        if self._waits([a_dq.input[0]], follows=self.bounds):
            return
        w = np.asarray(w)
        shape = model.get_tensor_shape(node.input[0]) or []
        if w.ndim not in (3, 4) or len(shape) != w.ndim:
            fail(f"only 1-D (NCL) and 2-D (NCHW) convolutions are lowered (weight {w.shape}, "
                 f"input {list(shape)})")
        dims = w.ndim - 2
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        strides = list(attrs.get("strides", [1] * dims))
        pads = list(attrs.get("pads", [0] * 2 * dims))
        group = int(attrs.get("group", 1))
        if list(attrs.get("dilations", [1] * dims)) != [1] * dims:
            fail(f"dilations {list(attrs['dilations'])}: only undilated convolutions are "
                 "lowered")
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            fail("only explicit pads are lowered (auto_pad)")
        if pads[:dims] != pads[dims:]:
            fail(f"pads {pads}: only the same padding before and after each axis is lowered")
        kernel = list(w.shape[2:])
        if dims == 1:  # height 1: kernel 1, stride 1, pad 0 along H
            kernel, strides, pads = [1, *kernel], [1, *strides], [0, *pads[:1]]
        channels = shape[1]
        if group not in (1, channels) or (group == channels and w.shape[1] != 1):
            fail(f"group {group}: only 1 or depthwise ({channels}) are lowered")
        if not all(0 <= p < k for p, k in zip(pads[:2], kernel, strict=True)):
            fail(f"pads {pads[:2]} outside 0 … kernel − 1 (kernel {kernel})")
        bias = None
        if len(node.input) == 3 and node.input[2]:
            bias = model.get_initializer(node.input[2])
            if bias is None:
                fail("its bias is not a constant")
        extra, bias, relu, out_codes, out_q, narrow = match_tail(model, node, bias, fail)
        w_codes = w.astype(np.int8)
        mat = conv_weight_matrix(w_codes.reshape(*w.shape[:2], *kernel), group)
        if bias is not None:
            bias = np.asarray(bias)
            if bias.size not in (1, mat.shape[1]):
                fail(f"bias of {bias.size} values for {mat.shape[1]} output channels")
            bias = bias.reshape(-1)
        s_w = weight_scale(model, node, w_dq, mat, w_out_axis=0)  # per tensor or per channel
        f = fold_layer(model, node, a_dq, s_w, out_q, mat, bias, self.mult_bits)
        inputs = [a_dq.input[0], _const(model, f"{node.name}/w_codes", w_codes)]
        if f.bias_int is not None:
            inputs.append(_const(model, f"{node.name}/bias_acc", f.bias_int))
        acc = f"{node.name}/acc"
        conv = helper.make_node("IntConv", inputs, [acc], domain=dialect.DOMAIN,
                                name=f"{node.name}/int", kernel=dialect.IntConv.KERNEL,
                                a_width=8, a_signed=int(f.a_signed),
                                w_narrow=int(w_codes.min(initial=0) > -128),
                                kernel_size=int(kernel[0]), stride=int(strides[0]),
                                pad=int(pads[0]), kernel_w=int(kernel[1]),
                                stride_w=int(strides[1]), pad_w=int(pads[1]), group=group,
                                pad_code=f.a_zero)
        requant = make_requant(node, acc, out_codes, f, relu, narrow)
        if np.ndim(f.mult):  # per-channel (M, S) along the NCHW channel axis
            requant.attribute.append(helper.make_attribute("axis", 1))
        _replace(model, [node, *extra], [conv, requant])
        self.bounds[out_codes] = layer_bound(self.bounds.get(a_dq.input[0], 0), f, mat, bias)
        self._lowered(model, out_codes)
