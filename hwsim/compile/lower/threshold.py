"""A float activation between a layer and its quantizer becomes a multi-threshold table.

:class:`LowerThresholdActivations` (approximate): ``MatMul/Gemm/Conv [+ bias]`` on dequantized
codes whose float result goes through a chain or small DAG of one-tensor float functions
(:data:`~hwsim.compile.lower.pointwise.POINTWISE_OPS`, and ``Add/Sub/Mul/Div`` whose other
operand is a scalar constant or another tensor of the DAG: SiLU ``x·Sigmoid(x)``, GELU-tanh)
into an 8-bit ``QuantizeLinear [→ Clip]`` becomes

``IntMatMul|IntConv (+ bias in accumulator units) → Requant(int32, M = 1, S = 0) →
IntThreshold``.

The accumulator ``acc`` (bias included) fixes the output code ``Q(F(acc · s_a · s_w))``;
:func:`hwsim.golden.common.threshold.build_table` turns that code function into sorted
breakpoints, evaluating ``F`` (the DAG's own nodes, interpreted in numpy) and ``Q`` in float64
over the reachable range ``|acc| ≤ max_j (a_peak · Σ_i |W_ij| + |bias_j|)``: every integer of
it where it holds ≤ 2**22 values, else a grid with bisection (see that module). Per-tensor
weight scales only (a per-channel scale would need one table per channel: refused, naming the
node).

Bound (:attr:`bounds`, per output): ``floor(ε) + 1`` LSB, ``ε`` the sum of ``L · 0.5 · r`` (the
bias rounded to accumulator units, ``r = s_a s_w / s_y``, ``L`` the largest slope of ``F``
measured on the integer grid of ``acc``), ``L · r · δ_in · max_j Σ_i |W_ij|`` (the input
codes' own bound) and float32 rounding of the original (``(k + 5) · 2**-24 · L · r · peak``
for the layer, ``16 · 2**-24 · max|F| / s_y`` for the function). The float64 table against
the float32 graph is then ≤ 1 LSB where the bias is exact in accumulator units.
"""

from __future__ import annotations

import math

import numpy as np
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from hwsim.golden.common import threshold as tspec

from ._graph import (
    _U32,
    Passes,
    _attention_nodes,
    _const,
    _refresh,
    _remove_dead_nodes,
    _replace,
    _scalar,
)
from .flatten import int32_accumulators, wide_requant
from .pointwise import POINTWISE_OPS, _elem_type

__all__ = ["LowerThresholdActivations"]

_ARITH = ("Add", "Sub", "Mul", "Div")
#: the most nodes one activation DAG may hold
_MAX_NODES = 24


def _attr(node, name, default):
    for a in node.attribute:
        if a.name == name:
            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _sigmoid(x):
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def _unary(node, x: np.ndarray) -> np.ndarray:
    """One ONNX elementwise op of :data:`POINTWISE_OPS` in float64."""
    from scipy.special import erf
    op = node.op_type
    with np.errstate(over="ignore", invalid="ignore"):
        if op == "Sigmoid":
            return _sigmoid(x)
        if op == "Tanh":
            return np.tanh(x)
        if op == "Relu":
            return np.maximum(x, 0.0)
        if op == "Erf":
            return erf(x)
        if op == "Gelu":
            if _attr(node, "approximate", "none") == "tanh":
                return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
            return 0.5 * x * (1 + erf(x / math.sqrt(2)))
        if op == "LeakyRelu":
            return np.where(x >= 0, x, _attr(node, "alpha", 0.01) * x)
        if op == "HardSigmoid":
            return np.clip(_attr(node, "alpha", 0.2) * x + _attr(node, "beta", 0.5), 0, 1)
        if op == "HardSwish":
            return x * np.clip(x / 6 + 0.5, 0, 1)
        if op == "Elu":
            return np.where(x >= 0, x, _attr(node, "alpha", 1.0) * np.expm1(x))
        if op == "Selu":
            a, g = _attr(node, "alpha", 1.67326319217681884765625), \
                _attr(node, "gamma", 1.05070102214813232421875)
            return g * np.where(x > 0, x, a * np.expm1(x))
        if op == "Celu":
            a = _attr(node, "alpha", 1.0)
            return np.maximum(x, 0) + np.minimum(0, a * np.expm1(x / a))
        if op == "Softplus":
            return np.logaddexp(0.0, x)
        if op == "Softsign":
            return x / (1 + np.abs(x))
        if op == "Mish":
            return x * np.tanh(np.logaddexp(0.0, x))
        if op == "Abs":
            return np.abs(x)
        if op == "Neg":
            return -x
        if op == "Identity":
            return x
    raise HwsimError(f"no float64 form of {op} node {node.name!r}")


class _Dag:
    """The float function nodes between a layer's result ``x`` and its quantizer ``q``."""

    def __init__(self, model, nodes: list, x: str, q, clip):
        self.model, self.nodes, self.x, self.q, self.clip = model, nodes, x, q, clip

    def value(self, xs: np.ndarray) -> np.ndarray:
        """``F(xs)`` in float64 (the nodes in graph order)."""
        env = {self.x: np.asarray(xs, np.float64)}
        for n in self.nodes:
            ins = [env[i] if i in env else
                   np.asarray(self.model.get_initializer(i), np.float64).reshape(())
                   for i in n.input]
            if n.op_type in _ARITH:
                a, b = ins
                with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                    env[n.output[0]] = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                                        "Div": np.divide}[n.op_type](a, b)
            else:
                env[n.output[0]] = _unary(n, ins[0])
        return env[self.q.input[0]]

    @property
    def name(self) -> str:
        return "·".join(n.op_type for n in self.nodes)


def _match_dag(model, x: str) -> _Dag | None:
    """The DAG of one-tensor float nodes from ``x`` to one 8-bit ``QuantizeLinear [→ Clip]``
    with scalar constant parameters, or ``None`` where ``x``'s readers do not form one (or
    form only a ``Relu``, which the linear step folds)."""
    outputs = {o.name for o in model.graph.output}
    inside, nodes, q, todo = {x}, [], None, [x]
    while todo:
        t = todo.pop()
        if t in outputs:
            return None
        for n in model.find_consumers(t) or []:
            if n in nodes or n is q:
                continue
            if n.op_type == "QuantizeLinear":
                if q is not None or n.input[0] != t:
                    return None
                q = n
                continue
            if len(n.output) != 1 or len(nodes) >= _MAX_NODES:
                return None
            if n.op_type in POINTWISE_OPS and len(n.input) == 1:
                pass
            elif n.op_type in _ARITH and len(n.input) == 2:
                for i in n.input:
                    c = model.get_initializer(i)
                    if c is not None and np.asarray(c).size != 1:
                        return None
            else:
                return None
            nodes.append(n)
            inside.add(n.output[0])
            todo.append(n.output[0])
    if q is None or not nodes or [n.op_type for n in nodes] == ["Relu"]:
        return None
    # every operand: x, a DAG tensor or a scalar constant; every DAG tensor read inside only
    for n in nodes:
        if any(i not in inside and model.get_initializer(i) is None for i in n.input):
            return None
        if n.op_type in _ARITH and all(i not in inside for i in n.input):
            return None
    if q.input[0] == x or len(q.input) < 3 or _elem_type(model, q.input[2]) not in (2, 3):
        return None  # codes of int8 (3) / uint8 (2) only
    for i in q.input[1:]:
        c = model.get_initializer(i)
        if c is None or np.asarray(c).size != 1:
            return None
    clip = None
    readers = model.find_consumers(q.output[0]) or []
    if len(readers) == 1 and readers[0].op_type == "Clip" and q.output[0] not in outputs:
        clip = readers[0]
        if any(i and (model.get_initializer(i) is None
                      or np.asarray(model.get_initializer(i)).size != 1)
               for i in clip.input[1:]):
            return None
    order = {id(n): k for k, n in enumerate(model.graph.node)}
    nodes.sort(key=lambda n: order[id(n)])
    return _Dag(model, nodes, x, q, clip)


class LowerThresholdActivations(Passes, Transformation):
    """Approximate: a layer → float activation DAG → 8-bit quantizer becomes ``IntMatMul |
    IntConv → Requant(int32) → IntThreshold`` (see the module docstring). :attr:`bounds` maps
    each ``IntThreshold`` output to its bound."""

    exact = False

    def __init__(self):
        super().__init__()
        self.bounds: dict[str, int] = {}

    def apply(self, model):
        self.bounds = {}
        self._new_pass()
        attention = _attention_nodes(model)
        for node in [n for n in model.graph.node if n.op_type in ("MatMul", "Gemm", "Conv")
                     and n.name not in attention]:
            if node not in model.graph.node:
                continue
            self._try(model, node)
        _remove_dead_nodes(model)
        return _refresh(model), False

    def _try(self, model, node) -> None:
        from .linear import match_operands
        producers = [model.find_producer(i) for i in node.input[:2]]
        if any(getattr(p, "op_type", None) != "DequantizeLinear" for p in producers) \
                or model.get_initializer(producers[1].input[0]) is None:
            return  # not a quantized layer: the layer steps name it
        tail, bias_add = node.output[0], None
        readers = model.find_consumers(tail) or []
        has_bias = len(node.input) == 3 and bool(node.input[2])
        if len(readers) == 1 and readers[0].op_type == "Add" and not has_bias:
            other = [i for i in readers[0].input if i != tail]
            if len(other) == 1 and model.get_initializer(other[0]) is not None:
                bias_add = readers[0]
                tail = bias_add.output[0]
        dag = _match_dag(model, tail)
        if dag is None:
            return

        def fail(why):
            raise HwsimError(f"cannot lower {node.op_type} node {node.name!r} (a float "
                             f"{dag.name} before its quantizer): {why}")

        a_dq, w_dq, _ = match_operands(model, node, fail)
        if self._waits([a_dq.input[0]], follows=self.bounds):
            return
        s_w = model.get_initializer(w_dq.input[1])
        if s_w is None or np.asarray(s_w).size != 1:
            fail("per-channel weight scales need one threshold table per channel, which is "
                 "not built: use a per-tensor weight quantizer")
        s_y = _scalar(model, dag.q.input[1], node, "output scale")
        y_zero = model.get_initializer(dag.q.input[2])
        clip = None
        if dag.clip is not None:
            lo = model.get_initializer(dag.clip.input[1]) if len(dag.clip.input) > 1 else None
            hi = model.get_initializer(dag.clip.input[2]) if len(dag.clip.input) > 2 else None
            clip = (-(1 << 30) if lo is None else int(lo), (1 << 30) if hi is None else int(hi))
        out_codes = (dag.clip or dag.q).output[0]
        old = [dag.q, *dag.nodes] + ([dag.clip] if dag.clip is not None else []) \
            + ([bias_add] if bias_add is not None else [])
        if node.op_type == "Conv":
            acc_codes, mat, s, bias_int, a_signed = self._conv(model, node, dag, bias_add, old,
                                                               fail)
        else:
            acc_codes, mat, s, bias_int, a_signed = self._linear(model, node, a_dq, w_dq,
                                                                 bias_add, old, fail)
        a_peak = 128 if a_signed and not int(model.get_initializer(a_dq.input[2])) else 255
        colsum = np.abs(mat.astype(np.int64)).sum(axis=0)
        peak = int(np.max(a_peak * colsum + (0 if bias_int is None else np.abs(bias_int))))
        if peak >= 2 ** 31:
            fail("its accumulators may not fit int32")
        y_signed = np.asarray(y_zero).dtype == np.int8
        quant = tspec.quantizer(s_y, int(y_zero), y_signed, clip)

        def value(acc):
            return dag.value(np.asarray(acc, np.float64) * s)

        bps, codes = tspec.build_table(lambda acc: quant(value(acc)), -peak, peak, value)
        if len(bps) > tspec.MAX_BREAKPOINTS:
            fail(f"its table needs {len(bps)} breakpoints, above "
                 f"{tspec.MAX_BREAKPOINTS}")
        thr = helper.make_node("IntThreshold", [acc_codes], [out_codes], domain=dialect.DOMAIN,
                               name=f"{node.name}/threshold", kernel="threshold",
                               breakpoints=list(bps), codes=list(codes), in_width=32,
                               out_signed=int(y_signed), function=dag.name)
        model.graph.node.insert(list(model.graph.node).index(
            next(n for n in model.graph.node if acc_codes in n.output)) + 1, thr)
        # the bound (module docstring)
        grid = np.unique(np.linspace(-peak, peak, min(2 * peak + 1, 1 << 16)).round())
        v = value(grid)
        slope = float(np.max(np.abs(np.diff(v)) / np.diff(grid), initial=0.0)) / s
        r = s / s_y
        eps = slope * r * (self.bounds.get(a_dq.input[0], 0) * float(np.max(colsum))
                           + (0.5 if bias_int is not None else 0.0)
                           + (mat.shape[0] + 5) * _U32 * peak)
        eps += 16 * _U32 * float(np.max(np.abs(v))) / s_y
        self.bounds[out_codes] = math.floor(eps) + 1
        self._lowered(model, out_codes)

    def _linear(self, model, node, a_dq, w_dq, bias_add, old, fail):
        w = np.asarray(model.get_initializer(w_dq.input[0]))
        bias = None
        if node.op_type == "Gemm":
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 \
                    or attrs.get("transA", 0):
                fail("only alpha = beta = 1 and transA = 0 are lowered")
            if attrs.get("transB", 0):
                w = w.T
            if len(node.input) == 3 and node.input[2]:
                bias = model.get_initializer(node.input[2])
                if bias is None:
                    fail("its bias is not a constant")
        if bias_add is not None:
            bias = model.get_initializer(next(i for i in bias_add.input
                                              if model.get_initializer(i) is not None))
        if w.ndim != 2:
            fail(f"weight shape {w.shape} is not a matrix")
        w_codes = w.astype(np.int8)
        s_a = _scalar(model, a_dq.input[1], node, "input scale")
        s_w = _scalar(model, w_dq.input[1], node, "weight scale")
        a_zero = model.get_initializer(a_dq.input[2])
        a_signed = a_zero.dtype == np.int8
        s = s_a * s_w
        nodes, codes, bias_int = int32_accumulators(model, node, a_dq, w_codes, s, bias,
                                                    int(a_zero), bool(a_signed))
        _replace(model, [node, *old], nodes)
        return codes, w_codes, s, bias_int, bool(a_signed)

    def _conv(self, model, node, dag, bias_add, old, fail):
        """The convolution step's own lowering of ``node`` into a stand-in quantizer of scale
        ``s_a · s_w`` (so ``M · 2**-S`` folds to 1), its ``Requant`` then made int32."""
        from .conv import LowerConvolutions
        a_dq = model.find_producer(node.input[0])
        w_dq = model.find_producer(node.input[1])
        s_a = _scalar(model, a_dq.input[1], node, "input scale")
        s_w = _scalar(model, w_dq.input[1], node, "weight scale")
        tail = (bias_add or node).output[0]
        stand = f"{node.name}/acc_stand_in"
        scale = _const(model, f"{node.name}/acc_scale", np.asarray(s_a * s_w, np.float32))
        zero = _const(model, f"{node.name}/acc_zero", np.asarray(0, np.int8))
        q = helper.make_node("QuantizeLinear", [tail, scale, zero], [stand],
                             name=f"{node.name}/acc_quant")
        keep = [n for n in old if n is not bias_add]
        for n in keep:
            model.graph.node.remove(n)
        model.graph.node.insert(list(model.graph.node).index(bias_add or node) + 1, q)
        step = LowerConvolutions()
        step._new_pass()
        step._lower(model, node)
        rq = next(n for n in model.graph.node if stand in n.output)
        codes = f"{node.name}/acc_codes"
        wide = wide_requant(node, rq.input[0], codes)
        _replace(model, [rq], [wide])
        ic = next(n for n in model.graph.node if rq.input[0] in n.output)
        w = np.asarray(model.get_initializer(ic.input[1]))
        from hwsim.golden.common.conv_window import conv_weight_matrix
        g = {a.name: helper.get_attribute_value(a) for a in ic.attribute}
        mat = conv_weight_matrix(w.reshape(*w.shape[:2], g.get("kernel_size", 1),
                                           g.get("kernel_w", g.get("kernel_size", 1))),
                                 g.get("group", 1))
        bias_int = np.asarray(model.get_initializer(ic.input[2]), np.int64) \
            if len(ic.input) == 3 else None
        a_signed = model.get_initializer(a_dq.input[2]).dtype == np.int8
        return codes, mat, s_a * s_w, bias_int, bool(a_signed)
