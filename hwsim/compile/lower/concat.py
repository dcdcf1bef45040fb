"""The exact step that lowers ``Concat`` of quantized code tensors to ``IntConcat`` (kernel
``concat``), each input first rescaled to the output's codes by a ``LutAct`` table where its
quantizer differs."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect

from ._graph import _refresh, _remove_dead_nodes, _replace, _single_consumer
from .pointwise import LowerPointwise, _constants_scalar, _elem_type, _Pointwise

_CODES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


def _copy(node, **inputs):
    """A copy of ``node`` with input ``i`` renamed where ``inputs`` has ``"i"``."""
    new = onnx.NodeProto.FromString(node.SerializeToString())
    for i, name in inputs.items():
        new.input[int(i[1:])] = name
    return new


class LowerConcat(Transformation):
    """Exact: ``Concat`` of dequantized 8-bit code tensors becomes ``IntConcat`` nodes.

    * ``DequantizeLinear(c₁, s₁, z₁), … → Concat → QuantizeLinear(s, z) [→ Clip]``: each input
      becomes the codes the quantizer gives it — a ``LutAct`` whose table is
      ``DequantizeLinear(s₁, z₁) → QuantizeLinear(s, z) [→ Clip]`` run in onnxruntime on all
      256 codes (the exact rounded rescale ``x·s₁/s``, as :class:`LowerPointwise` builds its
      tables; no table where it is the identity: the input already has the output's
      quantizer) — and the rescaled codes are joined by ``IntConcat``. Quantizing is
      elementwise, so quantizing each part equals quantizing the whole: the step is exact.
    * ``DequantizeLinear(c₁, s, z), … → Concat`` with one scale and zero point on every
      input and no quantizer after it: ``IntConcat`` of the codes, then one
      ``DequantizeLinear(s, z)``.

    ``n > 2`` inputs become a chain of ``n − 1`` two-input ``IntConcat`` s. The axis is kept
    (the back end builds the one its stream order makes the vector axis). A ``Concat`` with
    another input (per-channel scales, codes wider than 8 bits, a float tensor) is left as it
    is.
    """

    exact = True

    @staticmethod
    def _inputs(model, cat) -> list | None:
        """The input ``DequantizeLinear`` nodes (per tensor, 8-bit codes), or None."""
        dqs = [model.find_producer(i) for i in cat.input]
        if len(dqs) < 2 or any(
                d is None or d.op_type != "DequantizeLinear" or len(d.input) < 3
                or model.get_initializer(d.input[0]) is not None
                or _elem_type(model, d.input[0]) not in _CODES
                or not _constants_scalar(model, d.input[1:]) for d in dqs):
            return None
        return dqs

    def apply(self, model):
        for cat in [n for n in model.graph.node if n.op_type == "Concat"]:
            dqs = self._inputs(model, cat)
            if dqs is None:
                continue
            q = _single_consumer(model, cat.output[0], ("QuantizeLinear",))
            if q is not None and len(q.input) == 3 and _elem_type(model, q.input[2]) in _CODES \
                    and _constants_scalar(model, q.input[1:]):
                self._requantized(model, cat, dqs, q)
            elif self._one_quantizer(model, dqs):
                self._direct(model, cat, dqs)
        _remove_dead_nodes(model)
        return _refresh(model), False

    @staticmethod
    def _one_quantizer(model, dqs) -> bool:
        def key(d):
            return (_elem_type(model, d.input[0]),
                    *(np.asarray(model.get_initializer(t)).reshape(()).item()
                      for t in d.input[1:3]))
        return len({key(d) for d in dqs}) == 1

    @staticmethod
    def _chain(cat, parts: list[str], out: str, signed: bool) -> list:
        """Two-input ``IntConcat`` s joining ``parts`` in order into ``out``."""
        axis = next((helper.get_attribute_value(a) for a in cat.attribute if a.name == "axis"),
                    0)
        nodes, left = [], parts[0]
        for k, right in enumerate(parts[1:], start=1):
            dst = out if k == len(parts) - 1 else f"{cat.output[0]}/part{k}"
            nodes.append(helper.make_node(
                "IntConcat", [left, right], [dst], domain=dialect.DOMAIN,
                name=f"{cat.name}/int{k}" if len(parts) > 2 else f"{cat.name}/int",
                kernel=dialect.IntConcat.KERNEL, axis=int(axis), signed=int(signed)))
            left = dst
        return nodes

    def _requantized(self, model, cat, dqs, q) -> None:
        clip = _single_consumer(model, q.output[0], ("Clip",))
        if clip is not None and not _constants_scalar(model, clip.input[1:]):
            return
        out = (clip or q).output[0]
        out_type = _elem_type(model, q.input[2])
        parts, new = [], []
        for k, dq in enumerate(dqs):
            rescaled = f"{cat.output[0]}/in{k}_codes"
            q_k = _copy(q, i0=dq.output[0])
            q_k.output[0] = rescaled if clip is None else f"{rescaled}_unclipped"
            clip_k = None if clip is None else _copy(clip, i0=q_k.output[0])
            if clip_k is not None:
                clip_k.output[0] = rescaled
            table, in_type, _ = LowerPointwise()._table(model, _Pointwise(dq, [], q_k, clip_k))
            lo = -128 if in_type == onnx.TensorProto.INT8 else 0
            if in_type == out_type and np.array_equal(table, np.arange(lo, lo + 256)):
                parts.append(dq.input[0])  # already the output's codes
                continue
            new.append(helper.make_node(
                "LutAct", [dq.input[0]], [rescaled], domain=dialect.DOMAIN,
                name=f"{cat.name}/rescale{k}", kernel=dialect.LutAct.KERNEL,
                table=[int(v) for v in table], in_width=8,
                in_signed=int(in_type == onnx.TensorProto.INT8), out_width=8,
                out_signed=int(out_type == onnx.TensorProto.INT8), function="Rescale"))
            parts.append(rescaled)
        new += self._chain(cat, parts, out, out_type == onnx.TensorProto.INT8)
        _replace(model, [cat, q] + ([clip] if clip is not None else []), new)

    def _direct(self, model, cat, dqs) -> None:
        codes = f"{cat.output[0]}_codes"
        signed = _elem_type(model, dqs[0].input[0]) == onnx.TensorProto.INT8
        new = self._chain(cat, [d.input[0] for d in dqs], codes, signed)
        new.append(helper.make_node("DequantizeLinear", [codes, *dqs[0].input[1:3]],
                                    [cat.output[0]], name=f"{cat.name}/dq"))
        _replace(model, [cat], new)
