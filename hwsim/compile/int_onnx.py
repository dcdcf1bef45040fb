"""The integer-ONNX input format: idioms of standard integer ops that state a quantized network
code for code (what :func:`models.swiftchannel.onnx_int.export_int_onnx` writes).

A float QCDQ graph cannot state a ROUND-HALF-UP multiplier requantizer or a fused LUT gate
exactly; these idioms can, with standard ops only:

* **requantizer** ``Mul(acc, M) → Add((z << S) + 2**(S−1)) → Max(0) → Cast(uint64) →
  BitShift(S, RIGHT) → Min(255) → Cast(int64)`` = ``clip(round_half_up(acc·M·2**-S) + z, 0,
  255)`` (``M``, ``S`` scalars or one per channel of axis 1);
* **convolution** ``[Pad(z_in)] → ConvInteger(x, W, z_in) → Cast(int64) [→ Add(bias)] →
  requantizer`` on uint8 codes (``Cast`` nodes around codes only change the element type);
* **SPAB gate** ``(x − z_x)·M_x + (c − z_c)·M_c`` times ``Gather(lut, clip(((c − z_c)·M_l +
  K·2**S_l) >> S_l + 256 − K, 0, 511))`` → requantizer (``M`` = 1): the ``swiftchannel-gate``
  kernel (its 512-entry LUT must be :func:`hwsim.golden.swiftchannel.network.sigmoid_lut`).

:class:`MarkIntegerOnnx` records the idioms it finds as front-end annotations (``int_conv``,
``int_gate``, ``int_boundary``: the input ``QuantizeLinear``, ``Cast`` nodes between codes and
the output ``DequantizeLinear``); :data:`IN_PATTERN` says which otherwise unsupported ops they
make acceptable. :class:`hwsim.compile.lower.int_onnx.LowerIntegerOnnx` lowers them with the
matchers here (:func:`match_conv`, :func:`match_gate`, :func:`match_requant`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper
from qonnx.transformation.base import Transformation

__all__ = ["DATA_MOVEMENT", "IN_PATTERN", "ConvIdiom", "GateIdiom", "MarkIntegerOnnx",
           "RequantIdiom", "code_source", "match_conv", "match_gate", "match_requant"]

#: ops accepted only inside an integer-ONNX idiom (op type → patterns)
IN_PATTERN = {
    "ConvInteger": {"int_conv"}, "Pad": {"int_conv"}, "BitShift": {"int_conv", "int_gate"},
    "Max": {"int_conv", "int_gate"}, "Min": {"int_conv", "int_gate"},
    "Cast": {"int_conv", "int_gate", "int_boundary"}, "Gather": {"int_gate"},
    "Clip": {"int_gate"}, "QuantizeLinear": {"int_boundary"},
    "DequantizeLinear": {"int_boundary"},
}
#: pure data movement the host may run after the last compute node
DATA_MOVEMENT = ("Reshape", "Transpose", "DepthToSpace")
#: element types that hold every uint8 code exactly
_WIDE = {TensorProto.UINT8, TensorProto.INT16, TensorProto.UINT16, TensorProto.INT32,
         TensorProto.UINT32, TensorProto.INT64, TensorProto.UINT64}


def constant(model, name: str) -> np.ndarray | None:
    return model.get_initializer(name) if name else None


def _attr(node, name: str, default=None):
    a = next((a for a in node.attribute if a.name == name), None)
    return default if a is None else helper.get_attribute_value(a)


def _sole(model, tensor: str, op_type: str):
    users = model.find_consumers(tensor) or []
    if len(users) != 1 or users[0].op_type != op_type \
            or tensor in {o.name for o in model.graph.output}:
        return None
    return users[0]


def _split(model, node, x: str | None = None):
    """``(variable operand, constant operand)`` of a two-input node, or ``(None, None)``."""
    if node is None or len(node.input) != 2:
        return None, None
    a, b = node.input
    ca, cb = constant(model, a), constant(model, b)
    if cb is not None and ca is None and (x is None or a == x):
        return a, np.asarray(cb)
    if ca is not None and cb is None and (x is None or b == x):
        return b, np.asarray(ca)
    return None, None


def _producer(model, tensor: str, op_type: str):
    p = model.find_producer(tensor)
    return p if p is not None and p.op_type == op_type else None


def _is(value, v) -> bool:
    return value is not None and value.size >= 1 and bool(np.all(value == v))


def _channels(model, values: list[np.ndarray]) -> int | None:
    """The channel count of per-channel constants (each of size 1 or shape ``(1, C, 1, 1)``)."""
    c = 1
    for v in values:
        if v.size == 1:
            continue
        if v.ndim != 4 or v.shape[0] != 1 or v.shape[2:] != (1, 1) or c not in (1, v.shape[1]):
            return None
        c = v.shape[1]
    return c


@dataclass
class RequantIdiom:
    nodes: list
    src: str              # the int64 accumulator tensor
    out: str              # the int64 code tensor
    mult: np.ndarray      # (C,) int64
    shift: np.ndarray     # (C,) int64
    zero_point: int
    per_channel: bool


def match_requant(model, mul) -> RequantIdiom | None:
    """The requantizer idiom that starts at ``Mul`` node ``mul``, or None."""
    if mul is None or mul.op_type != "Mul":
        return None
    src, m = _split(model, mul)
    add = src and _sole(model, mul.output[0], "Add")
    _, a = _split(model, add, mul.output[0]) if add is not None else (None, None)
    mx = a is not None and _sole(model, add.output[0], "Max")
    if not mx or not _is(_split(model, mx, add.output[0])[1], 0):
        return None
    c64 = _sole(model, mx.output[0], "Cast")
    bs = c64 and _attr(c64, "to") == TensorProto.UINT64 and \
        _sole(model, c64.output[0], "BitShift")
    if not bs or _attr(bs, "direction") not in (b"RIGHT", "RIGHT") or bs.input[0] != c64.output[0]:
        return None
    s = constant(model, bs.input[1])
    mn = s is not None and _sole(model, bs.output[0], "Min")
    if not mn or not _is(_split(model, mn, bs.output[0])[1], 255):
        return None
    back = _sole(model, mn.output[0], "Cast")
    if back is None or _attr(back, "to") not in _WIDE - {TensorProto.UINT8}:
        return None
    s = np.asarray(s)
    c = _channels(model, [m, a, s])
    if c is None:
        return None
    m, a, s = (np.broadcast_to(np.asarray(v, np.int64).reshape(-1), (c,)) for v in (m, a, s))
    if np.any(m < 0) or np.any(s < 0) or np.any(s > 62):
        return None
    half = np.where(s > 0, np.int64(1) << np.maximum(s - 1, 0), 0)
    zp = (a - half) >> s
    if not np.array_equal((zp << s) + half, a) or len(set(zp.tolist())) != 1 \
            or not 0 <= int(zp[0]) <= 255:
        return None
    return RequantIdiom([mul, add, mx, c64, bs, mn, back], src, back.output[0], m.copy(),
                        s.copy(), int(zp[0]), c > 1)


def code_source(model, tensor: str) -> tuple[str, list]:
    """Walk back from ``tensor`` through ``Cast`` nodes that keep every uint8 code; returns the
    first tensor not made by such a cast and the casts passed."""
    casts = []
    while True:
        p = _producer(model, tensor, "Cast")
        if p is None or _attr(p, "to") not in _WIDE:
            return tensor, casts
        casts.append(p)
        tensor = p.input[0]


@dataclass
class ConvIdiom:
    nodes: list
    src: str              # the input codes (through casts)
    w: np.ndarray         # (oc, ic, k, k) int8
    bias: np.ndarray      # (oc,) int64 (the ConvInteger's, not shifted by z_in)
    z_in: int
    pad: int
    requant: RequantIdiom


def match_conv(model, conv) -> ConvIdiom | None:
    """The convolution idiom around ``ConvInteger`` node ``conv``, or None."""
    if conv.op_type != "ConvInteger":
        return None
    w = constant(model, conv.input[1])
    z = constant(model, conv.input[2]) if len(conv.input) > 2 and conv.input[2] else np.zeros(1)
    wz = constant(model, conv.input[3]) if len(conv.input) > 3 and conv.input[3] else np.zeros(1)
    if w is None or z is None or wz is None or w.ndim != 4 or w.dtype != np.int8 \
            or z.size != 1 or np.any(wz != 0) or w.shape[2] != w.shape[3]:
        return None
    if list(_attr(conv, "strides", [1, 1])) != [1, 1] \
            or list(_attr(conv, "dilations", [1, 1])) != [1, 1] or _attr(conv, "group", 1) != 1 \
            or any(_attr(conv, "pads", [0, 0, 0, 0])) \
            or _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    z_in, k = int(z.reshape(())), int(w.shape[2])
    nodes, x, pad = [conv], conv.input[0], 0
    p = _producer(model, x, "Pad")
    if p is not None:
        pads = constant(model, p.input[1])
        value = constant(model, p.input[2]) if len(p.input) > 2 and p.input[2] else np.zeros(1)
        if pads is None or value is None or value.size != 1 or int(value.reshape(())) != z_in \
                or (len(p.input) > 3 and p.input[3]) \
                or _attr(p, "mode", b"constant") not in (b"constant", "constant") \
                or _sole(model, p.output[0], "ConvInteger") is None:
            return None
        q = int(pads[2])
        if list(pads) != [0, 0, q, q, 0, 0, q, q] or not 0 <= q < k:
            return None
        nodes, x, pad = [p, conv], p.input[0], q
    oc = w.shape[0]
    cast = _sole(model, conv.output[0], "Cast")
    if cast is None or _attr(cast, "to") != TensorProto.INT64:
        return None
    nodes.append(cast)
    acc = cast.output[0]
    bias = np.zeros(oc, np.int64)
    add = _sole(model, acc, "Add")
    if add is not None:
        _, b = _split(model, add, acc)
        if b is None or _channels(model, [b]) not in (1, oc):
            return None
        bias = np.broadcast_to(np.asarray(b, np.int64).reshape(-1), (oc,)).copy()
        nodes.append(add)
        acc = add.output[0]
    rq = match_requant(model, _sole(model, acc, "Mul"))
    if rq is None or rq.src != acc or rq.mult.size not in (1, oc):
        return None
    return ConvIdiom(nodes + rq.nodes, code_source(model, x)[0], np.asarray(w), bias, z_in,
                     pad, rq)


@dataclass
class GateIdiom:
    nodes: list
    x: str                # the block input codes (through casts)
    c: str                # the second conv's codes (through casts)
    z_x: int
    z_c: int
    lut_mult: int
    lut_shift: int
    sum_mult_x: int
    sum_mult_c: int
    sum_shift: int
    z_out: int
    out: str


def _scalar(v) -> int | None:
    return int(np.asarray(v).reshape(())) if v is not None and np.asarray(v).size == 1 else None


def _centred(model, tensor: str):
    """``(Sub node, source codes, zero point)`` of ``tensor = Sub(codes, z)``, or None."""
    sub = _producer(model, tensor, "Sub")
    if sub is None or constant(model, sub.input[1]) is None:
        return None
    z = _scalar(constant(model, sub.input[1]))
    return None if z is None else (sub, code_source(model, sub.input[0])[0], z)


def match_gate(model, gather) -> GateIdiom | None:
    """The SPAB gate idiom around ``Gather`` node ``gather`` (its LUT the kernel's), or None."""
    from hwsim.golden.swiftchannel.network import LUT_SIZE, sigmoid_lut

    lut = constant(model, gather.input[0])
    if gather.op_type != "Gather" or _attr(gather, "axis", 0) != 0 or lut is None \
            or lut.shape != (LUT_SIZE,) or not np.array_equal(lut, sigmoid_lut()):
        return None
    clip = _producer(model, gather.input[1], "Clip")
    if clip is None or len(clip.input) != 3 or not _is(constant(model, clip.input[1]), 0) \
            or not _is(constant(model, clip.input[2]), LUT_SIZE - 1):
        return None
    base = _producer(model, clip.input[0], "Add")
    v, b = _split(model, base)
    ci = v and _producer(model, v, "Cast")
    bs = ci and _producer(model, ci.input[0], "BitShift")
    if not bs or _attr(bs, "direction") not in (b"RIGHT", "RIGHT"):
        return None
    cu = _producer(model, bs.input[0], "Cast")
    off = cu and _attr(cu, "to") == TensorProto.UINT64 and _producer(model, cu.input[0], "Add")
    dcm, k_off = _split(model, off) if off else (None, None)
    mul_l = dcm and _producer(model, dcm, "Mul")
    dc, lm = _split(model, mul_l) if mul_l else (None, None)
    cen = dc and _centred(model, dc)
    ls = _scalar(constant(model, bs.input[1]))
    lm, k_off, b = _scalar(lm), _scalar(k_off), _scalar(b)
    if not cen or None in (ls, lm, k_off, b) or not 0 <= ls <= 40:
        return None
    sub_c, c_src, z_c = cen
    k = k_off >> ls
    # the index is floor(dc·M / 2**S) + 256 wherever dc·M + K stays ≥ 0 (the uint64 cast)
    if k << ls != k_off or b != LUT_SIZE // 2 - k or -z_c * lm + k_off < 0 or not 0 < lm < 1 << 16:
        return None
    prod = _sole(model, gather.output[0], "Mul")
    if prod is None or len(prod.input) != 2:
        return None
    acc = prod.input[0] if prod.input[1] == gather.output[0] else prod.input[1]
    add = _producer(model, acc, "Add")
    if add is None:
        return None
    terms = {}
    for t in add.input:
        mul = _producer(model, t, "Mul")
        d, m = _split(model, mul) if mul else (None, None)
        cen_t = d and _centred(model, d)
        if not cen_t or _scalar(m) is None:
            return None
        key = "c" if cen_t[1] == c_src and cen_t[2] == z_c and "c" not in terms else "x"
        terms[key] = (mul, cen_t, _scalar(m))
    if set(terms) != {"x", "c"}:
        return None
    rq = match_requant(model, _sole(model, prod.output[0], "Mul"))
    if rq is None or rq.per_channel or int(rq.mult[0]) != 1 or int(rq.shift[0]) > 40:
        return None
    mx, mc = terms["x"][2], terms["c"][2]
    if not (0 <= mx < 1 << 16 and 0 <= mc < 1 << 16):
        return None
    nodes = [sub_c, mul_l, off, cu, bs, ci, base, clip, gather, terms["x"][1][0], terms["x"][0],
             terms["c"][0], add, prod, *rq.nodes]
    if terms["c"][1][0] is not sub_c:
        nodes.insert(1, terms["c"][1][0])
    return GateIdiom(nodes, terms["x"][1][1], c_src, terms["x"][1][2], z_c, lm, ls, mx, mc,
                     int(rq.shift[0]), rq.zero_point, rq.out)


class MarkIntegerOnnx(Transformation):
    """The integer-ONNX idioms → annotations ``int_conv`` / ``int_gate`` (each idiom's nodes) and
    ``int_boundary`` (the graph input's ``QuantizeLinear``, the ``Cast`` nodes between codes,
    the output ``DequantizeLinear`` behind data movement); the graph is unchanged."""

    def apply(self, model):
        from hwsim.compile.patterns import _marked, _record  # patterns imports this module

        done = _marked(model)
        found = []
        for node in model.graph.node:
            if node.name in done:
                continue
            if node.op_type == "ConvInteger":
                m = match_conv(model, node)
                if m is not None:
                    found.append(("int_conv", m.nodes))
            elif node.op_type == "Gather":
                m = match_gate(model, node)
                if m is not None:
                    found.append(("int_gate", m.nodes))
        if not found:
            return model, False
        for name, nodes in found:
            _record(model, {"pattern": name, "nodes": [n.name for n in nodes]})
        inside = {n.name for _, nodes in found for n in nodes}
        gin = {i.name for i in model.graph.input}
        gout = {o.name for o in model.graph.output}
        boundary = []
        for node in model.graph.node:
            if node.name in inside:
                continue
            if ((node.op_type == "QuantizeLinear" and node.input[0] in gin)
                    or (node.op_type == "Cast" and _attr(node, "to") in _WIDE)
                    or (node.op_type == "DequantizeLinear" and node.output[0] in gout)):
                boundary.append(node.name)
        _record(model, {"pattern": "int_boundary", "nodes": boundary})
        return model, False
