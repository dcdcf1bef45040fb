"""Lowering a QONNX graph to the ``hwsim`` dialect, verified after every step (FINN style).

:func:`lower` applies named qonnx ``Transformation`` s in order (:data:`STEPS`) and executes
the graph with qonnx's ``execute_onnx`` after each one on the same inputs:

* an **exact** step (``exact = True``) must leave every graph output ``==`` the step before,
  else :class:`~hwsim.errors.HwsimError` names the step and the output;
* an **approximate** step (float scales turned into integer ``M · 2**-S``) reports, per code
  tensor it produces, the largest deviation from the step before in output LSBs (max
  ``|Δcode|``) next to the bound it proves for that node; a deviation above the bound raises.

The steps of the first lowering (Brevitas ``QuantLinear`` layers exported as QONNX,
``Quant(x) → MatMul/Gemm(Quant(W)) [+ bias] [→ Relu] → Quant(y)``):

1. :class:`QuantActivationsToCodes` (exact): each activation ``Quant`` becomes
   ``QuantizeLinear [→ Clip] → DequantizeLinear``: the integer codes appear as int8/uint8
   tensors, the float value is unchanged.
2. :class:`WeightQuantToCodes` (exact): each weight ``Quant`` (and a ``Transpose`` after it)
   becomes an int8 code initializer ``(in, out)`` and a ``DequantizeLinear``.
3. :class:`LowerLayerNorm` (approximate): ``DequantizeLinear → LayerNormalization →
   QuantizeLinear [→ Clip]`` on 8-bit codes becomes one ``IntLayerNorm`` (integer rsqrt,
   per-channel integer gains and offsets).
4. :class:`LowerLinearLayers` (approximate): ``MatMul/Gemm [+ bias] [→ Relu] → QuantizeLinear``
   on dequantized codes becomes ``IntMatMul → Requant`` (``TernaryMatMul → Requant`` for a
   2-bit narrow weight quantizer on signed activations without bias, e.g.
   :class:`quant.brevitas_quantizers.TernaryAbsmeanWeight`; bias rounded to accumulator units,
   ``s_a · s_w / s_y`` folded into ``M, S``); the dequantize nodes left without consumers go.
5. :class:`LowerConvolutions` (approximate): ``Conv [+ bias] [→ Relu] → QuantizeLinear`` on
   dequantized codes becomes ``IntConv → Requant`` (zero-point padding; the linear step's
   folding and bound on the im2col matrix).
6. :class:`LowerPointwise` (exact): a unary activation between two quantizers,
   ``DequantizeLinear → F → QuantizeLinear [→ Clip]`` on 8-bit codes (``F`` one of
   :data:`POINTWISE_OPS`, or SiLU written ``Mul(x, Sigmoid(x))``), becomes one ``LutAct``
   whose table is those very nodes executed by onnxruntime on all 256 input codes.
7. :class:`LowerElementwise` (approximate): ``Add|Mul`` of two dequantized code tensors
   ``[→ Relu] → QuantizeLinear [→ Clip]`` (residual adds, gates) becomes one ``IntEltwise``.
8. :class:`LowerAttention` (approximate): softmax attention between quantizers (head
   split/merge absorbed) becomes one ``IntAttention``.
9. :class:`LowerIntegerOnnx` (exact): the integer-ONNX idioms (:mod:`hwsim.compile.int_onnx`)
   become ``IntConv → Requant`` (half up, per channel) and ``SpabGate``.

What remains around the dialect ops after the full lowering is the graph boundary:
``QuantizeLinear`` (float → codes) at each input and ``DequantizeLinear`` (codes → float) at
each output.

Limits of this lowering: 8-bit activation quantizers, per-tensor scales, integer zero points
(0 for weights), ``ROUND`` (half-even) rounding, each layer's result read by one quantizer.
Anything else, and any compute node left outside the dialect after the full lowering, raises
:class:`~hwsim.errors.HwsimError` naming the node.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp

from hwsim.compile import dialect
from hwsim.errors import HwsimError

from ._graph import _BOUNDARY_OPS, MULT_BITS, _refresh
from .attention import LowerAttention
from .bn_pool import AveragePoolToConv, FoldBatchNorm
from .codes import QuantActivationsToCodes, WeightQuantToCodes
from .concat import LowerConcat
from .conv import LowerConvolutions
from .eltwise import LowerElementwise
from .flatten import DropRequantize, HoistFlatten, LowerFloatHead, OrderFlatten
from .int_onnx import LowerIntegerOnnx, host_tail
from .layernorm import LowerLayerNorm
from .lif import LowerLif
from .linear import LowerLinearLayers
from .maxpool import LowerMaxPool
from .mha import FoldProjectionScales, SinkHeadMoves, TableRequantizers
from .pointwise import POINTWISE_OPS, LowerPointwise
from .rmsnorm import LowerRmsNorm
from .rope import LowerRotary, SinkRotaryMoves
from .square import LowerSquare
from .threshold import LowerThresholdActivations
from .windows import DropCodeReshapes, HoistCodeReshapes, LowerWindowAttention

__all__ = ["MULT_BITS", "POINTWISE_OPS", "STEPS", "AveragePoolToConv", "DropCodeReshapes",
           "DropRequantize", "FoldBatchNorm", "HoistCodeReshapes", "HoistFlatten",
           "LowerAttention", "LowerConcat", "LowerConvolutions", "LowerElementwise",
           "LowerFloatHead",
           "LowerIntegerOnnx", "LowerLayerNorm", "LowerLif", "LowerLinearLayers",
           "LowerMaxPool",
           "LowerPointwise", "LowerRmsNorm", "LowerSquare", "LowerThresholdActivations",
           "LowerWindowAttention",
           "LoweringReport", "OrderFlatten", "QuantActivationsToCodes", "StepReport",
           "WeightQuantToCodes",
           "check_lowered", "lower"]
__all__ += ["FoldProjectionScales", "LowerRotary", "SinkHeadMoves", "SinkRotaryMoves",
            "TableRequantizers"]


#: the full lowering, in order
STEPS = (QuantActivationsToCodes, WeightQuantToCodes, FoldBatchNorm, AveragePoolToConv,
         LowerMaxPool, SinkHeadMoves, FoldProjectionScales, HoistCodeReshapes, LowerConcat,
         DropRequantize, LowerRotary, SinkRotaryMoves, HoistFlatten, LowerLif,
         LowerLayerNorm, LowerRmsNorm, LowerThresholdActivations,
         LowerFloatHead, LowerLinearLayers, LowerConvolutions,
         OrderFlatten, TableRequantizers, LowerPointwise,
         LowerSquare, LowerElementwise, LowerWindowAttention, LowerAttention,
         LowerIntegerOnnx, DropCodeReshapes)


def check_lowered(model: ModelWrapper) -> None:
    """Raise :class:`HwsimError` naming the first compute node outside the dialect (nodes of
    the float ↔ code boundary and the host's trailing data movement aside)."""
    tail = {n.name for n in host_tail(model)}
    for node in model.graph.node:
        if node.domain != dialect.DOMAIN and node.op_type not in _BOUNDARY_OPS \
                and node.name not in tail:
            raise HwsimError(f"cannot lower {node.op_type} node {node.name!r}: no hwsim "
                             "dialect op implements it yet")


# ------------------------------------------------------------------------------------------
# Driver
@dataclass
class StepReport:
    """One step's verification: ``equal`` (every graph output ``==`` the step before);
    for an approximate step ``max_lsb`` and ``bound_lsb`` per code tensor it produced."""

    name: str
    exact: bool
    equal: bool
    max_lsb: dict[str, int] = field(default_factory=dict)
    bound_lsb: dict[str, int] = field(default_factory=dict)


@dataclass
class LoweringReport:
    """Every step's :class:`StepReport`, in order."""

    steps: list[StepReport]

    @property
    def max_lsb(self) -> int:
        """The largest code deviation any step introduced."""
        return max((v for s in self.steps for v in s.max_lsb.values()), default=0)

    def step(self, name: str) -> StepReport:
        """The report of the step named ``name`` (its class name)."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"steps": [vars(s) for s in self.steps], "max_lsb": self.max_lsb}


def _execute(model: ModelWrapper, inputs: list[dict]) -> list[dict]:
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return [execute_onnx(model, x, return_full_exec_context=True) for x in inputs]


def _default_inputs(model: ModelWrapper, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [{i.name: rng.standard_normal(model.get_tensor_shape(i.name)).astype(np.float32)
             for i in model.graph.input}]


def lower(model, steps=None, verify_inputs: list[dict] | None = None
          ) -> tuple[ModelWrapper, LoweringReport]:
    """Lower ``model`` (a path, ``onnx.ModelProto`` or ``ModelWrapper`` of a QONNX graph) by
    ``steps`` (transformation instances; default: one of each of :data:`STEPS`), executing
    the graph on ``verify_inputs`` (input dicts; default one seeded normal sample) after
    every step; after the full lowering (``steps=None``) no compute node may remain outside
    the dialect (:func:`check_lowered`). Returns the lowered ``ModelWrapper`` (domain
    :data:`dialect.DOMAIN` imported) and the :class:`LoweringReport`. Raises
    :class:`HwsimError` where a step cannot lower a node, breaks an exact step's ``==``, passes
    its proven bound, or leaves a dialect node that fails its ``verify_node``."""
    if not isinstance(model, ModelWrapper):
        model = ModelWrapper(model if isinstance(model, onnx.ModelProto) else str(model))
    model = ModelWrapper(onnx.ModelProto.FromString(model.model.SerializeToString()))
    if dialect.DOMAIN not in {o.domain for o in model.model.opset_import}:
        model.model.opset_import.append(helper.make_opsetid(dialect.DOMAIN, dialect.OPSET))
    model = _refresh(model)
    inputs = verify_inputs if verify_inputs is not None else _default_inputs(model)
    names = {i.name for i in model.graph.input}
    for x in inputs:  # qonnx runs a graph input it is not given on zeros, silently
        if set(x) != names:
            raise HwsimError(f"verify inputs name {sorted(x)}, the graph's inputs are "
                             f"{sorted(names)}")
    full = steps is None
    steps = [s() for s in STEPS] if full else list(steps)
    before = _execute(model, inputs)
    reports = []
    queue = list(steps)
    passes: dict[str, int] = {}
    while queue:
        step = queue.pop(0)
        name = type(step).__name__
        passes[name] = passes.get(name, 0) + 1
        if passes[name] > 1:
            name = f"{name} (pass {passes[name]})"
        if hasattr(step, "calibrate"):  # a step that sizes formats from the data it sees
            step.calibrate(before)
        model = model.transform(step)
        if getattr(step, "more", False):  # nodes deferred to a pass of their own: run again
            queue.insert(0, step)
        after = _execute(model, inputs)
        outputs = [o.name for o in model.graph.output]
        equal = all(np.array_equal(b[o], a[o]) for b, a in zip(before, after, strict=True) for o in outputs)
        report = StepReport(name, bool(step.exact), equal)
        if step.exact and not equal:
            raise HwsimError(f"lowering step {name} changed the graph outputs")
        if not step.exact:
            report.bound_lsb = dict(step.bounds)
            for tensor in step.bounds:
                diffs = [np.max(np.abs(a[tensor].astype(np.int64) - b[tensor].astype(np.int64)),
                                initial=0) for b, a in zip(before, after, strict=True)]
                report.max_lsb[tensor] = int(max(diffs))
                if report.max_lsb[tensor] > report.bound_lsb[tensor]:
                    raise HwsimError(f"lowering step {name}: {tensor} deviates by "
                                     f"{report.max_lsb[tensor]} LSB, above its bound "
                                     f"{report.bound_lsb[tensor]}")
        reports.append(report)
        before = after
    if full:
        check_lowered(model)
    for node in model.graph.node:
        problems = getCustomOp(node).verify_node() if node.domain == dialect.DOMAIN else []
        if problems:
            raise HwsimError(f"lowered node {node.name!r} is invalid: {problems[0]}")
    return model, LoweringReport(reports)
