"""The exact step that lowers one integer LIF layer's time step to ``IntLifArray``.

The spiking classifier's per-step export (:mod:`models.snn.export`) writes each layer as float
ops holding exact integers: a synaptic current (``Conv`` of the frame then ``Flatten``, or
``MatMul`` of the spikes before by integer weight codes), the leak
``Floor((v · a + 2**(F−1)) / 2**F)``, ``u = Clip(leak + current, −2**(m−1), 2**(m−1) − 1)``,
the spike ``s = Cast(Greater(u, θ))`` and the reset ``v' = u − s · θ``
(:class:`hwsim.compile.patterns.MarkLif` matches these nodes).

**State pairs.** The membrane ``v`` is a graph input and ``v'`` a graph output: the host feeds
``v'`` of step ``t`` back as ``v`` of step ``t + 1``. The step recognises the pair by the
pattern itself: the graph input that the leak's ``Mul`` reads and the graph output that the
reset's ``Sub`` writes form one pair, recorded in the node's ``state_in`` / ``state_out``
attributes (no other graph input or output is a state).

The layer becomes one ``IntLifArray`` (kernel ``lif-array``, whose weights sit beside its
neurons): the current's weights become the dense (neurons, inputs) code matrix (a
convolution's windows written out, rows in ``Flatten`` order), the frame (or the spikes)
become uint8 event counts (``QuantizeLinear`` with scale 1), ``v`` int16 codes; ``v'`` and the
spikes go back to float through ``DequantizeLinear`` with scale 1. Exact: every value is an
integer, so the step's outputs stay ``==`` (a frame of non-integer or negative counts, or one
above 255, changes them, and the verifier says so).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.compile.patterns import MarkLif, constant
from hwsim.errors import HwsimError

from ._graph import _refresh, _remove_dead_nodes, _replace

__all__ = ["LowerLif", "conv_dense", "state_pairs"]


def conv_dense(w: np.ndarray, side_h: int, side_w: int, stride: int) -> np.ndarray:
    """One-channel conv weights (C, 1, k, k), no padding → dense (C·oh·ow, H·W) matrix, rows in
    ``Flatten`` order (channel, row, column)."""
    c, _, k, _ = w.shape
    oh, ow = (side_h - k) // stride + 1, (side_w - k) // stride + 1
    dense = np.zeros((c, oh, ow, side_h, side_w), np.int64)
    for y in range(oh):
        for x in range(ow):
            dense[:, y, x, y * stride:y * stride + k, x * stride:x * stride + k] = w[:, 0]
    return dense.reshape(c * oh * ow, side_h * side_w)


def _int_const(model, name: str, what: str, node) -> np.ndarray:
    c = constant(model, name)
    if c is None or not np.array_equal(np.asarray(c), np.round(np.asarray(c))):
        raise HwsimError(f"LIF node {node.name!r}: the {what} must be an integer constant")
    return np.asarray(c).astype(np.int64)


def _scalar_int(model, node, what: str) -> int:
    c = next((i for i in node.input if constant(model, i) is not None), None)
    v = _int_const(model, c, what, node) if c else None
    if v is None or v.size != 1:
        raise HwsimError(f"LIF node {node.name!r}: the {what} must be one integer constant")
    return int(v.ravel()[0])


def _other(node, name: str) -> str:
    return next(i for i in node.input if i != name)


def _match(model: ModelWrapper, floor):
    nodes = MarkLif()._match(model, floor)
    if nodes is None:
        return None
    leak, sub = nodes[0], nodes[-1]
    v = next(i for i in leak.input if constant(model, i) is None)
    inputs = {i.name for i in model.graph.input}
    outputs = {o.name for o in model.graph.output}
    if v not in inputs or sub.output[0] not in outputs:
        return None  # not a state pair: leave the nodes (the lowering then names them)
    return nodes, v


def state_pairs(model: ModelWrapper) -> list[tuple[str, str]]:
    """``(graph input v, graph output v')`` of every LIF pattern (see the module docstring)."""
    pairs = []
    for floor in model.get_nodes_by_op_type("Floor"):
        m = _match(model, floor)
        if m is not None:
            pairs.append((m[1], m[0][-1].output[0]))
    return pairs


class LowerLif(Transformation):
    """One LIF layer's step → ``IntLifArray`` (exact; see the module docstring)."""

    exact = True

    def _codes(self, model, tensor: str, new: list, elem: int) -> str:
        """The integer codes of float ``tensor``: the input of a scale-1 ``DequantizeLinear``
        that wrote it, else a new ``QuantizeLinear`` (scale 1, zero point of ``elem``)."""
        prod = model.find_producer(tensor)
        if prod is not None and prod.op_type == "DequantizeLinear" \
                and float(np.asarray(model.get_initializer(prod.input[1]))) == 1.0:
            return prod.input[0]
        out = model.make_new_valueinfo_name()
        zp = model.make_new_valueinfo_name()
        sc = model.make_new_valueinfo_name()
        model.set_initializer(sc, np.array(1.0, np.float32))
        model.set_initializer(zp, np.array(0, helper.tensor_dtype_to_np_dtype(elem)))
        new.append(helper.make_node("QuantizeLinear", [tensor, sc, zp], [out],
                                    name=f"{tensor}_codes"))
        return out

    def _current(self, model, add_cur, floor):
        """The synapse feeding the ``Add``: ``(nodes, input tensor, dense weights (N, M))``."""
        cur = _other(add_cur, floor.output[0])
        prod = model.find_producer(cur)
        if prod is not None and prod.op_type == "MatMul":
            w = _int_const(model, prod.input[1], "MatMul weight", prod)
            if w.ndim != 2:
                raise HwsimError(f"LIF current {prod.name!r}: a 2-D weight matrix is lowered")
            return [prod], prod.input[0], w.T
        if prod is not None and prod.op_type in ("Flatten", "Reshape"):
            conv = model.find_producer(prod.input[0])
            if conv is not None and conv.op_type == "Conv":
                w = _int_const(model, conv.input[1], "Conv weight", conv)
                a = {x.name: helper.get_attribute_value(x) for x in conv.attribute}
                shape = model.get_tensor_shape(conv.input[0])
                strides = list(a.get("strides", [1, 1]))
                if (len(conv.input) > 2 or w.ndim != 4 or w.shape[1] != 1 or shape[1] != 1
                        or any(a.get("pads", [0] * 4)) or any(d != 1 for d in
                                                              a.get("dilations", [1, 1]))
                        or a.get("group", 1) != 1 or w.shape[2] != w.shape[3]
                        or strides[0] != strides[1]):
                    raise HwsimError(f"LIF current {conv.name!r}: a one-channel, unpadded, "
                                     "undilated square convolution without bias is lowered")
                return ([conv, prod], conv.input[0],
                        conv_dense(w, shape[2], shape[3], strides[0]))
        raise HwsimError(f"LIF node {add_cur.name!r}: its current must come from a MatMul or a "
                         "Conv → Flatten")

    def apply(self, model: ModelWrapper):
        for floor in model.get_nodes_by_op_type("Floor"):
            m = _match(model, floor)
            if m is None:
                continue
            (leak, add_b, div, floor, add_cur, clip, gt, cast, reset, sub), v = m
            a = _scalar_int(model, leak, "leak multiplier")
            b = _scalar_int(model, add_b, "leak rounding offset")
            c = _scalar_int(model, div, "leak divisor")
            frac = c.bit_length() - 1
            if c < 2 or c != 1 << frac or b != 1 << (frac - 1) or not 0 <= a < c:
                raise HwsimError(f"LIF node {floor.name!r}: the leak must be "
                                 "floor((v·a + 2**(F−1)) / 2**F) with 0 ≤ a < 2**F")
            lo = _int_const(model, clip.input[1], "clip bound", clip)
            hi = _int_const(model, clip.input[2], "clip bound", clip)
            mem_bits = int(hi).bit_length() + 1
            if int(lo) != -(1 << (mem_bits - 1)) or int(hi) != (1 << (mem_bits - 1)) - 1 \
                    or mem_bits > 16:
                raise HwsimError(f"LIF node {clip.name!r}: the clamp must be a signed range of "
                                 "at most 16 bits")
            theta = _scalar_int(model, gt, "threshold")
            if _scalar_int(model, reset, "reset") != theta:
                raise HwsimError(f"LIF node {reset.name!r}: only a reset by the threshold "
                                 "(subtraction) is lowered")
            syn, x, w = self._current(model, add_cur, floor)
            wmax = int(np.abs(w).max(initial=0))
            wbits = max(2, wmax.bit_length() + 1)
            if wbits > 8:
                raise HwsimError(f"LIF current {syn[0].name!r}: weight codes above 8 bits")
            new: list = []
            x_codes = self._codes(model, x, new, TensorProto.UINT8)
            v_codes = self._codes(model, v, new, TensorProto.INT16)
            w_name = model.make_new_valueinfo_name()
            model.set_initializer(w_name, w.astype(np.int8))
            s_codes, v_next = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            name = f"{add_cur.name}_lif"
            new.append(helper.make_node(
                "IntLifArray", [x_codes, v_codes, w_name], [s_codes, v_next], name=name,
                domain=dialect.DOMAIN, kernel="lif-array", threshold=theta, leak_mult=a,
                leak_frac=frac, mem_bits=mem_bits, weight_bits=wbits, state_in=v,
                state_out=sub.output[0]))
            one = model.make_new_valueinfo_name()
            model.set_initializer(one, np.array(1.0, np.float32))
            new.append(helper.make_node("DequantizeLinear", [s_codes, one], [cast.output[0]],
                                        name=f"{name}_spikes"))
            new.append(helper.make_node("DequantizeLinear", [v_next, one], [sub.output[0]],
                                        name=f"{name}_v"))
            n = model.get_tensor_shape(v)
            model.graph.value_info.extend([
                helper.make_tensor_value_info(s_codes, TensorProto.UINT8, n),
                helper.make_tensor_value_info(v_next, TensorProto.INT16, n)])
            _replace(model, [*syn, leak, add_b, div, floor, add_cur, clip, gt, cast, reset, sub],
                     new)
            _remove_dead_nodes(model)
            return _refresh(model), True
        return model, False
