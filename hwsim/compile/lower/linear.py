"""The approximate step that lowers linear layers to ``IntMatMul``/``TernaryMatMul`` → ``Requant``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from hwsim.golden.common.int8_matmul import fold_scale

from ._graph import (
    _U32,
    MULT_BITS,
    _attention_nodes,
    _const,
    _refresh,
    _remove_dead_nodes,
    _replace,
    _scalar,
    _single_consumer,
)


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
    w_out_axis: int = 1  # the axis of the weight codes tensor that indexes outputs


class LowerLinearLayers(Transformation):
    """Approximate: ``MatMul/Gemm`` on dequantized codes [+ bias] [→ Relu] → ``QuantizeLinear``
    becomes ``IntMatMul → Requant``.

    ``M · 2**-S`` = ``fold_scale(s_a, s_w, 1 / s_y, bits=mult_bits)``; the float bias becomes
    ``round(b / (s_a · s_w))`` in accumulator units. A per-channel weight scale (one ``s_w[j]``
    per output column ``j``, a ``DequantizeLinear`` with ``axis``) gives one ``M[j] · 2**-S[j]``
    per column (``Requant``'s ``multipliers``/``shifts``), the bias ``round(b_j / (s_a ·
    s_w[j]))``, and the bound below is taken per column (its maximum is reported). After
    :meth:`apply`, :attr:`bounds` maps
    each ``Requant`` output to the largest ``|Δcode|`` from the float layer it proves:
    ``floor(ε) + 1`` (two reals ``ε`` apart round to codes at most that far apart; saturation
    and ReLU cannot widen it), with ``ε`` in output LSBs the sum of

    * ``r · δ_in · max_j Σ_i |W_ij|`` — the input codes' own bound ``δ_in`` (0 at the input),
    * ``0.5 · r`` — the bias rounded to accumulator units (``r = s_a s_w / s_y``),
    * ``|r − M 2**-S| · peak`` — the folded multiplier, ``peak`` the largest ``|acc|``,
    * ``(k + 5) · 2**-24 · (r · peak + |b| / s_y)`` — float32 rounding of the original layer
      (first order: dequantizing ``a`` and ``w``, the product, ``k − 1`` additions, the bias
      and the division by ``s_y``, one unit roundoff each).

    A layer whose input codes are not a ``Requant`` output of this step but read one through
    other nodes (a LayerNorm, an attention, a residual add not lowered yet) has no proven
    ``δ_in``: its output gets no bound (as in :class:`LowerElementwise`); the compile's
    deviation from onnxruntime still covers it end to end.
    """

    exact = False

    def __init__(self, mult_bits: int = MULT_BITS):
        super().__init__()
        self.mult_bits = mult_bits
        self.bounds: dict[str, int] = {}

    def _match(self, model, node) -> _Layer:
        def fail(why):
            raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: {why}")

        a_dq, w_dq, w = match_operands(model, node, fail)
        bias, nodes, w_out_axis = None, [node], 1
        if node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 \
                    or attrs.get("transA", 0):
                fail("only alpha = beta = 1 and transA = 0 are lowered")
            if attrs.get("transB", 0):
                w, w_out_axis = w.T, 0
            if len(node.input) == 3:
                bias = model.get_initializer(node.input[2])
                if bias is None:
                    fail("its bias is not a constant")
        extra, bias, relu, out_codes, out_q, narrow = match_tail(model, node, bias, fail)
        nodes += extra
        if w.ndim != 2 or (bias is not None
                           and np.asarray(bias).shape not in ((w.shape[1],), ())):
            fail(f"weight shape {w.shape} and bias do not form a linear layer")
        return _Layer(nodes, a_dq.input[0], a_dq, np.asarray(w), w_dq, bias, relu,
                      out_codes, out_q, narrow, w_out_axis)

    def apply(self, model):
        self.bounds, self._changed = {}, set()
        attention = _attention_nodes(model)  # activation × activation products: not layers
        for node in [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")
                     and n.name not in attention]:
            layer = self._match(model, node)
            self._lower(model, node, layer)
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _lower(self, model, node, layer: _Layer) -> None:
        w_codes = layer.w_codes.astype(np.int8)
        s_w = weight_scale(model, node, layer.w_dq, w_codes, layer.w_out_axis)
        f = fold_layer(model, node, layer.a_dq, s_w, layer.out_q, w_codes, layer.bias,
                       self.mult_bits)
        inputs = [layer.a_codes, _const(model, f"{node.name}/w_codes", w_codes)]
        if f.bias_int is not None:
            inputs.append(_const(model, f"{node.name}/bias_acc", f.bias_int))
        acc = f"{node.name}/acc"
        narrow_w = int(w_codes.min(initial=0) > -128)
        ternary = (model.get_tensor_datatype(layer.w_dq.input[0]) == DataType["INT2"]
                   and f.a_signed and f.bias_int is None and w_codes.min(initial=0) >= -1)
        if ternary:
            matmul = helper.make_node("TernaryMatMul", inputs, [acc], domain=dialect.DOMAIN,
                                      name=f"{node.name}/ternary", kernel=dialect.TernaryMatMul.KERNEL,
                                      a_width=8, a_signed=1)
        else:
            matmul = helper.make_node("IntMatMul", inputs, [acc], domain=dialect.DOMAIN,
                                      name=f"{node.name}/int", kernel=dialect.IntMatMul.KERNEL, a_width=8,
                                      a_signed=int(f.a_signed), w_narrow=narrow_w)
        requant = make_requant(node, acc, layer.out_codes, f, layer.relu, layer.narrow)
        _replace(model, layer.nodes, [matmul, requant])
        a = layer.a_codes
        delta_in = self.bounds[a] if a in self.bounds else (
            None if _reads(model, a, self._changed) else 0)
        self._changed.add(layer.out_codes)
        if delta_in is not None:
            self.bounds[layer.out_codes] = layer_bound(delta_in, f, w_codes, layer.bias)


def _reads(model, tensor: str, changed: set[str]) -> bool:
    """Whether ``tensor`` is one of ``changed`` or computed from one of them."""
    producer = {o: n for n in model.graph.node for o in n.output}
    seen, todo = set(), [tensor]
    while todo:
        t = todo.pop()
        if t in changed:
            return True
        if t not in seen:
            seen.add(t)
            todo.extend(producer[t].input if t in producer else ())
    return False


def _bound(delta_in: int, real, folded, w: np.ndarray, bias: np.ndarray | None,
           bias_out, a_peak: int) -> int:
    """``floor(ε) + 1`` for the terms listed in the class docstring (``bias_out``: the
    largest ``|b| / s_y``, ``a_peak``: the largest ``|a|`` code). Per channel (``real``,
    ``folded`` and ``bias_out`` one per column) ``ε`` is taken per column with the
    column's own sum and peak, and the largest is returned."""
    colsums = np.sum(np.abs(w.astype(np.int64)), axis=0).astype(np.float64)
    if np.ndim(real):
        colsum = colsums
        peak = a_peak * colsum + (0 if bias is None else np.abs(bias.astype(np.float64)))
    else:
        colsum = float(np.max(colsums))
        peak = a_peak * colsum + (0 if bias is None else float(np.max(np.abs(bias))))
    # (bias holds the input zero point's term too: peak and the 0.5 · r below only grow)
    eps = real * delta_in * colsum
    eps = eps + (0.0 if bias is None else 0.5 * real)
    eps = eps + np.abs(real - folded) * peak
    eps = eps + (w.shape[0] + 5) * _U32 * (real * peak + bias_out)
    return math.floor(float(np.max(eps))) + 1


def weight_scale(model, node, w_dq, w_codes: np.ndarray, w_out_axis: int = 1):
    """``s_w``: a float (per tensor) or one float per output column (per channel) of the
    ``(in, out)`` matrix ``w_codes``; the weight ``DequantizeLinear`` ``w_dq`` holds it."""
    s_w = model.get_initializer(w_dq.input[1])
    if s_w is None or np.asarray(s_w).size == 1:
        return _scalar(model, w_dq.input[1], node, "weight scale")
    s_w = np.asarray(s_w)
    attrs = {a.name: helper.get_attribute_value(a) for a in w_dq.attribute}
    axis = attrs.get("axis", 1)
    axis = axis + 2 if axis < 0 else axis
    if s_w.ndim != 1 or axis != w_out_axis or s_w.size != w_codes.shape[1]:
        raise HwsimError(f"node {node.name!r}: weight scale of shape {s_w.shape} on axis "
                         f"{axis}; only per-tensor and per-output-channel weight scales "
                         "are lowered")
    return s_w.astype(np.float64)


# ------------------------------------------------------------------------------------------
# Shared with the convolution step (hwsim.compile.lower.conv)
def match_operands(model, node, fail):
    """The activation and weight ``DequantizeLinear`` of a linear or convolution ``node`` and
    the weight codes: ``(a_dq, w_dq, w)``; ``fail(why)`` raises."""
    a_dq = model.find_producer(node.input[0])
    w_dq = model.find_producer(node.input[1])
    if a_dq is None or a_dq.op_type != "DequantizeLinear":
        fail("its activation input is not quantized")
    if w_dq is None or w_dq.op_type != "DequantizeLinear" \
            or model.get_initializer(w_dq.input[0]) is None:
        fail("its weight is not a quantized constant")
    return a_dq, w_dq, model.get_initializer(w_dq.input[0])


def match_tail(model, node, bias, fail):
    """The ``[+ bias] [→ Relu] → QuantizeLinear [→ Clip]`` after a linear or convolution
    ``node``: ``(nodes, bias, relu, out_codes, out_q, narrow)``; ``bias`` is the node's own
    (``None``: a following ``Add`` of a constant may give it); ``fail(why)`` raises."""
    nodes = []
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
    return nodes, bias, relu is not None, out_codes, out_q, clip is not None


@dataclass
class Fold:
    """A layer's integer rescale: formats, zero points, ``M · 2**-S`` and the bias in
    accumulator units (``None``: no bias and a zero input zero point)."""

    s_a: float
    s_w: float | np.ndarray    # one per output column for per-channel weights
    s_y: float
    a_zero: int
    y_zero: int
    a_signed: bool
    y_signed: bool
    mult: int | np.ndarray
    shift: int | np.ndarray
    real: float | np.ndarray
    bias_int: np.ndarray | None
    bias_out: float | np.ndarray


def fold_layer(model, node, a_dq, w_scale, out_q, w_codes: np.ndarray, bias,
               mult_bits: int) -> Fold:
    """Fold a layer's scales: ``w_codes`` is the ``(in, out)`` matrix the input codes multiply
    (an im2col matrix for a convolution); the input zero point joins the bias. ``w_scale``:
    the name of a per-tensor scale, or its value (a float, or one per output column)."""
    s_a = _scalar(model, a_dq.input[1], node, "input scale")
    s_w = _scalar(model, w_scale, node, "weight scale") if isinstance(w_scale, str) \
        else w_scale
    s_y = _scalar(model, out_q.input[1], node, "output scale")
    a_zero = model.get_initializer(a_dq.input[2])
    y_zero = model.get_initializer(out_q.input[2])
    a_signed, y_signed = a_zero.dtype == np.int8, y_zero.dtype == np.int8
    a_zero, y_zero = int(a_zero), int(y_zero)
    if np.ndim(s_w):
        folds = [fold_scale(s_a, float(s), 1.0 / s_y, bits=mult_bits) for s in s_w]
        mult = np.array([m for m, _ in folds], np.int64)
        shift = np.array([sh for _, sh in folds], np.int64)
    else:
        mult, shift = fold_scale(s_a, s_w, 1.0 / s_y, bits=mult_bits)
    bias_int = None
    if bias is not None or a_zero:
        # Σ (a − z_a) · w = a · W − z_a · Σ_i w_i: the input zero point joins the bias
        b = 0.0 if bias is None else np.asarray(bias, np.float64)
        bias_int = np.round(b / (s_a * s_w)).astype(np.int64) \
            - a_zero * w_codes.astype(np.int64).sum(axis=0)
        bias_int = np.broadcast_to(bias_int, (w_codes.shape[1],)).astype(np.int32)
    if bias is None:
        bias_out = 0.0
    elif np.ndim(s_w):  # per column: |b_j| / s_y
        bias_out = np.broadcast_to(np.abs(np.asarray(bias, np.float64)),
                                   (w_codes.shape[1],)) / s_y
    else:
        bias_out = float(np.max(np.abs(bias))) / s_y
    return Fold(s_a, s_w, s_y, a_zero, y_zero, bool(a_signed), bool(y_signed), mult, shift,
                s_a * s_w / s_y, bias_int, bias_out)


def make_requant(node, acc: str, out_codes: str, f: Fold, relu: bool, narrow: bool):
    """The ``Requant`` node of a folded layer."""
    if np.ndim(f.mult):  # per channel: one (M, S) per output column
        scales = {"multipliers": [int(m) for m in f.mult], "shifts": [int(s) for s in f.shift],
                  "real_scales": [float(r) for r in f.real]}
    else:
        scales = {"multiplier": f.mult, "shift": f.shift, "real_scale": f.real}
    return helper.make_node("Requant", [acc], [out_codes], domain=dialect.DOMAIN,
                            name=f"{node.name}/requant", kernel=dialect.Requant.KERNEL,
                            width=8, signed=int(f.y_signed), narrow=int(narrow),
                            relu=int(relu), zero_point=f.y_zero, rounding="half_even",
                            **scales)


def layer_bound(delta_in: int, f: Fold, w_codes: np.ndarray, bias) -> int:
    """The proven LSB bound of a folded layer (:class:`LowerLinearLayers`)."""
    return _bound(delta_in, f.real, f.mult * 2.0 ** -f.shift, w_codes, f.bias_int, f.bias_out,
                  128 if f.a_signed and not f.a_zero else 255)
