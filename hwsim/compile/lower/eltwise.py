"""The approximate step that lowers element-wise add/mul of two quantized tensors to ``IntEltwise``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from onnx import helper
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from hwsim.golden.common.conv_window import conv_weight_matrix
from hwsim.golden.common.eltwise import params_for as eltwise_params_for
from hwsim.golden.common.eltwise import real_factors as eltwise_real_factors

from ._graph import (
    _U32,
    MULT_BITS,
    Passes,
    _refresh,
    _remove_dead_nodes,
    _replace,
    _scalar,
    _single_consumer,
)


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


class LowerElementwise(Passes, Transformation):
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
    node this step changes only through its inputs (an ``IntMatMul``/``TernaryMatMul``/``IntConv →
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
        self._new_pass()
        for node in [n for n in model.graph.node if n.op_type in ("Add", "Mul")]:
            match = self._match(model, node)
            ins = [match.a_dq.input[0], match.b_dq.input[0]] if match is not None else []
            if match is None or self._waits(ins, [t for t in ins if self._follows(model, t)]):
                continue
            self._lower(model, node, match)
            self._lowered(model, match.out_codes)
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

    def _follows(self, model, tensor: str) -> bool:
        """Whether :meth:`_propagate` carries ``tensor``'s deviation: an ``IntEltwise`` of this
        step, or a ``Requant`` after a matrix product that reads such a tensor."""
        if tensor in self._own:
            return True
        node = model.find_producer(tensor)
        if node is None or node.op_type != "Requant" or node.domain != dialect.DOMAIN:
            return False
        mm = model.find_producer(node.input[0])
        return mm is not None and mm.op_type in ("IntMatMul", "TernaryMatMul", "IntConv") \
            and self._follows(model, mm.input[0])

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
                if mm is None or mm.op_type not in ("IntMatMul", "TernaryMatMul", "IntConv") \
                        or not self.bounds.get(mm.input[0], 0):
                    continue
                w = model.get_initializer(mm.input[1]).astype(np.int64)
                if mm.op_type == "IntConv":  # the im2col matrix the windows multiply
                    w = conv_weight_matrix(w, getCustomOp(mm).get_nodeattr("group"))
                colsum = np.sum(np.abs(w), axis=0).astype(np.float64)
                f = getCustomOp(node).factors()  # one, or one per column
                worst = float(np.max(f * self.bounds[mm.input[0]] * colsum))
                self.bounds[out] = math.floor(worst) + 1




#: unary float ops a ``LutAct`` replaces between two quantizers (elementwise functions of
#: their one input; attributes such as ``alpha`` or Gelu's ``approximate`` are kept in the
