"""The ``hwsim`` ONNX dialect: integer compute nodes that qonnx executes with the golden models.

A lowered graph (:mod:`hwsim.compile.lower`) is a valid ONNX file whose compute nodes live in
the domain :data:`DOMAIN` (``"hwsim.compile.dialect"``). qonnx's custom-op registry resolves a
domain to the Python module of the same name, so this module *is* the domain: every op class
listed in ``__all__`` is found by ``qonnx.custom_op.registry.getCustomOp`` and run by
``qonnx.core.onnx_exec.execute_onnx``. Netron shows the nodes with their attributes.

Every ``execute_node`` calls a golden function — no arithmetic is re-implemented here:

* ``IntMatMul``: ``acc = a · W (+ bias)``, int32 accumulators — golden
  :func:`~hwsim.golden.common.int8_matmul.int8_matmul`;
* ``TernaryMatMul``: ``acc = a · W`` with ``W ∈ {−1, 0, +1}``, int32 — golden
  :func:`~hwsim.golden.vitallm.ternary_mvu.ternary_mvu_acc`;
* ``IntConv``: ``acc = conv(a, W) (+ bias)`` on NCHW codes with zero-point padding, int32 —
  golden :func:`~hwsim.golden.common.conv_window.im2col` then
  :func:`~hwsim.golden.common.int8_matmul.int8_matmul`;
* ``Requant``: ``codes = out.fit(requantize(acc, M, S) + zero_point)`` (``relu``: also
  ≥ ``zero_point``), one ``(M, S)`` or one per channel of the last axis — golden
  :func:`~quant.qtype.requantize`;
* ``LutAct``: ``codes = table[x − min_code]``, a unary activation on 8-bit codes — golden
  :func:`~hwsim.golden.common.lut_act.lut_act`;
* ``IntEltwise``: element-wise ``add``/``mul`` of two code tensors with zero points, integer
  multipliers and one rounding shift to output codes — golden
  :func:`~hwsim.golden.common.eltwise.eltwise` (kernel ``eltwise``);
* ``IntAttention``: multi-head softmax attention of int8 q, k, v code tensors with a static
  int8 output scale — golden :func:`~hwsim.golden.common.attention_head.attention_head` per
  head (kernel ``attention-head``), then :func:`~quant.qtype.requantize`.
* ``IntLayerNorm``: LayerNorm of each vector along the last axis with an integer inverse
  square root and per-channel integer gains/offsets — golden
  :func:`~hwsim.golden.common.layernorm_int.layernorm_int` (kernel ``layernorm``).

``IntRmsNorm``, ``IntWindowAttention`` and ``SpabGate`` follow in this module; ops with a
module of their own in :mod:`hwsim.compile.dialect_ops` (``IntLifArray``, ``IntMaxPool``,
``IntConcat``, ``StreamFlatten``, ``IntThreshold``) are imported at its end, so the domain finds them too.

Tensors carry real integer element types: activation codes int8/uint8 (widths up to 8 bits),
accumulators int32. ``W`` is an initializer of shape ``(in, out)`` (as ONNX ``MatMul``),
``bias`` an int32 initializer in accumulator units. Each node's ``kernel`` attribute names the
registry kernel (:data:`hwsim.kernels.KERNELS`) that implements it in RTL: ``int8-mvu`` for
``IntMatMul`` and ``ternary-mvu`` for ``TernaryMatMul``, each together with the ``Requant`` it
feeds (both kernels requantize their accumulators); ``conv-window`` for ``IntConv`` (a window
unit feeding an ``int8-mvu`` with the ``Requant``); a ``Requant`` names no kernel of its own;
``lut-act`` for ``LutAct``; ``eltwise`` for ``IntEltwise``; ``layernorm`` for ``IntLayerNorm``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.custom_op.base import CustomOp

from hwsim.errors import HwsimError
from hwsim.golden.common.conv_window import conv_weight_matrix, im2col
from hwsim.golden.common.eltwise import EltwiseParams, eltwise
from hwsim.golden.common.int8_matmul import int8_matmul
from hwsim.golden.common.layernorm_int import LayerNormParams, layernorm_int
from hwsim.golden.common.lut_act import CODES, LutActParams, lut_act
from hwsim.golden.vitallm.ternary_mvu import ternary_mvu_acc
from quant.qtype import QType, Rounding, requantize

__all__ = ["DOMAIN", "OPSET", "IntAttention", "IntConcat", "IntConv", "IntEltwise",
           "IntLayerNorm", "IntLifArray", "IntMatMul", "IntMaxPool", "IntRmsNorm",
           "IntRotary",
           "IntThreshold", "IntWindowAttention", "LutAct", "Requant", "SpabGate", "StreamFlatten",
           "TernaryMatMul", "code_elem_type", "code_qtype"]

#: the ONNX domain of the dialect (also the module qonnx imports to find the ops)
DOMAIN = "hwsim.compile.dialect"
#: the version of :data:`DOMAIN` a lowered model imports
OPSET = 1

#: accumulators fit in int32 tensors; the ops check that they do
_ACC_BITS = 32


def code_qtype(width: int, signed: bool, narrow: bool = False,
               rounding: str = "half_even") -> QType:
    """The :class:`~quant.qtype.QType` of a code tensor (saturating)."""
    return QType(int(width), signed=bool(signed), narrow=bool(narrow),
                 rounding=Rounding(rounding))


def code_elem_type(width: int, signed: bool) -> int:
    """The ONNX element type that carries ``width``-bit codes: int8/uint8 up to 8 bits, else
    int32."""
    if width <= 8:
        return TensorProto.INT8 if signed else TensorProto.UINT8
    if width <= 32:
        return TensorProto.INT32
    raise HwsimError(f"codes of {width} bits do not fit an int32 tensor")


def _qonnx_dtype(width: int, signed: bool) -> DataType:
    return DataType[f"{'INT' if signed else 'UINT'}{int(width)}"]


def _to_acc(acc: np.ndarray, node) -> np.ndarray:
    lo, hi = -(1 << (_ACC_BITS - 1)), (1 << (_ACC_BITS - 1)) - 1
    if acc.size and (acc.min() < lo or acc.max() > hi):
        raise HwsimError(f"node {node.name!r}: accumulator outside int32")
    return acc.astype(np.int32)


class _Op(CustomOp):
    """Shared parts: the ``kernel`` attribute and input-count checks."""

    #: the registry kernel implementing this op in RTL ("" where none exists yet)
    KERNEL = ""
    #: accepted numbers of inputs
    N_INPUTS: tuple[int, ...] = (1,)
    #: the fixed element type of the one output (``"INT8"``/``"UINT8"``) of an op that does not
    #: give its own shape and type methods
    OUT_TYPE = ""

    def get_nodeattr_types(self):
        return {"kernel": ("s", False, self.KERNEL)}

    def verify_node(self):
        """One message per problem (qonnx's convention); empty means the node is valid."""
        info = []
        if len(self.onnx_node.input) not in self.N_INPUTS:
            info.append(f"{self.onnx_node.op_type} {self.onnx_node.name!r} needs "
                        f"{' or '.join(map(str, self.N_INPUTS))} inputs")
        try:
            for name in self.get_nodeattr_types():
                self.get_nodeattr(name)
        except Exception as e:  # qonnx raises plain Exceptions for bad attributes
            info.append(f"{self.onnx_node.name!r}: {e}")
        return info

    def make_shape_compatible_op(self, model):
        return helper.make_node("Cast", [self.onnx_node.input[0]], [self.onnx_node.output[0]],
                                to=getattr(TensorProto, self.OUT_TYPE))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0], DataType[self.OUT_TYPE])


class _ParamsOp(_Op):
    """An op whose attributes form its kernel's parameter set: :meth:`params` must accept
    them (checked by :meth:`verify_node`)."""

    def verify_node(self):
        info = super().verify_node()
        try:
            self.params()
        except HwsimError as e:
            info.append(f"{self.onnx_node.name!r}: {e}")
        return info


class _MatMulOp(_Op):
    """``acc = a · W``: activation codes ``(…, in)`` × weight codes ``(in, out)`` → int32."""

    N_INPUTS = (2,)

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "a_width": ("i", False, 8),
                "a_signed": ("i", False, 1)}

    def a_qtype(self) -> QType:
        """The activation format."""
        return code_qtype(self.get_nodeattr("a_width"), self.get_nodeattr("a_signed"))

    def make_shape_compatible_op(self, model):
        """``MatMulInteger``: the same shapes and the int32 output type."""
        return helper.make_node("MatMulInteger", list(self.onnx_node.input[:2]),
                                [self.onnx_node.output[0]])

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["INT32"])

    def verify_node(self):
        info = super().verify_node()
        if not 1 <= self.get_nodeattr("a_width") <= 8:
            info.append(f"{self.onnx_node.name!r}: a_width must be 1 … 8 (int8/uint8 tensors)")
        return info

    def _golden(self, a: np.ndarray, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def execute_node(self, context, graph):
        node = self.onnx_node
        a, w = (context[n] for n in node.input[:2])
        acc = self._golden(np.asarray(a), np.asarray(w))
        context[node.output[0]] = _to_acc(acc, node)


class IntMatMul(_MatMulOp):
    """Integer matrix product with exact accumulators: ``acc = a · W + bias``.

    Inputs: ``a`` (int8/uint8 codes, ``a_width``/``a_signed``), ``W`` (int8 codes, ``(in, out)``,
    ``w_narrow``: −127 … 127), optional ``bias`` (int32, accumulator units). Golden:
    :func:`hwsim.golden.common.int8_matmul.int8_matmul`.
    """

    N_INPUTS = (2, 3)
    #: with the ``Requant`` it feeds: :mod:`hwsim.golden.common.int8_mvu` (8-bit outputs)
    KERNEL = "int8-mvu"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(), "w_narrow": ("i", False, 0)}

    def _golden(self, a, w):
        w_q = code_qtype(8, True, self.get_nodeattr("w_narrow"))
        return int8_matmul(a, w.T, self.a_qtype(), w_q)

    def execute_node(self, context, graph):
        super().execute_node(context, graph)
        node = self.onnx_node
        if len(node.input) == 3:
            acc = context[node.output[0]].astype(np.int64) + np.asarray(context[node.input[2]])
            context[node.output[0]] = _to_acc(acc, node)


class IntConv(_Op):
    """2-D integer convolution with exact accumulators on NCHW codes:
    ``acc[n, o, y, x] = Σ (a − pad) · W`` over the window, ``+ bias``.

    Inputs: ``a`` (int8/uint8 codes ``(N, C, H, W)``, ``a_width``/``a_signed``), ``W`` (int8
    codes ``(O, C/group, k, k)`` as ONNX ``Conv``, ``w_narrow``: −127 … 127), optional
    ``bias`` (int32, accumulator units, one per output channel). Attributes: ``kernel_size``,
    ``stride``, ``pad`` (along H; the same above and below), ``kernel_w``, ``stride_w``,
    ``pad_w`` (along W; −1: the H value), ``group`` (1, or ``C`` for depthwise) and
    ``pad_code``, the code padded pixels read (the input's zero point: the float
    convolution's zeros). The window is not shifted by ``pad_code``: a lowering folds
    ``pad_code · Σ W`` into the bias, as for a linear layer. Golden:
    :func:`hwsim.golden.common.conv_window.im2col` (NHWC windows) and
    :func:`hwsim.golden.common.int8_matmul.int8_matmul` with
    :func:`~hwsim.golden.common.conv_window.conv_weight_matrix`. A 1-D convolution: ``a``
    ``(N, C, L)``, ``W`` ``(O, C/group, k)``, computed as 2-D with height 1 (``kernel_size``
    1, ``stride`` 1, ``pad`` 0, the window along W).
    """

    N_INPUTS = (2, 3)
    #: the window unit; with the ``Requant`` it feeds, an ``int8-mvu`` follows it
    KERNEL = "conv-window"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "a_width": ("i", False, 8),
                "a_signed": ("i", False, 1),
                "w_narrow": ("i", False, 0),
                "kernel_size": ("i", True, 1),
                "stride": ("i", False, 1),
                "pad": ("i", False, 0),
                "group": ("i", False, 1),
                "pad_code": ("i", False, 0),
                "kernel_w": ("i", False, -1),
                "stride_w": ("i", False, -1),
                "pad_w": ("i", False, -1)}

    def window(self) -> dict[str, int]:
        """``kernel``, ``stride``, ``pad`` (along H) and ``kernel_w``, ``stride_w``, ``pad_w``
        (along W, the H values where −1): :class:`~hwsim.golden.common.conv_window.
        ConvWindowParams`' names."""
        g = self.get_nodeattr
        h = {"kernel": g("kernel_size"), "stride": g("stride"), "pad": g("pad")}
        return {**h, **{f"{k}_w": h[k] if g(f"{k}_w") == -1 else g(f"{k}_w") for k in h}}

    def a_qtype(self) -> QType:
        return code_qtype(self.get_nodeattr("a_width"), self.get_nodeattr("a_signed"))

    def make_shape_compatible_op(self, model):
        """``ConvInteger``: the same output shape and the int32 type."""
        g, w = self.get_nodeattr, self.window()
        kw, sw, pw = w["kernel_w"], w["stride_w"], w["pad_w"]
        w_init = model.get_initializer(self.onnx_node.input[1])
        if w_init is not None and w_init.ndim == 3:  # 1-D: weights (O, C/group, k)
            return helper.make_node("ConvInteger", list(self.onnx_node.input[:2]),
                                    [self.onnx_node.output[0]], kernel_shape=[kw],
                                    strides=[sw], pads=[pw, pw], group=g("group"))
        k, p = w["kernel"], w["pad"]
        return helper.make_node("ConvInteger", list(self.onnx_node.input[:2]),
                                [self.onnx_node.output[0]], kernel_shape=[k, kw],
                                strides=[w["stride"], sw], pads=[p, pw, p, pw],
                                group=g("group"))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0], DataType["INT32"])

    def verify_node(self):
        info = super().verify_node()
        name = self.onnx_node.name
        if not 1 <= self.get_nodeattr("a_width") <= 8:
            info.append(f"{name!r}: a_width must be 1 … 8 (int8/uint8 tensors)")
        w = self.window()
        if min(w["kernel"], w["stride"], w["kernel_w"], w["stride_w"]) < 1 \
                or not 0 <= w["pad"] < w["kernel"] or not 0 <= w["pad_w"] < w["kernel_w"]:
            info.append(f"{name!r}: needs kernel_size ≥ 1, stride ≥ 1 and 0 ≤ pad < kernel "
                        "(along H and W)")
        q = self.a_qtype()
        if not q.min_code <= self.get_nodeattr("pad_code") <= q.max_code:
            info.append(f"{name!r}: pad_code outside the {q} code range")
        return info

    def execute_node(self, context, graph):
        node = self.onnx_node
        g = self.get_nodeattr
        a, w = (np.asarray(context[n]) for n in node.input[:2])
        one_d = a.ndim == 3
        if one_d:  # (N, C, L) as (N, C, 1, L), weights (O, I, 1, k)
            a, w = a[:, :, None, :], w[:, :, None, :]
        win = self.window()
        cols = im2col(a.transpose(0, 2, 3, 1), win["kernel"], win["stride"], win["pad"],
                      g("pad_code"), win["kernel_w"], win["stride_w"], win["pad_w"])
        mat = conv_weight_matrix(w, g("group"))
        w_q = code_qtype(8, True, g("w_narrow"))
        acc = int8_matmul(cols, mat.T, self.a_qtype(), w_q)
        if len(node.input) == 3:
            acc = acc + np.asarray(context[node.input[2]], np.int64)
        acc = acc.transpose(0, 3, 1, 2)
        context[node.output[0]] = _to_acc(acc[:, :, 0, :] if one_d else acc, node)


class TernaryMatMul(_MatMulOp):
    """Ternary matrix product: ``acc = a · W`` with ``W ∈ {−1, 0, +1}`` (int8 tensor,
    ``(in, out)``), ``a`` signed codes. Golden:
    :func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu_acc` (the ``ternary-mvu`` kernel's
    accumulator; its requantizer is a following :class:`Requant`)."""

    KERNEL = "ternary-mvu"

    def _golden(self, a, w):
        return ternary_mvu_acc(w.T, a, self.a_qtype())


class Requant(_Op):
    """Integer rescale of accumulators to codes: ``requantize(acc, M, S, out)``.

    ``multiplier`` (M ≥ 0) and ``shift`` (S, 0 … 62) give the factor ``M · 2**-S``. Per
    channel (a per-channel weight scale), ``multipliers``/``shifts`` instead list one ``M``/``S``
    per channel of the last axis (lists of equal length, 1 or the channel count; the scalar
    attributes are then ignored; ``axis`` names another channel axis, e.g. 1 of NCHW) and
    ``real_scales`` the float factors; the output
    format is ``width``/``signed``/``narrow`` with ``rounding`` (a :class:`~quant.qtype.Rounding`
    value) and saturation. ``zero_point`` is added to the rounded value before saturation (the
    code of real 0, as ``QuantizeLinear``); ``relu`` = 1 clips at ``zero_point`` as well (ReLU
    before the quantizer). With ``zero_point`` 0 the result is ``requantize(acc, M, S, out)``.
    ``real_scale`` records the float factor that ``M · 2**-S`` approximates (documentation:
    the reports measure the deviation). Golden: :func:`quant.qtype.requantize`.
    """

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "multiplier": ("i", False, 0),
                "shift": ("i", False, 0),
                "multipliers": ("ints", False, []),
                "shifts": ("ints", False, []),
                "real_scales": ("floats", False, []),
                "width": ("i", False, 8),
                "signed": ("i", False, 1),
                "narrow": ("i", False, 0),
                "relu": ("i", False, 0),
                "zero_point": ("i", False, 0),
                "rounding": ("s", False, "half_even", {r.value for r in Rounding}),
                "real_scale": ("f", False, 0.0),
                "axis": ("i", False, -1)}

    def out_qtype(self) -> QType:
        """The output format."""
        return code_qtype(self.get_nodeattr("width"), self.get_nodeattr("signed"),
                          self.get_nodeattr("narrow"), self.get_nodeattr("rounding"))

    @property
    def per_channel(self) -> bool:
        """Whether the node holds one ``(M, S)`` per channel (``multipliers``/``shifts``)."""
        return bool(self.get_nodeattr("multipliers"))

    def scales(self) -> tuple[np.ndarray, np.ndarray]:
        """``(M, S)`` as int64 arrays: shape ``()`` per tensor, ``(channels,)`` per channel."""
        if self.per_channel:
            return (np.array(self.get_nodeattr("multipliers"), np.int64),
                    np.array(self.get_nodeattr("shifts"), np.int64))
        return (np.array(self.get_nodeattr("multiplier"), np.int64),
                np.array(self.get_nodeattr("shift"), np.int64))

    def factors(self) -> np.ndarray:
        """The factors ``M · 2**-S`` (float64; shape as :meth:`scales`)."""
        m, sh = self.scales()
        return m * 2.0 ** -sh.astype(np.float64)

    def make_shape_compatible_op(self, model):
        """``Cast`` to the code element type: the same shape and the output type."""
        return helper.make_node("Cast", [self.onnx_node.input[0]], [self.onnx_node.output[0]],
                                to=code_elem_type(self.get_nodeattr("width"),
                                                  self.get_nodeattr("signed")))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0],
                                  _qonnx_dtype(self.get_nodeattr("width"),
                                               self.get_nodeattr("signed")))

    def verify_node(self):
        info = super().verify_node()
        m, sh = self.scales()
        if m.shape != sh.shape:
            info.append(f"{self.onnx_node.name!r}: {m.size} multipliers but {sh.size} shifts")
        elif m.size and (m.min() < 0 or sh.min() < 0 or sh.max() > 62):
            info.append(f"{self.onnx_node.name!r}: needs multiplier ≥ 0 and shift 0 … 62")
        out = self.out_qtype()
        if not out.min_code <= self.get_nodeattr("zero_point") <= out.max_code:
            info.append(f"{self.onnx_node.name!r}: zero_point outside the {out} code range")
        return info

    def execute_node(self, context, graph):
        node = self.onnx_node
        out = self.out_qtype()
        zero = self.get_nodeattr("zero_point")
        # rounded (not yet saturated) codes of real acc · M · 2**-S: a 64-bit format never clips
        wide = QType(64, rounding=out.rounding)
        acc = np.asarray(context[node.input[0]])
        axis = self.get_nodeattr("axis")  # the channel axis of per-channel (M, S)
        acc = np.moveaxis(acc, axis, -1) if acc.ndim else acc
        m, sh = self.scales()
        if m.ndim == 0:
            rounded = requantize(acc, int(m), int(sh), wide)
        else:  # one (M, S) per channel of the last axis (a list of 1 broadcasts)
            channels = acc.shape[-1] if acc.ndim else 1
            if m.size not in (1, channels):
                raise HwsimError(f"node {node.name!r}: {m.size} multipliers for "
                                 f"{channels} channels")
            m, sh = np.broadcast_to(m, (channels,)), np.broadcast_to(sh, (channels,))
            rounded = np.stack([requantize(acc[..., j], int(m[j]), int(sh[j]), wide)
                                for j in range(channels)], axis=-1).reshape(acc.shape)
        codes = out.fit(rounded + zero)
        if self.get_nodeattr("relu"):
            codes = np.maximum(codes, zero)  # max(round(v), 0) + z == round(max(v, 0)) + z
        codes = np.moveaxis(codes, -1, axis) if np.ndim(codes) else codes
        dtype = onnx.helper.tensor_dtype_to_np_dtype(
            code_elem_type(out.width, out.signed))
        context[node.output[0]] = codes.astype(dtype)


class LutAct(_Op):
    """Table lookup on 8-bit codes: ``y = table[x − min_code]``, elementwise.

    ``table`` holds the output code of each of the 256 input codes in increasing input order
    (``min_code`` −128 for ``in_signed``, else 0); ``in_width`` must be 8 (the table covers
    every code of the int8/uint8 tensor), ``out_width``/``out_signed`` give the output codes'
    range, which every entry lies in. ``function`` names the float op the table stands for
    (``Sigmoid``, ``Gelu`` …; informative). Golden:
    :func:`hwsim.golden.common.lut_act.lut_act` (the ``lut-act`` kernel).
    """

    KERNEL = "lut-act"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "table": ("ints", True, []),
                "in_width": ("i", False, 8),
                "in_signed": ("i", False, 1),
                "out_width": ("i", False, 8),
                "out_signed": ("i", False, 1),
                "function": ("s", False, "")}

    def params(self, lanes: int = 1) -> LutActParams:
        """The kernel's parameters (raises :class:`HwsimError` on a bad table)."""
        return LutActParams(lanes=lanes, in_signed=bool(self.get_nodeattr("in_signed")),
                            out_signed=bool(self.get_nodeattr("out_signed")),
                            table=tuple(self.get_nodeattr("table")))

    def make_shape_compatible_op(self, model):
        """``Cast`` to the code element type: the same shape and the output type."""
        return helper.make_node("Cast", [self.onnx_node.input[0]], [self.onnx_node.output[0]],
                                to=code_elem_type(8, self.get_nodeattr("out_signed")))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0],
                                  _qonnx_dtype(self.get_nodeattr("out_width"),
                                               self.get_nodeattr("out_signed")))

    def verify_node(self):
        info = super().verify_node()
        name = self.onnx_node.name
        if self.get_nodeattr("in_width") != 8:
            info.append(f"{name!r}: in_width must be 8 (a table of {CODES} entries covers "
                        "every int8/uint8 code)")
        width = self.get_nodeattr("out_width")
        if not 1 <= width <= 8:
            info.append(f"{name!r}: out_width must be 1 … 8 (int8/uint8 tensors)")
            return info
        try:
            table = self.params().table
        except HwsimError as e:
            info.append(f"{name!r}: {e}")
            return info
        out = code_qtype(width, self.get_nodeattr("out_signed"))
        if min(table) < out.min_code or max(table) > out.max_code:
            info.append(f"{name!r}: table entries outside the {out} code range")
        return info

    def execute_node(self, context, graph):
        node = self.onnx_node
        codes = lut_act(np.asarray(context[node.input[0]]), self.params())
        context[node.output[0]] = codes.astype(
            onnx.helper.tensor_dtype_to_np_dtype(code_elem_type(8, self.get_nodeattr("out_signed"))))


class IntEltwise(_ParamsOp):
    """Element-wise ``add`` or ``mul`` of two int8/uint8 code tensors (``b`` broadcasts to
    ``a``'s shape, the output's):
    ``y = sat(round_half_even(t · 2**-shift) + out_zero)``, ``t = (a − a_zero)·a_mult +
    (b − b_zero)·b_mult`` (add) or ``(a − a_zero)·(b − b_zero)·mult`` (mul); ``relu`` = 1 also
    clips at ``out_zero``, ``out_narrow`` = 1 drops the most negative signed code. The
    attributes are the fields of :class:`~hwsim.golden.common.eltwise.EltwiseParams` (``lanes``
    is the back end's choice, not the graph's); ``real_factors`` records the float factors
    the multipliers approximate (documentation). Golden:
    :func:`hwsim.golden.common.eltwise.eltwise` (kernel ``eltwise``).
    """

    N_INPUTS = (2,)
    KERNEL = "eltwise"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "op": ("s", True, "add", {"add", "mul"}),
                "a_signed": ("i", False, 1),
                "b_signed": ("i", False, 1),
                "out_signed": ("i", False, 1),
                "a_zero": ("i", False, 0),
                "b_zero": ("i", False, 0),
                "out_zero": ("i", False, 0),
                "a_mult": ("i", False, 0),
                "b_mult": ("i", False, 0),
                "mult": ("i", False, 0),
                "shift": ("i", True, 0),
                "relu": ("i", False, 0),
                "out_narrow": ("i", False, 0),
                "real_factors": ("floats", False, [])}

    def params(self) -> EltwiseParams:
        """The golden parameters (raises :class:`HwsimError` where they are invalid)."""
        g = self.get_nodeattr
        return EltwiseParams(
            op=g("op"), a_signed=bool(g("a_signed")), b_signed=bool(g("b_signed")),
            out_signed=bool(g("out_signed")), a_zero=g("a_zero"), b_zero=g("b_zero"),
            out_zero=g("out_zero"), a_mult=g("a_mult"), b_mult=g("b_mult"), mult=g("mult"),
            shift=g("shift"), relu=bool(g("relu")), out_narrow=bool(g("out_narrow")))

    def make_shape_compatible_op(self, model):
        """``Cast`` of ``a`` to the output code type: ``a`` has the output's shape (``b``
        broadcasts to it)."""
        node = self.onnx_node
        return helper.make_node("Cast", [node.input[0]], [node.output[0]],
                                to=code_elem_type(8, self.get_nodeattr("out_signed")))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0],
                                  _qonnx_dtype(8, self.get_nodeattr("out_signed")))

    def execute_node(self, context, graph):
        node = self.onnx_node
        p = self.params()
        y = eltwise(np.asarray(context[node.input[0]]), np.asarray(context[node.input[1]]), p)
        context[node.output[0]] = y.astype(np.int8 if p.out_signed else np.uint8)


class IntAttention(_Op):
    """Multi-head softmax attention on int8 code tensors with a static int8 output scale.

    Inputs ``q``, ``k``, ``v``: int8 codes ``(…, T, D)`` (tokens × features, row-major as the
    dataflow stream carries them), ``D = heads · head_dim``; head ``h`` owns the features
    ``[h·head_dim, (h+1)·head_dim)`` of every token. Output: int8 codes of the same shape, the
    heads merged the same way. Per leading index and head, the kernel ``attention-head``
    (golden :func:`hwsim.golden.common.attention_head.attention_head`) computes scores
    ``requantize(q·kᵀ, score_mult, score_shift)`` as int8 codes with ``score_frac`` fractional
    bits, the integer softmax with ``prob_frac`` fractional bits (uint8), ``o_acc = p·V`` and
    the per-row absmax codes ``o`` with ``amax``; the static output is then
    ``y = sat(round_half_even(o · amax · out_mult · 2**-out_shift))`` (golden
    :func:`quant.qtype.requantize`). ``causal`` = 1: query ``t`` sees keys ``0 … t``.
    ``kv_heads`` = ``KV`` > 0 (grouped-query attention; ``KV`` divides ``heads``): ``k`` and
    ``v`` have ``KV·head_dim`` features and head ``h`` reads kv head ``h // (heads / KV)``;
    0 (the default) means ``KV = heads`` (k, v shaped like q).
    ``real_factors`` records ``(score scale, output scale)`` the integers approximate.
    """

    N_INPUTS = (3,)
    KERNEL = "attention-head"
    OUT_TYPE = "INT8"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "heads": ("i", True, 1),
                "score_mult": ("i", True, 0),
                "score_shift": ("i", True, 0),
                "score_frac": ("i", False, 4),
                "prob_frac": ("i", False, 8),
                "out_mult": ("i", True, 0),
                "out_shift": ("i", True, 0),
                "causal": ("i", False, 0),
                "kv_heads": ("i", False, 0),
                "real_factors": ("floats", False, [])}

    def kv_count(self) -> int:
        """``KV``: the key / value heads (``heads`` where ``kv_heads`` is 0)."""
        return self.get_nodeattr("kv_heads") or self.get_nodeattr("heads")

    MULT_BITS = 16

    def params(self, shape, lanes: int = 1):
        """The kernel's :class:`~hwsim.golden.common.attention_head.AttentionParams` for
        inputs of ``shape`` (one head, the whole sequence in its cache)."""
        from hwsim.golden.common.attention_head import AttentionParams
        T, D = int(shape[-2]), int(shape[-1])
        heads = self.get_nodeattr("heads")
        if heads < 1 or D % heads:
            raise HwsimError(f"node {self.onnx_node.name!r}: {heads} heads do not divide "
                             f"{D} features")
        return AttentionParams(head_dim=D // heads, max_len=T, lanes=lanes, exp_lanes=1,
                               score=QType(8, frac=self.get_nodeattr("score_frac")),
                               prob=QType(8, frac=self.get_nodeattr("prob_frac"),
                                          signed=False),
                               mult_bits=self.MULT_BITS)

    def out_qtype(self) -> QType:
        return code_qtype(8, True)

    def verify_node(self):
        info = super().verify_node()
        g, name = self.get_nodeattr, self.onnx_node.name
        if g("score_mult") < 0 or g("out_mult") < 0 or g("score_mult") >> self.MULT_BITS \
                or g("out_mult") >> self.MULT_BITS:
            info.append(f"{name!r}: multipliers must be 0 … 2**{self.MULT_BITS} − 1")
        if not 0 <= g("score_shift") <= 62 or not 0 <= g("out_shift") <= 62:
            info.append(f"{name!r}: shifts must be 0 … 62")
        if not 0 <= g("score_frac") <= 7:
            info.append(f"{name!r}: score_frac must be 0 … 7")
        if g("kv_heads") < 0 or (g("kv_heads") and g("heads") % g("kv_heads")):
            info.append(f"{name!r}: kv_heads must be 0 or divide heads")
        return info

    def execute_node(self, context, graph):
        from hwsim.golden.common.attention_head import attention_head
        node = self.onnx_node
        q, k, v = (np.asarray(context[i]).astype(np.int64) for i in node.input)
        p = self.params(q.shape)
        T, D, dh = q.shape[-2], q.shape[-1], p.head_dim
        H, KV = D // dh, self.kv_count()
        # k, v: the same tokens as q (a kv head split of one kv head may add a size-1 axis)
        if q.ndim < 2 or H % KV or k.shape != v.shape or k.shape[-1] != KV * dh \
                or k.size != q.size // H * KV:
            raise HwsimError(f"node {node.name!r}: q must be (…, T, D) and k, v (…, T, "
                             f"{KV}·{dh}) for {H} heads of {KV} kv heads, got {q.shape}, "
                             f"{k.shape}, {v.shape}")
        k, v = (a.reshape(*q.shape[:-1], KV * dh) for a in (k, v))
        g = self.get_nodeattr
        qs = q.reshape(-1, T, D)
        ks, vs = (a.reshape(-1, T, KV * dh) for a in (k, v))
        y = np.zeros(qs.shape, dtype=np.int64)
        for b in range(qs.shape[0]):
            for h in range(H):
                cols = slice(h * dh, (h + 1) * dh)
                j = h // (H // KV)
                kv = slice(j * dh, (j + 1) * dh)
                o, amax = attention_head(qs[b, :, cols], ks[b, :, kv], vs[b, :, kv],
                                         g("score_mult"), g("score_shift"), p,
                                         causal=bool(g("causal")))
                y[b, :, cols] = requantize(o.astype(np.int64) * amax[:, None], g("out_mult"),
                                           g("out_shift"), self.out_qtype())
        context[node.output[0]] = y.reshape(q.shape).astype(np.int8)
class IntLayerNorm(_ParamsOp):
    """Integer LayerNorm of each vector along the last axis of an int8/uint8 code tensor:
    ``y = sat(round_half_even((c·Γ·r + B·2**u)·2**-(u+frac)))`` with ``c = n·x − Σx``,
    ``(r, k)`` the reciprocal of ``isqrt((n·Σx² − (Σx)²)·4**sqrt_frac + eps_code)`` and
    ``u = k − sqrt_frac``. The attributes are the fields of
    :class:`~hwsim.golden.common.layernorm_int.LayerNormParams` (``n`` is the length of
    ``gamma``; ``lanes`` is the back end's choice, not the graph's). Golden:
    :func:`hwsim.golden.common.layernorm_int.layernorm_int` (kernel ``layernorm``).
    """

    KERNEL = "layernorm"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "gamma": ("ints", True, []),
                "beta": ("ints", True, []),
                "frac": ("i", True, 0),
                "eps_code": ("i", False, 0),
                "sqrt_frac": ("i", False, 8),
                "recip_bits": ("i", False, 16),
                "gamma_bits": ("i", False, 16),
                "beta_bits": ("i", False, 24),
                "in_signed": ("i", False, 1),
                "out_signed": ("i", False, 1),
                "out_narrow": ("i", False, 0)}

    def params(self, lanes: int = 1) -> LayerNormParams:
        """The golden parameters (raises :class:`HwsimError` where they are invalid)."""
        g = self.get_nodeattr
        gamma = tuple(g("gamma"))
        return LayerNormParams(
            n=len(gamma), lanes=lanes, in_signed=bool(g("in_signed")),
            out_signed=bool(g("out_signed")), gamma=gamma, beta=tuple(g("beta")),
            frac=g("frac"), eps_code=g("eps_code"), sqrt_frac=g("sqrt_frac"),
            recip_bits=g("recip_bits"), gamma_bits=g("gamma_bits"), beta_bits=g("beta_bits"),
            out_narrow=bool(g("out_narrow")))

    def make_shape_compatible_op(self, model):
        """``Cast`` to the output code type: the same shape."""
        return helper.make_node("Cast", [self.onnx_node.input[0]], [self.onnx_node.output[0]],
                                to=code_elem_type(8, self.get_nodeattr("out_signed")))

    def infer_node_datatype(self, model):
        model.set_tensor_datatype(self.onnx_node.output[0],
                                  _qonnx_dtype(8, self.get_nodeattr("out_signed")))

    def execute_node(self, context, graph):
        node = self.onnx_node
        p = self.params()
        y = layernorm_int(np.asarray(context[node.input[0]]), p)
        context[node.output[0]] = y.astype(np.int8 if p.out_signed else np.uint8)


class IntRmsNorm(_ParamsOp):
    """Integer RMSNorm of each vector along the last axis of an int8 code tensor:
    ``y = sat(round_half_even(x·γ·r · 2**-(k − recip_bits + shift_base)))`` with ``(r, k)`` the
    reciprocal of ``isqrt(floor(Σx²·4**rms_frac / n) + eps_code)``; ``gamma`` are signed
    ``gamma_bits``-bit gains with ``gamma_frac`` fractional bits (the float gain over the
    output scale), the output int8 codes (``out_narrow``: −127 … 127). Golden:
    :func:`hwsim.golden.vitallm.rmsnorm_int.rmsnorm_int` (kernel ``rmsnorm``).
    """

    KERNEL = "rmsnorm"
    OUT_TYPE = "INT8"

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(),
                "gamma": ("ints", True, []),
                "gamma_bits": ("i", False, 16),
                "gamma_frac": ("i", True, 0),
                "eps_code": ("i", False, 0),
                "rms_frac": ("i", False, 12),
                "recip_bits": ("i", False, 16),
                "out_narrow": ("i", False, 0)}

    def params(self, lanes: int = 1):
        """The golden :class:`~hwsim.golden.vitallm.rmsnorm_int.RmsNormParams`."""
        from hwsim.golden.vitallm.rmsnorm_int import RmsNormParams
        g = self.get_nodeattr
        return RmsNormParams(n=len(g("gamma")), lanes=lanes, x=QType(8),
                             gamma=QType(g("gamma_bits"), frac=g("gamma_frac")),
                             out=QType(8, narrow=bool(g("out_narrow"))),
                             rms_frac=g("rms_frac"), recip_bits=g("recip_bits"))

    def execute_node(self, context, graph):
        from hwsim.golden.vitallm.rmsnorm_int import rmsnorm_int
        node = self.onnx_node
        y = rmsnorm_int(np.asarray(context[node.input[0]]).astype(np.int64),
                        np.asarray(self.get_nodeattr("gamma"), np.int64),
                        int(self.get_nodeattr("eps_code")), self.params())
        context[node.output[0]] = y.astype(np.int8)


class SpabGate(_ParamsOp):
    """The SwiftChannel SPAB gate, fused: ``clip(((x − z_x)·M_x + (c − z_c)·M_c) · lut(c) ·
    2**-S`` rounded half up ``+ z_out, 0, 255)`` on two uint8 code tensors of the same shape,
    ``lut`` the 512-entry sigmoid table indexed by ``clip(floor((c − z_c)·M_l·2**-S_l) + 256,
    0, 511)``. Attributes: the integer constants of
    :class:`hwsim.golden.swiftchannel.gate.GateParams`. Golden:
    :func:`hwsim.golden.swiftchannel.gate.gate` (kernel ``swiftchannel-gate``)."""

    N_INPUTS = (2,)
    KERNEL = "swiftchannel-gate"
    OUT_TYPE = "UINT8"
    FIELDS = ("z_x", "z_c", "lut_mult", "lut_shift", "sum_mult_x", "sum_mult_c", "sum_shift",
              "z_out")

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(), **{f: ("i", True, 0) for f in self.FIELDS}}

    def params(self, lanes: int = 1):
        """The kernel's :class:`~hwsim.golden.swiftchannel.gate.GateParams`."""
        from hwsim.golden.swiftchannel.gate import GateParams
        return GateParams(lanes=lanes, **{f: int(self.get_nodeattr(f)) for f in self.FIELDS})

    def execute_node(self, context, graph):
        from hwsim.golden.swiftchannel.gate import gate
        node = self.onnx_node
        x, c = (np.asarray(context[n]) for n in node.input)
        context[node.output[0]] = gate(x, c, self.params()).astype(np.uint8)


class IntWindowAttention(IntAttention):
    """:class:`IntAttention` over non-overlapping windows: the tokens of ``(…, T, D)`` codes
    are ``T / window`` consecutive windows of ``window`` tokens, each attending among itself
    (one ``attention-head`` sequence per window; lowered by
    :class:`~hwsim.compile.lower.windows.LowerWindowAttention`)."""

    def get_nodeattr_types(self):
        return {**super().get_nodeattr_types(), "window": ("i", True, 0)}

    def params(self, shape, lanes: int = 1):
        return super().params((self.get_nodeattr("window"), int(shape[-1])), lanes)

    def verify_node(self):
        info = super().verify_node()
        if self.get_nodeattr("window") < 1:
            info.append(f"{self.onnx_node.name!r}: window must be ≥ 1")
        return info

    def execute_node(self, context, graph):
        node, w = self.onnx_node, self.get_nodeattr("window")
        shape = np.asarray(context[node.input[0]]).shape
        T, D = int(np.prod(shape[:-1])), shape[-1]
        if w < 1 or T % w:
            raise HwsimError(f"node {node.name!r}: windows of {w} tokens do not tile {T}")
        ctx = {n: np.asarray(context[n]).reshape(-1, w, D) for n in node.input}
        IntAttention.execute_node(self, ctx, graph)
        context[node.output[0]] = ctx[node.output[0]].reshape(shape)


# ops in their own modules (qonnx finds an op in this module by its op type)
from hwsim.compile.dialect_ops.concat import IntConcat  # noqa: E402
from hwsim.compile.dialect_ops.flatten import StreamFlatten  # noqa: E402
from hwsim.compile.dialect_ops.lif import IntLifArray  # noqa: E402
from hwsim.compile.dialect_ops.maxpool import IntMaxPool  # noqa: E402
from hwsim.compile.dialect_ops.rope import IntRotary  # noqa: E402
from hwsim.compile.dialect_ops.threshold import IntThreshold  # noqa: E402
