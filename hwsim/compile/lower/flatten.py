"""Classifier tails: conv features flattened into a linear layer, and a float graph output.

* :class:`DropRequantize` (exact): ``DequantizeLinear(c, s, z) → QuantizeLinear(·, s, z)`` of
  the same per-tensor scale, zero point and code type (a ``QuantIdentity`` after a
  ``QuantReLU`` that shares its quantizer) is the identity on the codes: its readers read
  ``c``.
* :class:`HoistFlatten` (exact): ``DequantizeLinear(c) → Flatten(axis=1) | Reshape(N, -1)``
  (per-tensor scale and zero point, ``c`` of rank ≥ 3) becomes ``StreamFlatten(c) →
  DequantizeLinear``: the flatten moves onto the codes (data movement commutes with a
  per-tensor affine map), so the linear layer reads dequantized codes.
* :class:`OrderFlatten` (exact): in a graph with convolutions the back end streams a 4-D code
  tensor as NHWC pixels while ONNX flattens NCHW; a ``StreamFlatten`` read only by
  ``IntMatMul`` s takes ``perm = (0, 2, 3, 1)`` and the rows of each reader's weight codes
  are permuted to match (integer products: exact). The matrix–vector unit then consumes the
  pixel stream in the order it arrives, with no reorder buffer (FINN's way).
* :class:`LowerFloatHead` (approximate): a ``MatMul/Gemm [+ bias]`` on dequantized codes whose
  result is a graph output with no quantizer after it (a classifier head) becomes
  ``IntMatMul(+ bias in accumulator units) → Requant(32-bit, M = 1, S = 0) →
  DequantizeLinear(s_a · s_w)``: the hardware computes the int32 accumulators, the host
  multiplies by ``s_a · s_w``. The output's LSB is ``s_a · s_w``; the result differs from the
  float layer by at most the bias rounding (``|b/(s_a s_w) − round(b/(s_a s_w))| ≤ 0.5`` LSB)
  plus float32 rounding of both (first order ``(k + 6) · 2**-24 · peak`` LSB, ``peak`` the
  largest ``|acc|``, ``k`` the inputs per output). The accumulators must fit int32.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError

from ._graph import _const, _refresh, _remove_dead_nodes, _replace, _scalar
from .windows import _per_tensor

__all__ = ["DropRequantize", "HoistFlatten", "LowerFloatHead", "OrderFlatten"]

#: the stream order of an NCHW code tensor in a graph with convolutions
_NHWC = (0, 2, 3, 1)


def _flattens(model, node) -> bool:
    """Whether ``node`` is a ``Flatten(axis=1)`` or a ``Reshape`` to ``(N, rest)`` of a tensor
    of rank ≥ 3."""
    a = model.get_tensor_shape(node.input[0]) or []
    b = model.get_tensor_shape(node.output[0]) or []
    if len(a) < 3 or len(b) != 2 or b[0] != a[0] or int(np.prod(a)) != int(np.prod(b)):
        return False
    if node.op_type == "Flatten":
        return next((x.i for x in node.attribute if x.name == "axis"), 1) == 1
    return node.op_type == "Reshape"


class DropRequantize(Transformation):
    """Exact: a ``QuantizeLinear`` of a ``DequantizeLinear`` with the same per-tensor scale,
    zero point and code type (no ``Clip`` after it) is removed; its readers read the codes."""

    exact = True

    def apply(self, model):
        outputs = {o.name for o in model.graph.output}
        changed = False
        for q in list(model.graph.node):
            if q.op_type != "QuantizeLinear" or q.output[0] in outputs:
                continue
            dq = model.find_producer(q.input[0])
            if dq is None or dq.op_type != "DequantizeLinear" or len(q.input) != 3 \
                    or not _per_tensor(model, dq) or not _per_tensor(model, q):
                continue
            vals = [np.asarray(model.get_initializer(t)) for t in (*dq.input[1:], *q.input[1:])]
            if len(vals) != 4 or vals[0] != vals[2] or vals[1] != vals[3] \
                    or vals[1].dtype != vals[3].dtype or vals[0].dtype != vals[2].dtype:
                continue
            readers = model.find_consumers(q.output[0]) or []
            if any(r.op_type == "Clip" for r in readers):
                continue
            for r in readers:
                for i, name in enumerate(r.input):
                    if name == q.output[0]:
                        r.input[i] = dq.input[0]
            model.graph.node.remove(q)
            changed = True
        if changed:
            _remove_dead_nodes(model)
            model = _refresh(model)
        return model, False


class HoistFlatten(Transformation):
    """Exact: ``DequantizeLinear(c) → Flatten | Reshape`` to ``(N, rest)`` becomes
    ``StreamFlatten(c, identity) → DequantizeLinear`` (per-tensor scale and zero point)."""

    exact = True

    def apply(self, model):
        changed = False
        for node in list(model.graph.node):
            if node.op_type not in ("Flatten", "Reshape") or not _flattens(model, node):
                continue
            dq = model.find_producer(node.input[0])
            if dq is None or dq.op_type != "DequantizeLinear" or not _per_tensor(model, dq):
                continue
            rank = len(model.get_tensor_shape(node.input[0]))
            codes = f"{node.output[0]}_codes"
            flat = helper.make_node("StreamFlatten", [dq.input[0]], [codes],
                                    domain=dialect.DOMAIN, name=f"{node.name}_codes",
                                    perm=list(range(rank)))
            new_dq = helper.make_node("DequantizeLinear", [codes, *dq.input[1:]],
                                      [node.output[0]], name=f"{dq.name}_{node.name}")
            _replace(model, [node], [flat, new_dq])
            changed = True
        if changed:
            _remove_dead_nodes(model)
            model = _refresh(model)
        return model, False


class OrderFlatten(Transformation):
    """Exact: in a graph with ``IntConv`` nodes, a ``StreamFlatten`` of a 4-D tensor read only
    by ``IntMatMul`` s (weights their own initializers) flattens in NHWC order and the readers'
    weight rows follow (see the module docstring)."""

    exact = True

    def apply(self, model):
        if not any(n.op_type == "IntConv" and n.domain == dialect.DOMAIN
                   for n in model.graph.node):
            return model, False
        for node in model.graph.node:
            if node.op_type != "StreamFlatten" or node.domain != dialect.DOMAIN:
                continue
            shape = model.get_tensor_shape(node.input[0])
            perm = next(list(a.ints) for a in node.attribute if a.name == "perm")
            if len(shape) != 4 or tuple(perm) == _NHWC:
                continue
            readers = model.find_consumers(node.output[0]) or []
            uses = {}
            for n in model.graph.node:
                for i in n.input:
                    uses[i] = uses.get(i, 0) + 1
            if not readers or any(r.op_type != "IntMatMul" or r.input[0] != node.output[0]
                                  or model.get_initializer(r.input[1]) is None
                                  or uses[r.input[1]] != 1 for r in readers):
                continue  # the back end refuses the flatten, naming it
            _, c, h, w = shape
            # stream position p (pixel-major, channels within) holds NCHW flatten index idx[p]
            idx = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()
            for r in readers:
                wts = model.get_initializer(r.input[1])
                model.set_initializer(r.input[1], np.ascontiguousarray(wts[idx]))
            for a in node.attribute:
                if a.name == "perm":
                    del a.ints[:]
                    a.ints.extend(_NHWC)
        return model, False


class LowerFloatHead(Transformation):
    """Approximate: a linear layer whose float result is a graph output becomes ``IntMatMul →
    Requant(int32, M = 1, S = 0) → DequantizeLinear(s_a · s_w)`` (see the module docstring
    for the bound). :attr:`bounds` is empty: the step's codes do not exist before it; the
    compile report measures the output against onnxruntime in LSBs of ``s_a · s_w``."""

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def apply(self, model):
        from .linear import _attention_nodes, match_operands, weight_scale
        outputs = {o.name for o in model.graph.output}
        attention = _attention_nodes(model)
        for node in [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm")
                     and n.name not in attention]:
            tail, nodes, bias = node.output[0], [node], None
            users = model.find_consumers(tail) or []
            if len(users) == 1 and users[0].op_type == "Add" and users[0].output[0] in outputs:
                other = [i for i in users[0].input if i != tail]
                bias = model.get_initializer(other[0]) if len(other) == 1 else None
                if bias is None:
                    continue
                nodes.append(users[0])
                tail = users[0].output[0]
            elif users or tail not in outputs:
                continue
            if any(getattr(model.find_producer(i), "op_type", None) != "DequantizeLinear"
                   for i in node.input[:2]):
                continue  # not a quantized layer: the linear step names what is missing
            self._lower(model, node, nodes, tail, bias, match_operands, weight_scale)
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _lower(self, model, node, nodes, out, bias, match_operands, weight_scale):
        def fail(why):
            raise HwsimError(f"cannot lower {node.op_type} node {node.name!r} (a float graph "
                             f"output): {why}")

        a_dq, w_dq, w = match_operands(model, node, fail)
        w, w_out_axis = np.asarray(w), 1
        if node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 \
                    or attrs.get("transA", 0):
                fail("only alpha = beta = 1 and transA = 0 are lowered")
            if attrs.get("transB", 0):
                w, w_out_axis = w.T, 0
            if len(node.input) == 3:
                if bias is not None:
                    fail("two biases")
                bias = model.get_initializer(node.input[2])
                if bias is None:
                    fail("its bias is not a constant")
        if w.ndim != 2:
            fail(f"weight shape {w.shape} is not a matrix")
        w_codes = w.astype(np.int8)
        s_w = weight_scale(model, node, w_dq, w_codes, w_out_axis)
        s_a = _scalar(model, a_dq.input[1], node, "input scale")
        a_zero = model.get_initializer(a_dq.input[2])
        a_signed = a_zero.dtype == np.int8
        a_zero = int(a_zero)
        s = s_a * np.asarray(s_w, np.float64)
        nodes_int, codes, bias_int = int32_accumulators(model, node, a_dq, w_codes, s, bias,
                                                        a_zero, a_signed)
        a_peak = 128 if a_signed else 255
        peak = a_peak * np.abs(w_codes.astype(np.int64)).sum(axis=0) \
            + (0 if bias_int is None else np.abs(bias_int))
        if np.max(peak) >= 2 ** 31:
            fail("its accumulators may not fit int32")
        scale = _const(model, f"{node.name}/out_scale", np.asarray(s, np.float32))
        zero = _const(model, f"{node.name}/out_zero", np.zeros(np.shape(s), np.int32))
        extra = {"axis": -1} if np.ndim(s) else {}
        dq = helper.make_node("DequantizeLinear", [codes, scale, zero], [out],
                              name=f"{node.name}/dequantize", **extra)
        _replace(model, nodes, [*nodes_int, dq])


def wide_requant(node, acc: str, codes: str):
    """``Requant`` to int32 codes with ``M = 1, S = 0``: the accumulators themselves."""
    return helper.make_node("Requant", [acc], [codes], domain=dialect.DOMAIN,
                            name=f"{node.name}/requant", kernel=dialect.Requant.KERNEL,
                            width=32, signed=1, multiplier=1, shift=0, real_scale=1.0,
                            rounding="half_even")


def int32_accumulators(model, node, a_dq, w_codes, s, bias, a_zero: int, a_signed: bool):
    """``IntMatMul`` of ``a_dq``'s codes by ``w_codes`` with ``bias`` in accumulator units
    (``round(b / s) − z_a·ΣW``, ``s = s_a·s_w``) → :func:`wide_requant`. Returns ``([matmul,
    requant], int32 code tensor, bias_int or None)``."""
    bias_int = None
    if bias is not None or a_zero:
        b = 0.0 if bias is None else np.asarray(bias, np.float64)
        bias_int = np.round(b / s).astype(np.int64) \
            - int(a_zero) * w_codes.astype(np.int64).sum(axis=0)
        bias_int = np.broadcast_to(bias_int, (w_codes.shape[1],)).astype(np.int64)
    inputs = [a_dq.input[0], _const(model, f"{node.name}/w_codes", w_codes)]
    if bias_int is not None:
        inputs.append(_const(model, f"{node.name}/bias_acc", bias_int.astype(np.int32)))
    acc, codes = f"{node.name}/acc", f"{node.name}/acc_codes"
    matmul = helper.make_node("IntMatMul", inputs, [acc], domain=dialect.DOMAIN,
                              name=f"{node.name}/int", kernel=dialect.IntMatMul.KERNEL,
                              a_width=8, a_signed=int(a_signed),
                              w_narrow=int(w_codes.min(initial=0) > -128))
    return [matmul, wide_requant(node, acc, codes)], codes, bias_int

