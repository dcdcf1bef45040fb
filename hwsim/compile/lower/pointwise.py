"""The exact step that lowers unary activations between two quantizers to ``LutAct`` tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect

from ._graph import (
    _refresh,
    _remove_dead_nodes,
    _replace,
    _single_consumer,
)

#: nodes the table is computed from)
#: arithmetic with one scalar constant operand: a function of one tensor a table can hold
_CONST_ARITH = ("Add", "Sub", "Mul", "Div")
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

    @staticmethod
    def _unary(model, node) -> bool:
        """``node`` is a function of one tensor: an op of :data:`POINTWISE_OPS`, or
        ``Add``/``Sub``/``Mul``/``Div`` with one scalar constant operand."""
        if node.op_type in POINTWISE_OPS:
            return len(node.input) == 1 and len(node.output) == 1
        if node.op_type not in _CONST_ARITH or len(node.input) != 2:
            return False
        consts = [model.get_initializer(i) is not None and np.asarray(
            model.get_initializer(i)).size == 1 for i in node.input]
        return sum(consts) == 1

    def _chain(self, model, body: list) -> list:
        """``body`` extended by the unary nodes that follow it, each the only reader of the
        tensor before it (``Relu(x) · 0.5``, ``Sigmoid(x) − 0.5`` written ``Add``)."""
        while True:
            users = model.find_consumers(body[-1].output[0]) or []
            if len(users) != 1 or not self._unary(model, users[0]) \
                    or (users[0].op_type == "Sigmoid" and self._is_silu(model, users[0])):
                return body
            body.append(users[0])

    @staticmethod
    def _is_silu(model, sig) -> bool:
        mul = _single_consumer(model, sig.output[0], ("Mul",))
        return mul is not None and sorted(mul.input) == sorted([sig.input[0], sig.output[0]])

    def _match(self, model, node) -> _Pointwise | None:
        if node.op_type == "Mul" and self._unary(model, node):
            body = [node]
        elif node.op_type == "Mul":  # SiLU: Mul(x, Sigmoid(x))
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
        elif self._unary(model, node):
            if node.op_type == "Sigmoid" and self._is_silu(model, node):
                return None  # the SiLU's Mul takes it
            body = [node]
        else:
            return None
        x = next(i for i in body[0].input if model.get_initializer(i) is None)
        dq = model.find_producer(x)
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.input) < 2:
            return None
        if _elem_type(model, dq.input[0]) not in (onnx.TensorProto.INT8,
                                                  onnx.TensorProto.UINT8):
            return None
        body = self._chain(model, body)
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
            fn = "·".join("Silu" if n.op_type == "Mul" and not self._unary(model, n)
                          else n.op_type for n in match.body
                          if not (n.op_type == "Sigmoid" and self._is_silu(model, n)))
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
