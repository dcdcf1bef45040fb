"""Window attention: the steps that lower attention over non-overlapping windows of a token
sequence (Swin-style window attention on tokens stored window by window) to
``IntWindowAttention`` (kernel ``attention-head``, one sequence per window).

* :class:`HoistCodeReshapes` (exact) moves a ``Reshape`` that keeps the last axis from after a
  per-tensor ``DequantizeLinear`` to before it, onto the codes: the linear layers then read
  dequantized codes directly.
* :class:`LowerWindowAttention` (approximate) lowers softmax attention whose q, k, v codes are
  ``(windows, w, D)`` (more than one window) to one ``IntWindowAttention`` with ``window = w``.
* :class:`DropCodeReshapes` (exact) removes the reshapes left on code tensors: a reshape that
  keeps the last axis does not change the row-major stream of vectors the back end carries.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError

from ._graph import _const, _refresh, _remove_dead_nodes, _replace, _single_consumer
from .attention import LowerAttention, _Attention

__all__ = ["DropCodeReshapes", "HoistCodeReshapes", "LowerWindowAttention"]


def _keeps_last_axis(model, node) -> bool:
    a = model.get_tensor_shape(node.input[0])
    b = model.get_tensor_shape(node.output[0])
    return bool(a) and bool(b) and a[-1] == b[-1] and math.prod(a) == math.prod(b)


def _per_tensor(model, dq) -> bool:
    return all(model.get_initializer(i) is not None and np.asarray(
        model.get_initializer(i)).size == 1 for i in dq.input[1:])


class HoistCodeReshapes(Transformation):
    """Exact: ``DequantizeLinear(c) → Reshape`` (per-tensor scale and zero point, the last axis
    kept) becomes ``Reshape(c) → DequantizeLinear``."""

    exact = True

    def apply(self, model):
        changed = False
        for node in list(model.graph.node):
            if node.op_type != "Reshape" or not _keeps_last_axis(model, node):
                continue
            dq = model.find_producer(node.input[0])
            if dq is None or dq.op_type != "DequantizeLinear" or not _per_tensor(model, dq):
                continue
            codes = f"{node.output[0]}_codes"
            move = helper.make_node("Reshape", [dq.input[0], node.input[1]], [codes],
                                    name=f"{node.name}_codes")
            new_dq = helper.make_node("DequantizeLinear", [codes, *dq.input[1:]],
                                      [node.output[0]], name=f"{dq.name}_{node.name}")
            _replace(model, [node], [move, new_dq])
            changed = True
        if changed:
            _remove_dead_nodes(model)
            model = _refresh(model)
        return model, False


class LowerWindowAttention(LowerAttention):
    """Approximate: single-head softmax attention on ``(windows, w, D)`` int8 q, k, v codes
    (``windows > 1``) becomes one ``IntWindowAttention`` (``window = w``) that runs the
    ``attention-head`` kernel on each window.

    Pattern: ``MatMul(q, Transpose(k))`` → ``Mul | Div`` by a scalar → ``Softmax`` (last axis)
    → ``QuantizeLinear → DequantizeLinear`` → ``MatMul(·, v)`` → [``Reshape``: merge the
    windows, the last axis kept] → int8 ``QuantizeLinear``. Folding and bound are
    :class:`LowerAttention`'s with ``T = L = w`` (each window is one sequence); attention
    the plain step matches (one sequence) is left to it.
    """

    def _match(self, model, mm1) -> _Attention | None:
        def fail(why):
            raise HwsimError(f"cannot lower window attention at {mm1.name!r}: {why}")

        prod = model.find_producer(mm1.input[0])
        if prod is None or prod.op_type != "DequantizeLinear":
            return None
        shape = model.get_tensor_shape(prod.input[0])
        if len(shape) != 3 or shape[0] < 2:
            return None
        nw, w, D = shape
        nodes, tail, scale = [mm1], mm1.output[0], 1.0
        while (nxt := _single_consumer(model, tail, ("Mul", "Div", "Softmax"))) is not None \
                and nxt.op_type != "Softmax":
            other = [i for i in nxt.input if i != tail]
            c = model.get_initializer(other[0]) if len(other) == 1 else None
            if c is None or np.asarray(c).size != 1 or (nxt.op_type == "Div"
                                                        and nxt.input[0] != tail):
                fail(f"{nxt.name!r} is not a scaling by a constant scalar")
            c = float(np.asarray(c).reshape(()))
            scale *= 1.0 / c if nxt.op_type == "Div" else c
            nodes.append(nxt)
            tail = nxt.output[0]
        if nxt is None:
            return None
        axis = next((a.i for a in nxt.attribute if a.name == "axis"), -1)
        if axis not in (-1, 2):
            fail("the softmax is not over the last axis")
        softmax, scores = nxt, tail
        nodes.append(softmax)
        p_q, mm2, out_moves, out_q = self._context(model, softmax, nodes, fail)
        q_dq, q_moves = self._chain(model, mm1.input[0], mm1)
        k_dq, k_moves = self._chain(model, mm1.input[1], mm1)
        v_dq, v_moves = self._chain(model, mm2.input[1], mm1)
        if any(model.get_tensor_shape(d.input[0]) != shape for d in (k_dq, v_dq)):
            fail(f"q, k, v must be (windows, w, D) of one shape, got {shape}")
        idx = np.arange(nw * w * D).reshape(nw, w, D)
        for moves, want in ((q_moves, idx), (k_moves, idx.transpose(0, 2, 1)),
                            (v_moves, idx)):
            got = self._run_moves(model, moves, idx)
            if got.shape != want.shape or not np.array_equal(got, want):
                fail("q, k, v must reach the products unmoved (one head; k transposed)")
        merged = self._run_moves(model, out_moves, idx)
        if merged.shape[-1] != D or not np.array_equal(merged.reshape(-1), idx.reshape(-1)):
            fail("the window merge must keep the token order (a reshape)")
        nodes += q_moves + k_moves + v_moves
        return _Attention(nodes, q_dq, k_dq, v_dq, 1, scale, False, p_q, out_q, scores, w)

    def _lower(self, model, node, a: _Attention):
        out, eps = super()._lower(model, node, a)
        new = model.find_producer(out)
        new.op_type = "IntWindowAttention"
        new.attribute.append(helper.make_attribute("window", a.L))
        # the op keeps its input's (windows, w, D) shape; a reshape (dropped at the end)
        # gives the merged shape the output quantizer had
        shape = model.get_tensor_shape(out)
        new.output[0] = f"{out}_windows"
        to = _const(model, f"{out}_shape", np.asarray(shape, dtype=np.int64))
        merge = helper.make_node("Reshape", [new.output[0], to], [out], name=f"{new.name}/merge")
        model.graph.node.insert(list(model.graph.node).index(new) + 1, merge)
        return out, eps


class DropCodeReshapes(Transformation):
    """Exact: a ``Reshape`` of an int8/uint8 code tensor that keeps the last axis is removed
    (its readers read its input) where every reader is a dialect op: the row-major vectors the
    back end streams are the same. A reshape of the graph's output, or one that feeds data
    movement left to the host (a trailing PixelShuffle), is kept."""

    exact = True

    def apply(self, model):
        outputs = {o.name for o in model.graph.output}
        changed = False
        for node in list(model.graph.node):
            if node.op_type != "Reshape" or node.output[0] in outputs \
                    or not _keeps_last_axis(model, node):
                continue
            prod = model.find_producer(node.input[0])
            if prod is None or (prod.domain != dialect.DOMAIN
                                and prod.op_type not in ("QuantizeLinear", "Clip")):
                continue
            readers = model.find_consumers(node.output[0]) or []
            if not readers or any(c.domain != dialect.DOMAIN for c in readers):
                continue
            for c in readers:
                for i, name in enumerate(c.input):
                    if name == node.output[0]:
                        c.input[i] = node.input[0]
            model.graph.node.remove(node)
            changed = True
        if changed:
            model = _refresh(model)
        return model, False
