"""Brevitas ``QuantMultiheadAttention``: the steps that bring its export into the shape the
linear and attention steps lower.

Brevitas splits the heads of each projection *before* its quantizer
(``proj → Reshape → Transpose → [Div by √d] → Quant``, k already transposed for ``q·kᵀ``) and
writes batch-1 sequence-first tensors (``Transpose`` ``(1, T, D) → (T, 1, D)``):

* :class:`SinkHeadMoves` (exact) moves that data movement past the scalar scaling and the
  quantizer: ``x → moves → [Mul|Div by c > 0] → QuantizeLinear → DequantizeLinear`` becomes
  ``x → [Mul|Div] → QuantizeLinear → DequantizeLinear → moves`` where the moves feed an
  attention product (the head split :class:`~hwsim.compile.lower.attention.LowerAttention`
  absorbs), and ``x → QuantizeLinear → Reshape → DequantizeLinear`` where they keep the
  row-major order and the last axis (a reshape of the vector stream);
* :class:`FoldProjectionScales` (approximate) folds a positive scalar ``Mul``/``Div`` between
  a linear layer (``MatMul``/``Gemm`` [+ bias]) and its quantizer into the quantizer's scale
  (``Div(c) → QuantizeLinear(s)`` = ``QuantizeLinear(s·c)``): the linear step then folds it
  into its requantizer;
* :class:`TableRequantizers` (exact) makes a quantizer of dequantized codes (a requantizer
  between two Brevitas quantizers) a table lookup.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import helper
from qonnx.transformation.base import Transformation

from ._graph import (
    _U32,
    _attention_nodes,
    _const,
    _refresh,
    _remove_dead_nodes,
    _replace,
    _single_consumer,
)
from .pointwise import _elem_type

__all__ = ["FoldProjectionScales", "SinkHeadMoves", "TableRequantizers"]

_MOVES = ("Reshape", "Transpose", "Identity")
_CODES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
_LINEAR = ("MatMul", "Gemm", "Add")


def _positive_scalar(model, node, tail: str) -> float | None:
    """The factor of ``node`` (``Mul`` by, or ``Div`` of ``tail`` by, a positive scalar
    constant) on ``tail``, else ``None``."""
    if node.op_type not in ("Mul", "Div") or len(node.input) != 2:
        return None
    other = [i for i in node.input if i != tail]
    c = model.get_initializer(other[0]) if len(other) == 1 else None
    if c is None or np.asarray(c).size != 1 or (node.op_type == "Div" and node.input[0] != tail):
        return None
    c = float(np.asarray(c).reshape(()))
    if not c > 0 or not math.isfinite(c):
        return None
    return 1.0 / c if node.op_type == "Div" else c


def _per_tensor_q(model, q) -> bool:
    return len(q.input) == 3 and all(
        model.get_initializer(i) is not None and np.asarray(model.get_initializer(i)).size == 1
        for i in q.input[1:])


def _index_moves(model, moves, shape):
    index = np.arange(math.prod(shape)).reshape(shape)
    for n in moves:
        if n.op_type == "Transpose":
            perm = {a.name: helper.get_attribute_value(a) for a in n.attribute}.get("perm")
            index = np.transpose(index, list(perm) if perm is not None else None)
        elif n.op_type == "Reshape":
            index = index.reshape(model.get_tensor_shape(n.output[0]))
    return index


class SinkHeadMoves(Transformation):
    """Exact: data movement between a linear layer's (or dequantized codes') result and its
    quantizer moves behind the quantizer (module docstring). Per-tensor quantizers only; every
    node of the chain has one reader; a chain that neither feeds attention products nor
    keeps the row-major order stays as it is."""

    exact = True

    def _match(self, model, first, attention):
        src = model.find_producer(first.input[0])
        if src is None or src.name in attention \
                or src.op_type not in (*_LINEAR, "DequantizeLinear"):
            return None
        moves, tail = [first], first.output[0]
        while (nxt := _single_consumer(model, tail, _MOVES)) is not None:
            moves.append(nxt)
            tail = nxt.output[0]
        scales = []
        while (nxt := _single_consumer(model, tail, ("Mul", "Div"))) is not None \
                and _positive_scalar(model, nxt, tail) is not None:
            scales.append(nxt)
            tail = nxt.output[0]
        q = _single_consumer(model, tail, ("QuantizeLinear",))
        if q is None or not _per_tensor_q(model, q):
            return None
        codes = q.output[0]
        clip = _single_consumer(model, codes, ("Clip",))
        if clip is not None:
            codes = clip.output[0]
        dq = _single_consumer(model, codes, ("DequantizeLinear",))
        if dq is None or len(dq.input) != 3:
            return None
        readers = model.find_consumers(dq.output[0]) or []
        into_attention = bool(readers) and all(r.name in attention and r.op_type == "MatMul"
                                               for r in readers)
        shape = model.get_tensor_shape(first.input[0])
        out_shape = model.get_tensor_shape(moves[-1].output[0])
        if shape is None or out_shape is None:
            return None
        index = _index_moves(model, moves, shape)
        plain = shape[-1:] == out_shape[-1:] and np.array_equal(index.reshape(-1),
                                                                np.arange(index.size))
        if not (into_attention or plain):
            return None
        return moves, scales, q, clip, dq, into_attention

    @staticmethod
    def _plain_transpose(model, node) -> bool:
        """``node`` is a ``Transpose`` that moves only unit axes and keeps the last one."""
        shape = model.get_tensor_shape(node.input[0])
        out = model.get_tensor_shape(node.output[0])
        if node.op_type != "Transpose" or not shape or not out or shape[-1] != out[-1]:
            return False
        index = _index_moves(model, [node], shape)
        return np.array_equal(index.reshape(-1), np.arange(index.size))

    def apply(self, model):
        attention = _attention_nodes(model)
        changed = False
        for node in list(model.graph.node):
            if self._plain_transpose(model, node):  # a reshape written as a transpose
                to = _const(model, f"{node.name}_shape",
                            np.asarray(model.get_tensor_shape(node.output[0]), dtype=np.int64))
                _replace(model, [node], [helper.make_node(
                    "Reshape", [node.input[0], to], list(node.output), name=node.name)])
                changed = True
        for node in list(model.graph.node):
            if node not in model.graph.node or node.op_type not in _MOVES:
                continue
            match = self._match(model, node, attention)
            if match is None:
                continue
            moves, scales, q, clip, dq, into_attention = match
            last = (clip or q)
            src = moves[0].input[0]
            end = moves[-1].output[0]
            # the scalar ops and the quantizer now read the unmoved tensor
            head = scales[0] if scales else q
            head.input[list(head.input).index(end)] = src
            if into_attention:  # codes → DequantizeLinear → moves → the products
                out = dq.output[0]
                dq.output[0] = f"{out}_unmoved"
                moves[0].input[0] = dq.output[0]
                moves[-1].output[0] = out
                for n in moves:
                    model.graph.node.remove(n)
                at = list(model.graph.node).index(dq) + 1
                for i, n in enumerate(moves):
                    model.graph.node.insert(at + i, n)
            else:  # codes → Reshape → DequantizeLinear
                codes = last.output[0]
                last.output[0] = f"{codes}_unmoved"
                to = _const(model, f"{codes}_shape",
                            np.asarray(model.get_tensor_shape(end), dtype=np.int64))
                reshape = helper.make_node("Reshape", [last.output[0], to], [codes],
                                           name=f"{moves[0].name}_codes")
                for n in moves:
                    model.graph.node.remove(n)
                model.graph.node.insert(list(model.graph.node).index(last) + 1, reshape)
            changed = True
        if changed:
            _remove_dead_nodes(model)
            model = _refresh(model)
        return model, False


class FoldProjectionScales(Transformation):
    """Approximate: ``MatMul/Gemm [→ Add] → (Mul | Div by c > 0)… → QuantizeLinear(s, z)``
    becomes ``MatMul/Gemm [→ Add] → QuantizeLinear(s / Πc, z)`` (Brevitas' ``q / √d`` before
    ``q_scaled_quant``).

    Bound: 1 LSB. The two compute ``y·Πc/s`` with ``k`` scalar operations in float32 against
    one: the values differ by a relative ``≤ (2k + 2)·2**-24``; a code can only change where
    the value lies within that of a rounding boundary, and outside the code range (|value| ≥
    129) both saturate alike, so ``ε ≤ (2k + 2)·2**-24·129 < 1`` and ``floor(ε) + 1 = 1``.
    """

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def apply(self, model):
        self.bounds = {}
        attention = _attention_nodes(model)
        changed = False
        for node in list(model.graph.node):
            if node.op_type not in _LINEAR or node.name in attention \
                    or node not in model.graph.node:
                continue
            if node.op_type == "Add":
                prod = [model.find_producer(i) for i in node.input]
                if not any(p is not None and p.op_type in ("MatMul", "Gemm")
                           and p.name not in attention for p in prod):
                    continue
            elif _single_consumer(model, node.output[0], ("Add",)) is not None:
                continue  # the Add after it is the layer's end
            tail, scales, factor = node.output[0], [], 1.0
            while (nxt := _single_consumer(model, tail, ("Mul", "Div"))) is not None:
                c = _positive_scalar(model, nxt, tail)
                if c is None:
                    break
                scales.append(nxt)
                factor *= c
                tail = nxt.output[0]
            q = _single_consumer(model, tail, ("QuantizeLinear",))
            if not scales or q is None or not _per_tensor_q(model, q):
                continue
            s = np.asarray(model.get_initializer(q.input[1]))
            new_s = _const(model, f"{q.name}/folded_scale",
                           np.asarray(float(s.reshape(())) / factor, dtype=s.dtype))
            new_q = helper.make_node("QuantizeLinear", [node.output[0], new_s, q.input[2]],
                                     list(q.output), name=q.name)
            new_q.attribute.extend(q.attribute)
            _replace(model, [*scales, q], [new_q])
            eps = (2 * len(scales) + 2) * _U32 * 129
            self.bounds[q.output[0]] = math.floor(eps) + 1
            changed = True
        if changed:
            _remove_dead_nodes(model)
            model = _refresh(model)
        return model, False


class TableRequantizers(Transformation):
    """Exact: a quantizer of dequantized 8-bit codes (``DequantizeLinear(s₁, z₁) →
    QuantizeLinear(s₂, z₂)``, Brevitas' ``q_proj.input_quant`` after the input's quantizer,
    ``k_transposed_quant`` after ``in_proj_output_quant``) gets an ``Identity`` between the
    two, which :class:`~hwsim.compile.lower.pointwise.LowerPointwise` then turns into a
    ``LutAct`` table of the very nodes; quantizers of one tensor with the same scale, zero point
    and type first become one (q, k and v projections reading one input)."""

    exact = True

    def apply(self, model):
        changed = False
        seen = {}
        outputs = {o.name for o in model.graph.output}
        for q in list(model.graph.node):
            if q.op_type != "QuantizeLinear" or not _per_tensor_q(model, q) \
                    or q.output[0] in outputs:
                continue
            key = (q.input[0], *(np.asarray(model.get_initializer(i)).tobytes()
                                 + str(np.asarray(model.get_initializer(i)).dtype).encode()
                                 for i in q.input[1:]))
            if key not in seen:
                seen[key] = q
                continue
            for r in model.find_consumers(q.output[0]) or []:
                r.input[list(r.input).index(q.output[0])] = seen[key].output[0]
            model.graph.node.remove(q)
            changed = True
        for q in list(model.graph.node):
            if q.op_type != "QuantizeLinear" or not _per_tensor_q(model, q):
                continue
            dq = model.find_producer(q.input[0])
            if dq is None or dq.op_type != "DequantizeLinear" or not _per_tensor_q(model, dq) \
                    or _elem_type(model, dq.input[0]) not in _CODES \
                    or _elem_type(model, q.input[2]) not in _CODES:
                continue  # a table holds 8-bit codes only
            mid = f"{q.input[0]}/{q.name}/requantize"
            ident = helper.make_node("Identity", [q.input[0]], [mid], name=f"{q.name}/requantize")
            q.input[0] = mid
            model.graph.node.insert(list(model.graph.node).index(q), ident)
            changed = True
        if changed:
            _remove_dead_nodes(model)
            model = _refresh(model)
        return model, False
