"""Lowering a QONNX graph to the ``hwsim`` dialect, verified after every step (FINN style).

:func:`lower` applies named qonnx ``Transformation`` s in order (:data:`STEPS`) and executes
the graph with qonnx's ``execute_onnx`` after each one on the same inputs:

* an **exact** step (``exact = True``) must leave every graph output ``==`` the step before,
  else :class:`~hwsim.errors.HwsimError` names the step and the output;
* an **approximate** step (float scales turned into integer ``M · 2**-S``) reports, per code
  tensor it produces, the largest deviation from the step before in output LSBs (max
  ``|Δcode|``) next to the bound it proves for that node; a deviation above the bound raises.

The steps of the first lowering (Brevitas ``QuantLinear`` layers exported as QONNX,
``Quant(x) → MatMul/Gemm(Quant(W)) [+ bias] [→ Relu] → Quant(y)``):

1. :class:`QuantActivationsToCodes` (exact): each activation ``Quant`` becomes
   ``QuantizeLinear [→ Clip] → DequantizeLinear``: the integer codes appear as int8/uint8
   tensors, the float value is unchanged.
2. :class:`WeightQuantToCodes` (exact): each weight ``Quant`` (and a ``Transpose`` after it)
   becomes an int8 code initializer ``(in, out)`` and a ``DequantizeLinear``.
3. :class:`LowerLinearLayers` (approximate): ``MatMul/Gemm [+ bias] [→ Relu] → QuantizeLinear``
   on dequantized codes becomes ``IntMatMul → Requant`` (``TernaryMatMul → Requant`` for a
   2-bit narrow weight quantizer on signed activations without bias, e.g.
   :class:`quant.brevitas_quantizers.TernaryAbsmeanWeight`; bias rounded to accumulator units,
   ``s_a · s_w / s_y`` folded into ``M, S``); the dequantize nodes left without consumers go.
4. :class:`LowerPointwise` (exact): a unary activation between two quantizers,
   ``DequantizeLinear → F → QuantizeLinear [→ Clip]`` on 8-bit codes (``F`` one of
   :data:`POINTWISE_OPS`, or SiLU written ``Mul(x, Sigmoid(x))``), becomes one ``LutAct``
   whose table is those very nodes executed by onnxruntime on all 256 input codes.
5. :class:`LowerElementwise` (approximate): ``Add|Mul`` of two dequantized code tensors
   ``[→ Relu] → QuantizeLinear [→ Clip]`` (residual adds, gates) becomes one ``IntEltwise``.

What remains around the dialect ops after the full lowering is the graph boundary:
``QuantizeLinear`` (float → codes) at each input and ``DequantizeLinear`` (codes → float) at
each output.

Limits of this lowering: 8-bit activation quantizers, per-tensor scales, integer zero points
(0 for weights), ``ROUND`` (half-even) rounding, each layer's result read by one quantizer.
Anything else, and any compute node left outside the dialect after the full lowering, raises
:class:`~hwsim.errors.HwsimError` naming the node.
"""

from __future__ import annotations

import contextlib
import io
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import RemoveUnusedTensors
from qonnx.transformation.infer_shapes import InferShapes

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from hwsim.golden.common.eltwise import params_for as eltwise_params_for
from hwsim.golden.common.eltwise import real_factors as eltwise_real_factors
from hwsim.golden.common.int8_matmul import fold_scale

__all__ = ["MULT_BITS", "POINTWISE_OPS", "STEPS", "LowerElementwise", "LowerLinearLayers",
           "LowerPointwise", "LoweringReport", "QuantActivationsToCodes", "StepReport",
           "WeightQuantToCodes", "check_lowered", "lower"]

#: width of the requantization multiplier ``M`` (relative error of ``M · 2**-S`` < 2**-23)
MULT_BITS = 24
#: domains of QONNX's quantizer nodes
_QUANT_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas")
#: nodes that may remain around the dialect ops: the graph's float ↔ code boundary
_BOUNDARY_OPS = ("QuantizeLinear", "DequantizeLinear", "Clip")
#: float32 unit roundoff
_U32 = 2.0 ** -24


# ------------------------------------------------------------------------------------------
# Graph helpers
def _scalar(model: ModelWrapper, name: str, node, what: str) -> float:
    value = model.get_initializer(name)
    if value is None:
        raise HwsimError(f"node {node.name!r}: {what} is not a constant")
    value = np.asarray(value)
    if value.size != 1:
        raise HwsimError(f"node {node.name!r}: {what} is not per-tensor (shape {value.shape}); "
                         "only per-tensor scales are lowered")
    return float(value.reshape(()))


def _quant_params(model: ModelWrapper, node) -> tuple[np.float32, int, bool, bool, int]:
    """``(scale, zero point, signed, narrow, width)`` of a QONNX ``Quant`` node, checked
    against the lowering's limits."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    scale = _scalar(model, node.input[1], node, "scale")
    zero = _scalar(model, node.input[2], node, "zero point")
    width = _scalar(model, node.input[3], node, "bit width")
    rounding = attrs.get("rounding_mode", b"ROUND")
    rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
    if zero != int(zero) or width != int(width) or rounding != "ROUND" or not scale > 0:
        raise HwsimError(f"Quant node {node.name!r}: only integer zero points and widths, "
                         f"ROUND rounding and positive scales are lowered")
    return (np.float32(scale), int(zero), bool(attrs.get("signed", 1)),
            bool(attrs.get("narrow", 0)), int(width))


def _code_range(width: int, signed: bool, narrow: bool) -> tuple[int, int]:
    qt = dialect.code_qtype(width, signed, narrow)
    return qt.min_code, qt.max_code


def _const(model: ModelWrapper, name: str, value: np.ndarray) -> str:
    model.set_initializer(name, np.asarray(value))
    return name


def _replace(model: ModelWrapper, old: list, new: list) -> None:
    """Put ``new`` nodes where the first of ``old`` was; remove ``old``."""
    graph = model.graph
    at = min(list(graph.node).index(n) for n in old)
    for n in old:
        graph.node.remove(n)
    for i, n in enumerate(new):
        graph.node.insert(at + i, n)


def _remove_dead_nodes(model: ModelWrapper) -> None:
    outputs = {o.name for o in model.graph.output}
    changed = True
    while changed:
        used = {i for n in model.graph.node for i in n.input} | outputs
        dead = [n for n in model.graph.node if not any(o in used for o in n.output)]
        for n in dead:
            model.graph.node.remove(n)
        changed = bool(dead)


def _refresh(model: ModelWrapper) -> ModelWrapper:
    """Drop stale value infos and unused tensors, then infer shapes and types again."""
    del model.graph.value_info[:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.transform(RemoveUnusedTensors()).transform(InferShapes())


def _is_quant(node) -> bool:
    return node.op_type == "Quant" and node.domain in _QUANT_DOMAINS


def _single_consumer(model: ModelWrapper, tensor: str, op_types: tuple[str, ...]):
    consumers = model.find_consumers(tensor) or []
    if len(consumers) == 1 and consumers[0].op_type in op_types \
            and tensor not in {o.name for o in model.graph.output}:
        return consumers[0]
    return None


# ------------------------------------------------------------------------------------------
# Steps
class QuantActivationsToCodes(Transformation):
    """Exact: ``Quant(x)`` on an activation → ``QuantizeLinear [→ Clip] → DequantizeLinear``.

    ``QuantizeLinear`` computes ``round_half_even(x / s)`` saturated to int8/uint8 as the
    ``Quant`` node does; a ``Clip`` narrows the range where the quantizer is narrow. The codes
    tensor is named ``<Quant output>_codes``.
    """

    exact = True

    def apply(self, model):
        for node in [n for n in model.graph.node if _is_quant(n)]:
            if model.get_initializer(node.input[0]) is not None:
                continue  # a weight: WeightQuantToCodes
            scale, zero, signed, narrow, width = _quant_params(model, node)
            if width != 8:
                raise HwsimError(f"Quant node {node.name!r}: activations of {width} bits; "
                                 "only 8-bit activation quantizers are lowered")
            out = node.output[0]
            np_type = np.int8 if signed else np.uint8
            s = _const(model, f"{out}_scale", np.array(scale, np.float32))
            z = _const(model, f"{out}_zero", np.array(zero, np_type))
            codes = f"{out}_codes"
            lo, hi = _code_range(width, signed, narrow)
            full = _code_range(width, signed, False)
            new = []
            if (lo, hi) == full:
                new.append(helper.make_node("QuantizeLinear", [node.input[0], s, z], [codes],
                                            name=f"{node.name}/quantize"))
            else:
                new += [helper.make_node("QuantizeLinear", [node.input[0], s, z],
                                         [f"{codes}_full"], name=f"{node.name}/quantize"),
                        helper.make_node("Clip", [f"{codes}_full",
                                                  _const(model, f"{out}_lo", np.array(lo, np_type)),
                                                  _const(model, f"{out}_hi", np.array(hi, np_type))],
                                         [codes], name=f"{node.name}/narrow")]
            # own copies of scale and zero point: qonnx's cleanup renames shared initializers
            s_out = _const(model, f"{out}_dq_scale", np.array(scale, np.float32))
            z_out = _const(model, f"{out}_dq_zero", np.array(zero, np_type))
            new.append(helper.make_node("DequantizeLinear", [codes, s_out, z_out], [out],
                                        name=f"{node.name}/dequantize"))
            _replace(model, [node], new)
        return _refresh(model), False


class WeightQuantToCodes(Transformation):
    """Exact: ``Quant(W)`` on a weight initializer [→ ``Transpose``] → int8 codes ``(in, out)``
    ``→ DequantizeLinear``; the codes are ``round_half_even(W / s)`` clipped as ``Quant``
    computes them, in float32."""

    exact = True

    def apply(self, model):
        for node in [n for n in model.graph.node if _is_quant(n)]:
            w = model.get_initializer(node.input[0])
            if w is None:
                continue
            scale, zero, signed, narrow, width = _quant_params(model, node)
            if width > 8 or not signed or zero or w.ndim != 2:
                raise HwsimError(f"Quant node {node.name!r}: weights must be 2-D signed codes "
                                 f"of at most 8 bits with zero point 0 (got {width} bits, "
                                 f"zero point {zero}, shape {w.shape})")
            lo, hi = _code_range(width, signed, narrow)
            codes = np.clip(np.round(w.astype(np.float32) / scale), lo, hi).astype(np.int8)
            old, out = [node], node.output[0]
            transpose = _single_consumer(model, out, ("Transpose",))
            if transpose is not None:
                codes, out = codes.T, transpose.output[0]
                old.append(transpose)
            name = f"{node.input[0]}_codes"
            _const(model, name, np.ascontiguousarray(codes))
            model.set_tensor_datatype(name, DataType[f"INT{width}"])  # INT2: ternary
            s = _const(model, f"{node.input[0]}_scale", np.array(scale, np.float32))
            _replace(model, old, [helper.make_node(
                "DequantizeLinear", [name, s], [out], name=f"{node.name}/dequantize")])
        return _refresh(model), False


@dataclass
class _Layer:
    """One matched ``MatMul/Gemm [+ bias] [→ Relu] → QuantizeLinear [→ Clip]`` pattern."""

    nodes: list
    a_codes: str
    a_dq: object
    w_codes: np.ndarray  # (in, out)
    w_dq: object
    bias: np.ndarray | None
    relu: bool
    out_codes: str
    out_q: object
    narrow: bool


class LowerLinearLayers(Transformation):
    """Approximate: ``MatMul/Gemm`` on dequantized codes [+ bias] [→ Relu] → ``QuantizeLinear``
    becomes ``IntMatMul → Requant``.

    ``M · 2**-S`` = ``fold_scale(s_a, s_w, 1 / s_y, bits=mult_bits)``; the float bias becomes
    ``round(b / (s_a · s_w))`` in accumulator units. After :meth:`apply`, :attr:`bounds` maps
    each ``Requant`` output to the largest ``|Δcode|`` from the float layer it proves:
    ``floor(ε) + 1`` (two reals ``ε`` apart round to codes at most that far apart; saturation
    and ReLU cannot widen it), with ``ε`` in output LSBs the sum of

    * ``r · δ_in · max_j Σ_i |W_ij|`` — the input codes' own bound ``δ_in`` (0 at the input),
    * ``0.5 · r`` — the bias rounded to accumulator units (``r = s_a s_w / s_y``),
    * ``|r − M 2**-S| · peak`` — the folded multiplier, ``peak`` the largest ``|acc|``,
    * ``(k + 5) · 2**-24 · (r · peak + |b| / s_y)`` — float32 rounding of the original layer
      (first order: dequantizing ``a`` and ``w``, the product, ``k − 1`` additions, the bias
      and the division by ``s_y``, one unit roundoff each).
    """

    exact = False

    def __init__(self, mult_bits: int = MULT_BITS):
        super().__init__()
        self.mult_bits = mult_bits
        self.bounds: dict[str, int] = {}

    def _match(self, model, node) -> _Layer:
        def fail(why):
            raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: {why}")

        a_dq = model.find_producer(node.input[0])
        w_dq = model.find_producer(node.input[1])
        if a_dq is None or a_dq.op_type != "DequantizeLinear":
            fail("its activation input is not quantized")
        if w_dq is None or w_dq.op_type != "DequantizeLinear" \
                or model.get_initializer(w_dq.input[0]) is None:
            fail("its weight is not a quantized constant")
        w = model.get_initializer(w_dq.input[0])
        bias, nodes = None, [node]
        if node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 \
                    or attrs.get("transA", 0):
                fail("only alpha = beta = 1 and transA = 0 are lowered")
            if attrs.get("transB", 0):
                w = w.T
            if len(node.input) == 3:
                bias = model.get_initializer(node.input[2])
                if bias is None:
                    fail("its bias is not a constant")
        tail = node.output[0]
        add = _single_consumer(model, tail, ("Add",))
        if add is not None and bias is None:
            other = [i for i in add.input if i != tail]
            bias = model.get_initializer(other[0]) if len(other) == 1 else None
            if bias is None:
                fail("it is followed by an Add of a non-constant")
            nodes.append(add)
            tail = add.output[0]
        relu = _single_consumer(model, tail, ("Relu",))
        if relu is not None:
            nodes.append(relu)
            tail = relu.output[0]
        out_q = _single_consumer(model, tail, ("QuantizeLinear",))
        if out_q is None:
            users = ", ".join(f"{n.op_type} node {n.name!r}"
                              for n in model.find_consumers(tail) or []) or "a graph output"
            fail(f"its result goes to {users}, not to an 8-bit quantizer")
        nodes.append(out_q)
        out_codes = out_q.output[0]
        clip = _single_consumer(model, out_codes, ("Clip",))
        if clip is not None:
            nodes.append(clip)
            out_codes = clip.output[0]
        if w.ndim != 2 or (bias is not None
                           and np.asarray(bias).shape not in ((w.shape[1],), ())):
            fail(f"weight shape {w.shape} and bias do not form a linear layer")
        return _Layer(nodes, a_dq.input[0], a_dq, np.asarray(w), w_dq, bias, relu is not None,
                      out_codes, out_q, clip is not None)

    def apply(self, model):
        self.bounds = {}
        for node in [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")]:
            layer = self._match(model, node)
            self._lower(model, node, layer)
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _lower(self, model, node, layer: _Layer) -> None:
        s_a = _scalar(model, layer.a_dq.input[1], node, "input scale")
        s_w = _scalar(model, layer.w_dq.input[1], node, "weight scale")
        s_y = _scalar(model, layer.out_q.input[1], node, "output scale")
        a_zero = model.get_initializer(layer.a_dq.input[2])
        y_zero = model.get_initializer(layer.out_q.input[2])
        a_signed, y_signed = a_zero.dtype == np.int8, y_zero.dtype == np.int8
        a_zero, y_zero = int(a_zero), int(y_zero)
        w_codes = layer.w_codes.astype(np.int8)
        mult, shift = fold_scale(s_a, s_w, 1.0 / s_y, bits=self.mult_bits)
        real = s_a * s_w / s_y
        inputs = [layer.a_codes, _const(model, f"{node.name}/w_codes", w_codes)]
        bias_int = None
        if layer.bias is not None or a_zero:
            # Σ (a − z_a) · w = a · W − z_a · Σ_i w_i: the input zero point joins the bias
            bias = 0.0 if layer.bias is None else np.asarray(layer.bias, np.float64)
            bias_int = np.round(bias / (s_a * s_w)).astype(np.int64) \
                - a_zero * w_codes.astype(np.int64).sum(axis=0)
            bias_int = np.broadcast_to(bias_int, (w_codes.shape[1],)).astype(np.int32)
            inputs.append(_const(model, f"{node.name}/bias_acc", bias_int))
        acc = f"{node.name}/acc"
        narrow_w = int(w_codes.min(initial=0) > -128)
        ternary = (model.get_tensor_datatype(layer.w_dq.input[0]) == DataType["INT2"]
                   and a_signed and bias_int is None and w_codes.min(initial=0) >= -1)
        if ternary:
            matmul = helper.make_node("TernaryMatMul", inputs, [acc], domain=dialect.DOMAIN,
                                      name=f"{node.name}/ternary", kernel=dialect.TernaryMatMul.KERNEL,
                                      a_width=8, a_signed=1)
        else:
            matmul = helper.make_node("IntMatMul", inputs, [acc], domain=dialect.DOMAIN,
                                      name=f"{node.name}/int", kernel=dialect.IntMatMul.KERNEL, a_width=8,
                                      a_signed=int(a_signed), w_narrow=narrow_w)
        requant = helper.make_node("Requant", [acc], [layer.out_codes], domain=dialect.DOMAIN,
                                   name=f"{node.name}/requant", kernel=dialect.Requant.KERNEL,
                                   multiplier=mult,
                                   shift=shift, width=8, signed=int(y_signed),
                                   narrow=int(layer.narrow), relu=int(layer.relu),
                                   zero_point=y_zero,
                                   rounding="half_even", real_scale=real)
        _replace(model, layer.nodes, [matmul, requant])
        bias_out = 0.0 if layer.bias is None else float(np.max(np.abs(layer.bias))) / s_y
        self.bounds[layer.out_codes] = self._bound(
            self.bounds.get(layer.a_codes, 0), real, mult * 2.0 ** -shift, w_codes, bias_int,
            bias_out, 128 if a_signed and not a_zero else 255)

    @staticmethod
    def _bound(delta_in: int, real: float, folded: float, w: np.ndarray, bias: np.ndarray | None,
               bias_out: float, a_peak: int) -> int:
        """``floor(ε) + 1`` for the terms listed in the class docstring (``bias_out``: the
        largest ``|b| / s_y``, ``a_peak``: the largest ``|a|`` code)."""
        colsum = float(np.max(np.sum(np.abs(w.astype(np.int64)), axis=0)))
        peak = a_peak * colsum + (0 if bias is None else float(np.max(np.abs(bias))))
        # (bias holds the input zero point's term too: peak and the 0.5 · r below only grow)
        eps = real * delta_in * colsum
        eps += 0.0 if bias is None else 0.5 * real
        eps += abs(real - folded) * peak
        eps += (w.shape[0] + 5) * _U32 * (real * peak + bias_out)
        return math.floor(eps) + 1


@dataclass
class _Eltwise:
    """One matched ``Add|Mul [→ Relu] → QuantizeLinear [→ Clip]`` on two dequantized code
    tensors."""

    nodes: list
    op: str
    a_dq: object
    b_dq: object
    relu: bool
    out_q: object
    out_codes: str
    narrow: bool


class LowerElementwise(Transformation):
    """Approximate: ``DequantizeLinear(a), DequantizeLinear(b) → Add|Mul [→ Relu] →
    QuantizeLinear [→ Clip]`` becomes one ``IntEltwise`` (kernel ``eltwise``).

    The scales fold into integers by :func:`hwsim.golden.common.eltwise.params_for`: ``add``
    ``Ma·2**-S ≈ r_a = s_a/s_y`` and ``Mb·2**-S ≈ r_b = s_b/s_y`` (one shift), ``mul``
    ``M·2**-S ≈ r = s_a·s_b/s_y``; zero points and signedness come from the quantizers, a
    ``Relu`` becomes the clip at the output zero point, a narrowing ``Clip`` ``out_narrow``.
    An operand may feed other nodes too (a residual skip): the step only rewires. ``b`` must
    broadcast to ``a``'s shape (the operands are swapped where only ``a`` broadcasts); an
    ``Add``/``Mul`` not of this form (e.g. by a constant) is left for another step.

    Bound (:attr:`bounds`, per produced code tensor, ``floor(ε) + 1`` as in
    :class:`LowerLinearLayers`): with ``A = max |a − z_a|``, ``B = max |b − z_b|`` over the
    code ranges, ``f`` the folded factors and ``δ_a``, ``δ_b`` the operands' own bounds in this
    step (0 unless produced by a node this step changed), ``ε`` in output LSBs is

    * add: ``A·|r_a − f_a| + B·|r_b − f_b|`` (folding) ``+ δ_a·f_a + δ_b·f_b`` (inputs)
      ``+ 8·2**-24·(A·r_a + B·r_b)`` (float32 rounding of the original: two dequantizations,
      the add, the division by ``s_y``, first order, with margin);
    * mul: ``A·B·|r − f|`` ``+ f·(δ_a·B + δ_b·A)`` (since ``a₁b₁ − a₀b₀ = (a₁ − a₀)·b₁ +
      a₀·(b₁ − b₀)``) ``+ 8·2**-24·A·B·r``.

    Saturation, the zero point and ReLU are monotone and 1-Lipschitz: they cannot widen it. A
    node this step changes only through its inputs (an ``IntMatMul``/``TernaryMatMul →
    Requant`` lowered before, reading a changed code tensor) is bounded too: ``floor(f · δ ·
    max_j Σ_i |W_ij|) + 1`` (``f = M·2**-S`` of its ``Requant``); a tensor past any other node
    reading a changed tensor is not bounded.
    """

    exact = False

    def __init__(self, mult_bits: int = MULT_BITS):
        super().__init__()
        self.mult_bits = mult_bits
        self.bounds: dict[str, int] = {}
        self._own: dict[str, tuple] = {}

    def _match(self, model, node) -> _Eltwise | None:
        dqs = [model.find_producer(i) for i in node.input]
        if len(dqs) != 2 or any(d is None or d.op_type != "DequantizeLinear"
                                or model.get_initializer(d.input[0]) is not None
                                or len(d.input) < 3 for d in dqs):
            return None
        nodes, tail = [node], node.output[0]
        relu = _single_consumer(model, tail, ("Relu",))
        if relu is not None:
            nodes.append(relu)
            tail = relu.output[0]
        out_q = _single_consumer(model, tail, ("QuantizeLinear",))
        if out_q is None:
            return None
        nodes.append(out_q)
        out_codes = out_q.output[0]
        clip = _single_consumer(model, out_codes, ("Clip",))
        if clip is not None:
            lo, hi = (model.get_initializer(i) for i in clip.input[1:3])
            if lo is None or hi is None or (int(lo), int(hi)) != (-127, 127):
                raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: its output "
                                 f"Clip {clip.name!r} is not the narrow int8 range")
            nodes.append(clip)
            out_codes = clip.output[0]
        a_dq, b_dq = dqs
        a_shape, b_shape = (tuple(model.get_tensor_shape(d.input[0])) for d in dqs)
        out_shape = np.broadcast_shapes(a_shape, b_shape)
        if a_shape != out_shape:
            if b_shape != out_shape:
                raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: neither "
                                 f"operand has the output's shape {out_shape}")
            a_dq, b_dq = b_dq, a_dq
        return _Eltwise(nodes, node.op_type.lower(), a_dq, b_dq, relu is not None, out_q,
                        out_codes, clip is not None)

    def apply(self, model):
        self.bounds, self._own = {}, {}
        for node in [n for n in model.graph.node if n.op_type in ("Add", "Mul")]:
            match = self._match(model, node)
            if match is not None:
                self._lower(model, node, match)
        _remove_dead_nodes(model)
        self._propagate(model)
        return _refresh(model), False

    def _lower(self, model, node, e: _Eltwise) -> None:
        def quant(q, what):
            scale = _scalar(model, q.input[1], node, f"{what} scale")
            zero = model.get_initializer(q.input[2])
            return scale, int(zero), zero.dtype == np.int8

        s_a, z_a, sg_a = quant(e.a_dq, "first operand")
        s_b, z_b, sg_b = quant(e.b_dq, "second operand")
        s_y, z_y, sg_y = quant(e.out_q, "output")
        p = eltwise_params_for(e.op, s_a, z_a, s_b, z_b, s_y, z_y, a_signed=sg_a,
                               b_signed=sg_b, out_signed=sg_y, relu=e.relu,
                               out_narrow=e.narrow, mult_bits=self.mult_bits)
        real = (s_a / s_y, s_b / s_y) if e.op == "add" else (s_a * s_b / s_y,)
        new = helper.make_node(
            "IntEltwise", [e.a_dq.input[0], e.b_dq.input[0]], [e.out_codes],
            domain=dialect.DOMAIN, name=f"{node.name}/int", kernel=dialect.IntEltwise.KERNEL,
            op=p.op, a_signed=int(p.a_signed), b_signed=int(p.b_signed),
            out_signed=int(p.out_signed), a_zero=p.a_zero, b_zero=p.b_zero,
            out_zero=p.out_zero, a_mult=p.a_mult, b_mult=p.b_mult, mult=p.mult,
            shift=p.shift, relu=int(p.relu), out_narrow=int(p.out_narrow),
            real_factors=[float(r) for r in real])
        _replace(model, e.nodes, [new])
        self._own[e.out_codes] = (p, real)

    def _propagate(self, model) -> None:
        """Bounds in graph order: each ``IntEltwise`` this step made, and each ``Requant``
        after a matrix product that reads a tensor with a bound."""
        for node in model.graph.node:
            out = node.output[0] if node.output else None
            if out in self._own:
                p, real = self._own[out]
                da, db = (self.bounds.get(i, 0) for i in node.input[:2])
                f = eltwise_real_factors(p)
                A, B = p.a_peak, p.b_peak
                if p.op == "add":
                    eps = A * abs(real[0] - f[0]) + B * abs(real[1] - f[1]) \
                        + da * f[0] + db * f[1] + 8 * _U32 * (A * real[0] + B * real[1])
                else:
                    eps = A * B * abs(real[0] - f[0]) + f[0] * (da * B + db * A) \
                        + 8 * _U32 * A * B * real[0]
                self.bounds[out] = math.floor(eps) + 1
            elif node.op_type == "Requant" and node.domain == dialect.DOMAIN:
                mm = model.find_producer(node.input[0])
                if mm is None or mm.op_type not in ("IntMatMul", "TernaryMatMul") \
                        or not self.bounds.get(mm.input[0], 0):
                    continue
                w = model.get_initializer(mm.input[1]).astype(np.int64)
                colsum = float(np.max(np.sum(np.abs(w), axis=0)))
                rq = getCustomOp(node)
                f = rq.get_nodeattr("multiplier") * 2.0 ** -rq.get_nodeattr("shift")
                self.bounds[out] = math.floor(f * self.bounds[mm.input[0]] * colsum) + 1




#: unary float ops a ``LutAct`` replaces between two quantizers (elementwise functions of
#: their one input; attributes such as ``alpha`` or Gelu's ``approximate`` are kept in the
#: nodes the table is computed from)
POINTWISE_OPS = ("Sigmoid", "Gelu", "Tanh", "Relu", "HardSigmoid", "HardSwish", "Erf",
                 "LeakyRelu", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Mish", "Abs",
                 "Neg", "Identity")


@dataclass
class _Pointwise:
    """One matched ``DequantizeLinear → F → QuantizeLinear [→ Clip]`` pattern."""

    dq: object
    body: list  # F, or Sigmoid and Mul for SiLU
    q: object
    clip: object | None

    @property
    def nodes(self) -> list:
        return [self.dq, *self.body, self.q] + ([self.clip] if self.clip is not None else [])

    @property
    def out_codes(self) -> str:
        return (self.clip or self.q).output[0]


def _elem_type(model: ModelWrapper, tensor: str) -> int | None:
    """The ONNX element type of ``tensor`` (an initializer, graph input/output or value info)."""
    init = model.get_initializer(tensor)
    if init is not None:
        return helper.np_dtype_to_tensor_dtype(np.asarray(init).dtype)
    graph = model.graph
    for vi in [*graph.input, *graph.value_info, *graph.output]:
        if vi.name == tensor:
            return vi.type.tensor_type.elem_type
    return None


def _constants_scalar(model: ModelWrapper, names) -> bool:
    """Every named (non-empty) input is a constant of one element."""
    values = [model.get_initializer(n) for n in names if n]
    return all(v is not None and np.asarray(v).size == 1 for v in values)


class LowerPointwise(Transformation):
    """Exact: a unary activation between two quantizers becomes one ``LutAct``.

    The pattern is ``codes → DequantizeLinear(s_in, z_in) → F → QuantizeLinear(s_out, z_out)
    [→ Clip]`` with 8-bit (int8/uint8) input codes, per-tensor constant scales, zero points and
    clip bounds, ``F`` one op of :data:`POINTWISE_OPS` or SiLU written ``Mul(x, Sigmoid(x))``,
    and ``F``'s result read only by the quantizer. The table is built by executing exactly
    those ONNX nodes (``DequantizeLinear → F → QuantizeLinear [→ Clip]``, copied with their
    attributes and constants) in onnxruntime on all 256 input codes, so the ``LutAct`` gives
    the codes the graph gave for every input: the step is exact (the outputs ``==`` the step
    before). A node outside the pattern (codes wider than 8 bits, per-channel scales, a result
    that is not quantized) is left as it is; :func:`lower` then names it if nothing else
    lowers it. A ``Relu`` between a ``MatMul``/``Gemm`` and its quantizer is folded into the
    requantizer by :class:`LowerLinearLayers` before this step.
    """

    exact = True

    def _match(self, model, node) -> _Pointwise | None:
        if node.op_type == "Mul":  # SiLU: Mul(x, Sigmoid(x))
            if len(node.input) != 2:
                return None
            sig = next((p for p in map(model.find_producer, node.input)
                        if p is not None and p.op_type == "Sigmoid"), None)
            if sig is None or _single_consumer(model, sig.output[0], ("Mul",)) is not node:
                return None
            other = [i for i in node.input if i != sig.output[0]]
            if other != [sig.input[0]]:
                return None
            body = [sig, node]
        elif node.op_type in POINTWISE_OPS:
            if len(node.input) != 1 or len(node.output) != 1:
                return None
            if node.op_type == "Sigmoid" and (_single_consumer(model, node.output[0], ("Mul",))
                                              is not None):
                return None  # the SiLU's Mul takes it
            body = [node]
        else:
            return None
        dq = model.find_producer(body[0].input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 2:
            return None
        if _elem_type(model, dq.input[0]) not in (onnx.TensorProto.INT8,
                                                  onnx.TensorProto.UINT8):
            return None
        q = _single_consumer(model, body[-1].output[0], ("QuantizeLinear",))
        if q is None or len(q.input) < 3 or _elem_type(model, q.input[2]) not in (
                onnx.TensorProto.INT8, onnx.TensorProto.UINT8):
            return None
        clip = _single_consumer(model, q.output[0], ("Clip",))
        if not (_constants_scalar(model, dq.input[1:]) and _constants_scalar(model, q.input[1:])
                and (clip is None or _constants_scalar(model, clip.input[1:]))):
            return None
        return _Pointwise(dq, body, q, clip)

    def _table(self, model, match: _Pointwise) -> tuple[np.ndarray, int, int]:
        """The output code of each input code (in increasing order), run in onnxruntime; the
        input and output element types."""
        from quant.onnx import ort_session

        codes = match.dq.input[0]
        in_type = _elem_type(model, codes)
        out_type = _elem_type(model, match.q.input[2])
        nodes = [onnx.NodeProto.FromString(n.SerializeToString()) for n in match.nodes]
        consts = {i for n in nodes for i in n.input if i and model.get_initializer(i) is not None}
        graph = helper.make_graph(
            nodes, "lut_table",
            [helper.make_tensor_value_info(codes, in_type, [256])],
            [helper.make_tensor_value_info(match.out_codes, out_type, [256])],
            initializer=[numpy_helper.from_array(np.asarray(model.get_initializer(c)), c)
                         for c in sorted(consts)])
        table_model = helper.make_model(
            graph, opset_imports=[o for o in model.model.opset_import
                                  if o.domain in ("", "ai.onnx")])
        table_model.ir_version = model.model.ir_version
        np_in = helper.tensor_dtype_to_np_dtype(in_type)
        inp = np.arange(np.iinfo(np_in).min, np.iinfo(np_in).max + 1).astype(np_in)
        (table,) = ort_session(table_model).run(None, {codes: inp})
        return np.asarray(table).astype(np.int64), in_type, out_type

    def apply(self, model):
        for node in list(model.graph.node):
            if node not in model.graph.node:
                continue  # taken by an earlier match
            match = self._match(model, node)
            if match is None:
                continue
            table, in_type, out_type = self._table(model, match)
            fn = "Silu" if match.body[-1].op_type == "Mul" else match.body[0].op_type
            lut = helper.make_node(
                "LutAct", [match.dq.input[0]], [match.out_codes], domain=dialect.DOMAIN,
                name=f"{match.body[-1].name}/lut", kernel=dialect.LutAct.KERNEL,
                table=[int(v) for v in table], in_width=8,
                in_signed=int(in_type == onnx.TensorProto.INT8), out_width=8,
                out_signed=int(out_type == onnx.TensorProto.INT8), function=fn)
            # the input's DequantizeLinear stays where it has other readers
            dq_out = match.dq.output[0]
            others = [n for n in model.find_consumers(dq_out) or [] if n not in match.body]
            keep = others or dq_out in {o.name for o in model.graph.output}
            old = match.nodes[1:] if keep else match.nodes
            _replace(model, old, [lut])
        _remove_dead_nodes(model)
        return _refresh(model), False


#: the full lowering, in order
STEPS = (QuantActivationsToCodes, WeightQuantToCodes, LowerLinearLayers, LowerPointwise,
         LowerElementwise)


def check_lowered(model: ModelWrapper) -> None:
    """Raise :class:`HwsimError` naming the first compute node outside the dialect (nodes of
    the float ↔ code boundary aside)."""
    for node in model.graph.node:
        if node.domain != dialect.DOMAIN and node.op_type not in _BOUNDARY_OPS:
            raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: no hwsim "
                             "dialect op implements it yet")


# ------------------------------------------------------------------------------------------
# Driver
@dataclass
class StepReport:
    """One step's verification: ``equal`` (every graph output ``==`` the step before);
    for an approximate step ``max_lsb`` and ``bound_lsb`` per code tensor it produced."""

    name: str
    exact: bool
    equal: bool
    max_lsb: dict[str, int] = field(default_factory=dict)
    bound_lsb: dict[str, int] = field(default_factory=dict)


@dataclass
class LoweringReport:
    """Every step's :class:`StepReport`, in order."""

    steps: list[StepReport]

    @property
    def max_lsb(self) -> int:
        """The largest code deviation any step introduced."""
        return max((v for s in self.steps for v in s.max_lsb.values()), default=0)

    def step(self, name: str) -> StepReport:
        """The report of the step named ``name`` (its class name)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"steps": [vars(s) for s in self.steps], "max_lsb": self.max_lsb}


def _execute(model: ModelWrapper, inputs: list[dict]) -> list[dict]:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return [execute_onnx(model, x, return_full_exec_context=True) for x in inputs]


def _default_inputs(model: ModelWrapper, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{i.name: rng.standard_normal(model.get_tensor_shape(i.name)).astype(np.float32)
             for i in model.graph.input}]


def lower(model, steps=None, verify_inputs: list[dict] | None = None
          ) -> tuple[ModelWrapper, LoweringReport]:
    """Lower ``model`` (a path, ``onnx.ModelProto`` or ``ModelWrapper`` of a QONNX graph) by
    ``steps`` (transformation instances; default: one of each of :data:`STEPS`), executing
    the graph on ``verify_inputs`` (input dicts; default one seeded normal sample) after
    every step; after the full lowering (``steps=None``) no compute node may remain outside
    the dialect (:func:`check_lowered`). Returns the lowered ``ModelWrapper`` (domain
    :data:`dialect.DOMAIN` imported) and the :class:`LoweringReport`. Raises
    :class:`HwsimError` where a step cannot lower a node, breaks an exact step's ``==``, passes
    its proven bound, or leaves a dialect node that fails its ``verify_node``."""
    if not isinstance(model, ModelWrapper):
        model = ModelWrapper(model if isinstance(model, onnx.ModelProto) else str(model))
    model = ModelWrapper(onnx.ModelProto.FromString(model.model.SerializeToString()))
    if dialect.DOMAIN not in {o.domain for o in model.model.opset_import}:
        model.model.opset_import.append(helper.make_opsetid(dialect.DOMAIN, dialect.OPSET))
    model = _refresh(model)
    inputs = verify_inputs if verify_inputs is not None else _default_inputs(model)
    names = {i.name for i in model.graph.input}
    for x in inputs:  # qonnx runs a graph input it is not given on zeros, silently
        if set(x) != names:
            raise HwsimError(f"verify inputs name {sorted(x)}, the graph's inputs are "
                             f"{sorted(names)}")
    full = steps is None
    steps = [s() for s in STEPS] if full else list(steps)
    before = _execute(model, inputs)
    reports = []
    for step in steps:
        name = type(step).__name__
        model = model.transform(step)
        after = _execute(model, inputs)
        outputs = [o.name for o in model.graph.output]
        equal = all(np.array_equal(b[o], a[o]) for b, a in zip(before, after, strict=True) for o in outputs)
        report = StepReport(name, bool(step.exact), equal)
        if step.exact and not equal:
            raise HwsimError(f"lowering step {name} changed the graph outputs")
        if not step.exact:
            report.bound_lsb = dict(step.bounds)
            for tensor in step.bounds:
                diffs = [np.max(np.abs(a[tensor].astype(np.int64) - b[tensor].astype(np.int64)),
                                initial=0) for b, a in zip(before, after, strict=True)]
                report.max_lsb[tensor] = int(max(diffs))
                if report.max_lsb[tensor] > report.bound_lsb[tensor]:
                    raise HwsimError(f"lowering step {name}: {tensor} deviates by "
                                     f"{report.max_lsb[tensor]} LSB, above its bound "
                                     f"{report.bound_lsb[tensor]}")
        reports.append(report)
        before = after
    if full:
        check_lowered(model)
    for node in model.graph.node:
        problems = getCustomOp(node).verify_node() if node.domain == dialect.DOMAIN else []
        if problems:
            raise HwsimError(f"lowered node {node.name!r} is invalid: {problems[0]}")
    return model, LoweringReport(reports)

