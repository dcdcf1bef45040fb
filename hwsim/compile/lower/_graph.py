"""Graph helpers and constants shared by the lowering steps."""

from __future__ import annotations

import warnings

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import RemoveUnusedTensors
from qonnx.transformation.infer_shapes import InferShapes

from hwsim.compile import dialect
from hwsim.errors import HwsimError

#: width of the requantization multiplier ``M`` (relative error of ``M · 2**-S`` < 2**-23)
MULT_BITS = 24
#: domains of QONNX's quantizer nodes
_QUANT_DOMAINS = ("qonnx.custom_op.general", "onnx.brevitas")
#: nodes that may remain around the dialect ops: the graph's float ↔ code boundary
_BOUNDARY_OPS = ("QuantizeLinear", "DequantizeLinear", "Clip")
#: float32 unit roundoff
_U32 = 2.0 ** -24


# ------------------------------------------------------------------------------------------
# Graph helpers
def _scalar(model: ModelWrapper, name: str, node, what: str) -> float:
    value = model.get_initializer(name)
    if value is None:
        raise HwsimError(f"node {node.name!r}: {what} is not a constant")
    value = np.asarray(value)
    if value.size != 1:
        raise HwsimError(f"node {node.name!r}: {what} is not per-tensor (shape {value.shape}); "
                         "only per-tensor scales are lowered")
    return float(value.reshape(()))


def _quant_params(model: ModelWrapper, node, per_channel: bool = False
                  ) -> tuple[np.float32, int, bool, bool, int]:
    """``(scale, zero point, signed, narrow, width)`` of a QONNX ``Quant`` node, checked
    against the lowering's limits; ``per_channel``: the scale may be an array (float32, as
    the node holds it)."""
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if per_channel:
        scale = model.get_initializer(node.input[1])
        if scale is None:
            raise HwsimError(f"node {node.name!r}: scale is not a constant")
        scale = np.asarray(scale, np.float32)
        if scale.size == 1:
            scale = scale.reshape(())
    else:
        scale = _scalar(model, node.input[1], node, "scale")
    zero = _scalar(model, node.input[2], node, "zero point")
    width = _scalar(model, node.input[3], node, "bit width")
    rounding = attrs.get("rounding_mode", b"ROUND")
    rounding = rounding.decode() if isinstance(rounding, bytes) else rounding
    if zero != int(zero) or width != int(width) or rounding != "ROUND" \
            or not np.all(np.asarray(scale) > 0):
        raise HwsimError(f"Quant node {node.name!r}: only integer zero points and widths, "
                         f"ROUND rounding and positive scales are lowered")
    return (np.float32(scale) if np.ndim(scale) == 0 else scale, int(zero), bool(attrs.get("signed", 1)),
            bool(attrs.get("narrow", 0)), int(width))


def _code_range(width: int, signed: bool, narrow: bool) -> tuple[int, int]:
    qt = dialect.code_qtype(width, signed, narrow)
    return qt.min_code, qt.max_code


def _const(model: ModelWrapper, name: str, value: np.ndarray) -> str:
    model.set_initializer(name, np.asarray(value))
    return name


def _replace(model: ModelWrapper, old: list, new: list) -> None:
    """Put ``new`` nodes where the first of ``old`` was; remove ``old``."""
    graph = model.graph
    at = min(list(graph.node).index(n) for n in old)
    for n in old:
        graph.node.remove(n)
    for i, n in enumerate(new):
        graph.node.insert(at + i, n)


def _remove_dead_nodes(model: ModelWrapper) -> None:
    outputs = {o.name for o in model.graph.output}
    changed = True
    while changed:
        used = {i for n in model.graph.node for i in n.input} | outputs
        dead = [n for n in model.graph.node if not any(o in used for o in n.output)]
        for n in dead:
            model.graph.node.remove(n)
        changed = bool(dead)


def _refresh(model: ModelWrapper) -> ModelWrapper:
    """Drop stale value infos and unused tensors, then infer shapes and types again."""
    del model.graph.value_info[:]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.transform(RemoveUnusedTensors()).transform(InferShapes())


def _attention_nodes(model: ModelWrapper) -> set[str]:
    """Names of the nodes the front end annotated as ``softmax_attention``."""
    from hwsim.compile.patterns import patterns
    return {n for p in patterns(model) if p["pattern"] == "softmax_attention"
            for n in p["nodes"]}


def _is_quant(node) -> bool:
    return node.op_type == "Quant" and node.domain in _QUANT_DOMAINS


def _single_consumer(model: ModelWrapper, tensor: str, op_types: tuple[str, ...]):
    consumers = model.find_consumers(tensor) or []
    if len(consumers) == 1 and consumers[0].op_type in op_types \
            and tensor not in {o.name for o in model.graph.output}:
        return consumers[0]
    return None


def _reach(model: ModelWrapper, tensor: str) -> set[str]:
    """Every tensor computed from ``tensor`` (itself included)."""
    seen, todo = {tensor}, [tensor]
    while todo:
        for node in model.find_consumers(todo.pop()) or []:
            for out in node.output:
                if out and out not in seen:
                    seen.add(out)
                    todo.append(out)
    return seen


def run_moves(model: ModelWrapper, moves, index: np.ndarray) -> np.ndarray:
    """``index`` (an array of element numbers) moved by the data-movement nodes ``moves``
    (``Transpose``, ``Reshape``, ``Unsqueeze``, constant ``Tile``, ``Identity``) in order: where
    each element of their result comes from."""
    for n in moves:
        if n.op_type == "Transpose":
            perm = {a.name: helper.get_attribute_value(a) for a in n.attribute}.get("perm")
            index = np.transpose(index, list(perm) if perm is not None else None)
        elif n.op_type in ("Reshape", "Unsqueeze"):  # Unsqueeze: size-1 axes, a reshape
            index = index.reshape(model.get_tensor_shape(n.output[0]))
        elif n.op_type == "Tile":
            reps = model.get_initializer(n.input[1])
            if reps is None:
                raise HwsimError(f"node {n.name!r}: the Tile repeats are not constant")
            index = np.tile(index, [int(r) for r in np.asarray(reps).ravel()])
        # Identity: nothing
    return index


class Passes:
    """For an approximate step whose bound follows only some input deviations: a node whose
    input codes are computed from a node lowered in the same pass, along a path the bound does
    not follow (a float node still to be lowered, another kernel), waits for the next pass
    (:attr:`more` asks :func:`~hwsim.compile.lower.lower` to run the step again), where it is
    measured on inputs that no longer move. Call :meth:`_new_pass` first in ``apply``."""

    more = False

    def _new_pass(self) -> None:
        self.more = False
        self._moved: set[str] = set()

    def _waits(self, inputs, follows=()) -> bool:
        """Whether a node reading ``inputs`` waits; ``follows``: the tensors whose deviation
        the step's bound carries into the node's bound."""
        if any(t in self._moved and t not in follows for t in inputs):
            self.more = True
            return True
        return False

    def _lowered(self, model: ModelWrapper, out: str) -> None:
        """Record that ``out`` (a lowered node's output) now moves."""
        self._moved |= _reach(model, out)


# ------------------------------------------------------------------------------------------
# Steps
