"""The exact step that lowers the integer-ONNX idioms (:mod:`hwsim.compile.int_onnx`)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from qonnx.transformation.base import Transformation

from hwsim.compile import dialect
from hwsim.compile.int_onnx import DATA_MOVEMENT, code_source, match_conv, match_gate
from hwsim.errors import HwsimError

from ._graph import _const, _refresh, _remove_dead_nodes, _replace

__all__ = ["LowerIntegerOnnx", "host_tail"]


def _elem_type(model, tensor: str) -> int | None:
    for vi in (*model.graph.input, *model.graph.value_info, *model.graph.output):
        if vi.name == tensor:
            return vi.type.tensor_type.elem_type
    return None


def _uint8_codes(model, tensor: str, node) -> str:
    src = code_source(model, tensor)[0]
    if _elem_type(model, src) != TensorProto.UINT8:
        raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: its input {tensor!r} "
                         "is not (a cast of) uint8 codes")
    return src


def _widen(model, codes: str, out: str, name: str):
    """``Cast(codes → int64)`` writing the idiom's old int64 tensor (its readers stay valid);
    ``codes`` is recorded as uint8 for the next match."""
    model.graph.value_info.append(helper.make_tensor_value_info(codes, TensorProto.UINT8, None))
    return helper.make_node("Cast", [codes], [out], name=name, to=TensorProto.INT64)


def host_tail(model) -> list:
    """The data movement (``Reshape``/``Transpose``/``DepthToSpace``, ``Cast`` of codes) between
    the last compute node and the graph output's ``DequantizeLinear``, in graph order: the
    host runs it on the design's output codes."""
    gout = {o.name for o in model.graph.output}
    dq = next((n for n in model.graph.node if n.op_type == "DequantizeLinear"
               and n.output[0] in gout), None)
    chain, tensor = [], dq.input[0] if dq is not None else None
    while tensor is not None:
        p = model.find_producer(tensor)
        if p is None or p.op_type not in (*DATA_MOVEMENT, "Cast") \
                or len(model.find_consumers(tensor) or []) > 1:
            break
        chain.insert(0, p)
        tensor = p.input[0]
    return chain if any(n.op_type != "Cast" for n in chain) else []


class LowerIntegerOnnx(Transformation):
    """Exact: the integer-ONNX idioms become dialect ops.

    * ``[Pad(z_in)] → ConvInteger → Cast → [Add(bias)] → requantizer`` becomes ``IntConv``
      (``pad_code`` = ``z_in``, bias ``b − z_in·ΣW``) → ``Requant`` (``rounding`` half_up,
      ``zero_point`` z, one ``(M, S)`` per output channel on ``axis`` 1): the idiom computes
      ``clip(floor((acc·M + (z << S) + 2**(S−1)) / 2**S), 0, 255)`` (its ``Max(0)`` only
      turns what would clip to 0 into 0) = ``clip(round_half_up(acc·M·2**-S) + z, 0, 255)``;
    * the SPAB gate idiom becomes ``SpabGate`` (kernel ``swiftchannel-gate``);
    * ``Cast`` nodes between uint8 codes go; the trailing data movement (a PixelShuffle's
      ``Reshape``/``Transpose``) then works on the uint8 codes, at the graph boundary;
    * a graph output that only feeds the output ``DequantizeLinear`` (the codes beside the
      real values) stops being an output.

    A ``ConvInteger`` or ``Gather`` outside these idioms raises :class:`HwsimError` naming it.
    A graph without them passes unchanged.
    """

    exact = True

    def apply(self, model):
        convs = [n for n in model.graph.node if n.op_type == "ConvInteger"]
        gathers = [n for n in model.graph.node if n.op_type == "Gather"]
        if not convs and not gathers:
            return model, False
        for node in [n for n in model.graph.node if n.op_type in ("ConvInteger", "Gather")]:
            (self._conv if node.op_type == "ConvInteger" else self._gate)(model, node)
        for _ in range(2):  # the second pass sees the types the first one changed
            model = _refresh(model)
            self._drop_casts(model)
            _remove_dead_nodes(model)
        self._drop_code_outputs(model)
        return _refresh(model), False

    def _conv(self, model, node) -> None:
        m = match_conv(model, node)
        if m is None:
            raise HwsimError(f"cannot lower ConvInteger node {node.name!r}: not the integer-ONNX "
                             "convolution idiom ([Pad] → ConvInteger → Cast → Add → requantizer)")
        src = _uint8_codes(model, m.src, node)
        w = np.asarray(m.w, np.int8)
        bias = m.bias - m.z_in * w.astype(np.int64).sum(axis=(1, 2, 3))
        if np.abs(bias).max(initial=0) >= 1 << 31:
            raise HwsimError(f"cannot lower ConvInteger node {node.name!r}: bias outside int32")
        name = node.name
        inputs = [src, _const(model, f"{name}/w_codes", w),
                  _const(model, f"{name}/bias_acc", bias.astype(np.int32))]
        acc, codes = f"{name}/acc", f"{name}/codes"
        conv = helper.make_node("IntConv", inputs, [acc], domain=dialect.DOMAIN,
                                name=f"{name}/int", kernel=dialect.IntConv.KERNEL, a_width=8,
                                a_signed=0, w_narrow=int(w.min(initial=0) > -128),
                                kernel_size=int(w.shape[2]), stride=1, pad=int(m.pad), group=1,
                                pad_code=int(m.z_in))
        rq = m.requant
        scales = ({"multipliers": [int(v) for v in rq.mult], "shifts": [int(v) for v in rq.shift],
                   "axis": 1} if rq.per_channel else
                  {"multiplier": int(rq.mult[0]), "shift": int(rq.shift[0])})
        requant = helper.make_node("Requant", [acc], [codes], domain=dialect.DOMAIN,
                                   name=f"{name}/requant", width=8, signed=0, narrow=0,
                                   zero_point=int(rq.zero_point), rounding="half_up", **scales)
        _replace(model, m.nodes, [conv, requant, _widen(model, codes, rq.out, f"{name}/widen")])

    def _gate(self, model, node) -> None:
        m = match_gate(model, node)
        if m is None:
            raise HwsimError(f"cannot lower Gather node {node.name!r}: not the SPAB gate idiom "
                             "of the swiftchannel-gate kernel (its LUT, index and requantizer)")
        x, c = _uint8_codes(model, m.x, node), _uint8_codes(model, m.c, node)
        name = node.name
        codes = f"{name}/gate"
        gate = helper.make_node("SpabGate", [x, c], [codes], domain=dialect.DOMAIN,
                                name=f"{name}/spab_gate", kernel=dialect.SpabGate.KERNEL,
                                **{f: int(getattr(m, f)) for f in dialect.SpabGate.FIELDS})
        _replace(model, m.nodes, [gate, _widen(model, codes, m.out, f"{name}/widen")])

    @staticmethod
    def _drop_casts(model) -> None:
        """Readers of a ``Cast`` chain that starts at uint8 codes read the codes; a chain
        ending in a graph output is cut at its last node, which then writes that output."""
        gout = {o.name for o in model.graph.output}
        for node in list(model.graph.node):
            if node.op_type != "Cast" or node not in model.graph.node:
                continue
            src = code_source(model, node.output[0])[0]
            if _elem_type(model, src) != TensorProto.UINT8:
                continue
            if node.output[0] in gout:
                p = model.find_producer(node.input[0])
                if p is None or helper.get_attribute_value(node.attribute[0]) != TensorProto.UINT8:
                    continue
                p.output[list(p.output).index(node.input[0])] = node.output[0]
                for r in model.find_consumers(node.input[0]) or []:
                    r.input[:] = [node.output[0] if i == node.input[0] else i for i in r.input]
                model.graph.node.remove(node)
                continue
            for r in model.find_consumers(node.output[0]) or []:
                r.input[:] = [src if i == node.output[0] else i for i in r.input]

    @staticmethod
    def _drop_code_outputs(model) -> None:
        gout = {o.name for o in model.graph.output}
        for n in model.graph.node:
            if n.op_type == "DequantizeLinear" and n.output[0] in gout and n.input[0] in gout:
                out = next(o for o in model.graph.output if o.name == n.input[0])
                model.graph.output.remove(out)
