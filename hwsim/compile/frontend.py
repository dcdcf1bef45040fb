"""Front end of the ONNX compiler: read a QONNX or QCDQ file, bring it to one clean form and
say which of its nodes hwsim can build.

* :func:`load` — :func:`quant.onnx.check` (the file is untrusted), qonnx cleanup (shapes
  inferred, constants folded, unique readable names), QCDQ (``QuantizeLinear`` / ``Clip`` /
  ``DequantizeLinear``) turned into QONNX ``Quant`` nodes by qonnx's ``QCDQToQuant``, the
  default opset raised to :data:`OPSET` (``onnx.version_converter``) and the decomposed ops of
  opset-13 exports fused back (:data:`PATTERNS`). One form flows on. ``Gemm`` stays ``Gemm``:
  qonnx 1.0's ``GemmToMatMul`` ends with ``RemoveIdentityOps`` over the whole graph, whose
  tolerance (1e-5) deletes a LayerNorm's ``Add(eps=1e-5)``.
* :data:`SUPPORTED`, :func:`unsupported`, :func:`check_supported` — the op set hwsim compiles.
* :func:`summary` — one row per node: name, op type, supported, pattern.

Pattern recognition (:mod:`hwsim.compile.patterns`: named qonnx transformations, each keeping the
graph executable):

========================  =====================================================  ======================
transformation            decomposed form (any operand order)                    result
========================  =====================================================  ======================
:class:`FuseGeluErf`      ``x * 0.5 * (1 + Erf(x / √2))``                        ``Gelu``
:class:`FuseLayerNorm`    ``(x - mean) / Sqrt(var + eps) * gamma + beta``        ``LayerNormalization``
:class:`FuseRMSNorm`      ``x / Sqrt(mean(x²) + eps) * gamma`` (or               ``RMSNormalization``
                          ``x * Reciprocal(Sqrt(…))``, ``x * (1 / Sqrt(…))``)
:class:`FuseRotary`       ``x * cos + Concat(-x₂, x₁) * sin`` (rotate-half)      ``RotaryEmbedding``
:class:`MarkReluSquared`  ``Pow(r, 2)`` or ``Mul(r, r)``, ``r = Relu(x)``         annotation
:class:`MarkAttention`    ``MatMul → [scale, mask] → Softmax → MatMul``          annotation
                          (``Quant`` nodes may sit between)
:class:`MarkAbsmaxQuant`  ``ReduceMax(Abs(x)) → Clip → Div`` as ``Quant`` scale  annotation
:class:`MarkKvRepeat`     ``Unsqueeze → Tile → Reshape`` (GQA head repeat)       annotation
:class:`MarkLif`          ``Floor`` leak, ``Clip``, ``Greater`` spike, reset     annotation
========================  =====================================================  ======================

Before these, :class:`~hwsim.compile.attention_op.DecomposeAttention` writes an opset-23
``Attention`` node out as the softmax-attention nodes :class:`MarkAttention` and
:class:`MarkKvRepeat` then annotate (recorded as ``attention_op``).

Every recognised pattern is recorded in the model's metadata property :data:`PATTERNS_KEY`, a
JSON list of ``{"pattern": name, "nodes": [node names]}`` (for a fusion, ``nodes`` is the one
fused node and ``"from"`` lists the nodes it replaced). ONNX has no ReLU², dynamic-quantizer or
head-repeat or LIF op, and softmax attention with quantizers between its MatMuls has no exact single
standard op, so those stay as they are and are only annotated; ``Where`` (mask), ``Abs``,
``ReduceMax``, ``Clip``, ``Div`` by a tensor (dynamic quantizer), ``Tile`` (head repeat) and
``Floor``, ``Greater``, ``Cast``, ``Sub`` (LIF neuron) are supported only inside their annotated
pattern.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
from onnx import helper
from qonnx.transformation.base import Transformation

from hwsim.compile.int_onnx import IN_PATTERN
from hwsim.compile.patterns import (
    PATTERNS,
    PATTERNS_KEY,
    FuseGeluErf,
    FuseLayerNorm,
    FuseRMSNorm,
    FuseRotary,
    MarkAbsmaxQuant,
    MarkAttention,
    MarkKvRepeat,
    MarkLif,
    MarkReluSquared,
    constant,
    fresh_name,
    pattern_owners,
    patterns,
    quiet,
    recognise,
)
from hwsim.errors import HwsimError
from quant.onnx import QONNX_DOMAIN, check

__all__ = ["OPSET", "PATTERNS", "PATTERNS_KEY", "SUPPORTED", "FoldAllConstants", "FuseGeluErf",
           "FuseLayerNorm", "FuseRMSNorm", "FuseRotary", "MarkAbsmaxQuant", "MarkAttention",
           "MarkKvRepeat", "MarkLif", "MarkReluSquared", "ReadableTensorNames", "UniqueNodeNames",
           "check_supported", "load", "patterns", "recognise", "summary", "unsupported"]

#: default-domain opset of a loaded model: ``RMSNormalization``, ``Attention`` and
#: ``RotaryEmbedding`` need 23 (``Gelu`` 20, ``LayerNormalization`` 17)
OPSET = 23

#: op types hwsim compiles (QONNX quantizers, compute ops, data movement). ``Erf`` is not here:
#: it is supported only as part of GELU, which :func:`load` rewrites to ``Gelu``; ops that are
#: supported only inside an annotated pattern are listed in ``_IN_PATTERN``.
SUPPORTED = frozenset({
    "Quant", "BipolarQuant", "Trunc",
    "MatMul", "Gemm", "Conv", "Add", "Sub", "Mul", "Div", "Relu", "Sigmoid", "Gelu", "Softmax",
    "Tanh", "HardSigmoid", "HardSwish", "LeakyRelu", "Elu", "Softplus", "Softsign",
    "LayerNormalization", "RMSNormalization", "Attention", "RotaryEmbedding",
    "Reshape", "Transpose", "Concat", "Slice", "Flatten", "Squeeze", "Unsqueeze",
    "DepthToSpace", "Constant", "Identity",
})
#: 2-D max pooling on a quantized tensor (square kernel, equal strides and pads, no dilation,
#: ceil_mode 0): lowered exactly to IntMaxPool on codes (hwsim.compile.lower.maxpool)
SUPPORTED = SUPPORTED | {"MaxPool"}
# inputs (by position) that must be constants for the op to be supported: Div only by a
# constant; data movement only with a static shape, slice or axes
_CONSTANT_INPUTS = {"Div": (1,), "Reshape": (1,), "Slice": (1, 2, 3, 4), "Squeeze": (1,),
                    "Unsqueeze": (1,)}
# folded into the layer before it / rewritten as a depthwise Conv (hwsim.compile.lower.bn_pool)
SUPPORTED = SUPPORTED | {"BatchNormalization", "AveragePool", "GlobalAveragePool"}

#: op types supported only as part of a recognised pattern (beyond :data:`SUPPORTED`): the
#: causal mask of attention, the per-row absmax activation quantizer, grouped-query head
#: repeat, the integer LIF neuron step, ReLU²'s square written ``Pow(r, 2)``
_IN_PATTERN = {"Where": {"softmax_attention"}, "Abs": {"absmax_quant"},
               "ReduceMax": {"absmax_quant"}, "Clip": {"absmax_quant", "lif"},
               "Div": {"absmax_quant"}, "Tile": {"kv_repeat"}, "Floor": {"lif"},
               "Greater": {"lif"}, "Cast": {"lif"}, "Sub": {"lif"}, "Pow": {"relu_squared"}}
for _op, _names in IN_PATTERN.items():  # the integer-ONNX idioms (hwsim.compile.int_onnx)
    _IN_PATTERN[_op] = _IN_PATTERN.get(_op, set()) | _names

PathOrModel = str | Path | onnx.ModelProto



class UniqueNodeNames(Transformation):
    """Keep every node's name from the file where it is set and unique (so errors and reports
    name nodes as the exporter and Netron show them); give the others ``<OpType>_<i>``."""

    def apply(self, model):
        seen = Counter(n.name for n in model.graph.node if n.name)
        taken = set(seen)
        for n in model.graph.node:
            if n.name and seen[n.name] == 1:
                continue
            n.name = fresh_name(model, n.op_type, taken)
            taken.add(n.name)
        return model, False


class ReadableTensorNames(Transformation):
    """qonnx's ``GiveReadableTensorNames`` naming (``<node>_out<k>``, ``<node>_param<k>``,
    ``global_in``, ``global_out``), applied to every use of a tensor at once: qonnx 1.0's
    ``rename_tensor`` renames only the first use within a node, which leaves ``Mul(x, x)``
    reading an undefined tensor. Run after :class:`UniqueNodeNames`."""

    def apply(self, model):
        graph, new = model.graph, {}
        for k, t in enumerate(graph.input):
            new[t.name] = "global_in" if k == 0 else f"global_in_{k}"
        for k, t in enumerate(graph.output):
            new[t.name] = "global_out" if k == 0 else f"global_out_{k}"
        for n in graph.node:
            for k, o in enumerate(n.output):
                new.setdefault(o, f"{n.name}_out{k}")
            params = [i for i in n.input if i not in new and model.get_initializer(i) is not None]
            for k, i in enumerate(dict.fromkeys(params)):
                new[i] = f"{n.name}_param{k}"
        for items in (graph.input, graph.output, graph.value_info, graph.initializer):
            for t in items:
                t.name = new.get(t.name, t.name)
        for a in graph.quantization_annotation:
            a.tensor_name = new.get(a.tensor_name, a.tensor_name)
        for n in graph.node:
            n.input[:] = [new.get(i, i) for i in n.input]
            n.output[:] = [new.get(o, o) for o in n.output]
        return model, False


class FoldAllConstants(Transformation):
    """qonnx's ``FoldConstants`` (a node whose inputs are all constant, a ``Shape`` of a fully
    known shape or a node without inputs becomes an initializer; quantizers in ``exclude``
    stay), all foldable nodes in one topological pass, shapes re-inferred between passes.
    qonnx 1.0 folds one node per pass and re-infers shapes after each, which takes tens of
    seconds on an unfolded torch export."""

    def __init__(self, exclude: Iterable[str]):
        super().__init__()
        self.exclude = frozenset(exclude)

    def apply(self, model):
        import qonnx.core.onnx_exec as oxe
        from qonnx.transformation.infer_shapes import InferShapes

        opset = model.model.opset_import[0].version
        context = model.make_empty_exec_context()
        folded = []
        for n in model.graph.node:
            if n.op_type in self.exclude:
                continue
            shape = model.get_tensor_shape(n.input[0]) if n.op_type == "Shape" else None
            static_shape = bool(shape) and all(isinstance(d, int) and d > 0 for d in shape)
            if not static_shape and any(model.get_initializer(i) is None for i in n.input if i):
                continue
            if static_shape:  # from the inferred shape, not from the (empty) context
                attrs = {a.name: a.i for a in n.attribute}
                context[n.output[0]] = np.array(shape[attrs.get("start", 0):attrs.get("end")],
                                                dtype=np.int64)
            else:
                for i in n.input:
                    if i:
                        model.get_tensor_shape(i, fix_missing_init_shape=True)
                oxe.execute_node(n, context, model.graph, opset_version=opset)
            for o in n.output:
                model.set_initializer(o, context[o])
            folded.append(n)
        for n in folded:
            model.graph.node.remove(n)
        if folded:
            model = quiet(model.transform, InferShapes())
        return model, bool(folded)


def _cleanup(model):
    """qonnx's ``cleanup_model`` steps (quantizers kept), with the faster folding and the
    readable names above."""
    from qonnx.transformation.general import (
        GiveUniqueParameterTensors,
        RemoveStaticGraphInputs,
        RemoveUnusedTensors,
    )
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.transformation.quant_constant_folding import FoldTransposeIntoQuantInit

    for node in model.graph.node:  # Brevitas writes its own domain on QONNX quantizers
        if node.op_type in ("Quant", "BipolarQuant", "Trunc"):
            node.domain = QONNX_DOMAIN
    keep = ["Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear"]
    for step in (InferShapes(), GiveUniqueParameterTensors(), FoldAllConstants(keep),
                 FoldTransposeIntoQuantInit(), RemoveUnusedTensors(), RemoveStaticGraphInputs(),
                 UniqueNodeNames(), ReadableTensorNames()):
        model = quiet(model.transform, step)
    return model


def _per_channel_weights_broadcast(model):
    """A standalone ``DequantizeLinear`` of constant codes with a 1-D per-channel scale (``axis``)
    gets its scale and zero point reshaped to broadcast against the codes and its ``axis``
    dropped: the form of a QONNX ``Quant``'s per-channel scale, which qonnx's ``QCDQToQuant``
    turns it into next (it folds such a node before it reads ``axis``)."""
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or len(node.input) != 3:
            continue
        codes, scale, zero = (model.get_initializer(i) for i in node.input)
        if codes is None or scale is None or zero is None or scale.ndim != 1 \
                or scale.size < 2 or codes.ndim < 1:
            continue
        attrs = {a.name: a for a in node.attribute}
        axis = attrs["axis"].i if "axis" in attrs else 1
        axis = axis + codes.ndim if axis < 0 else axis
        if not 0 <= axis < codes.ndim or codes.shape[axis] != scale.size:
            continue
        shape = [1] * codes.ndim
        shape[axis] = scale.size
        model.set_initializer(node.input[1], scale.reshape(shape))
        model.set_initializer(node.input[2], np.broadcast_to(zero, scale.shape).reshape(shape))
        if "axis" in attrs:
            node.attribute.remove(attrs["axis"])
    return model


def _explicit_zero_points(model):
    """``QuantizeLinear`` / ``DequantizeLinear`` without a zero point (ONNX's default: 0, of
    type uint8 for ``QuantizeLinear``, of the codes' type for ``DequantizeLinear``) get it as an
    explicit constant: qonnx's ``QCDQToQuant`` reads three inputs."""
    from onnx import TensorProto
    for node in model.graph.node:
        if node.op_type not in ("QuantizeLinear", "DequantizeLinear") \
                or (len(node.input) > 2 and node.input[2]):
            continue
        codes = model.get_initializer(node.input[0])
        if node.op_type == "QuantizeLinear":
            dtype = np.uint8
        elif codes is not None:
            dtype = codes.dtype
        else:
            dtype = helper.tensor_dtype_to_np_dtype(_elem_type(model, node.input[0])
                                                    or TensorProto.UINT8)
        name = f"{node.name or node.output[0]}_zero_point"
        model.set_initializer(name, np.zeros((), dtype))
        del node.input[2:]
        node.input.append(name)
    return model


def _elem_type(model, name: str) -> int | None:
    for vi in [*model.graph.input, *model.graph.value_info, *model.graph.output]:
        if vi.name == name:
            return vi.type.tensor_type.elem_type
    return None


def _raise_opset(model):
    """``model`` with its default-domain opset raised to :data:`OPSET` (default domain listed
    first, as qonnx's constant folding reads ``opset_import[0]``; the QONNX domain imported
    where its nodes are used)."""
    from qonnx.core.modelwrapper import ModelWrapper

    proto = model.model
    domains = {o.domain for o in proto.opset_import}
    if QONNX_DOMAIN not in domains and any(n.domain == QONNX_DOMAIN for n in proto.graph.node):
        proto.opset_import.append(helper.make_opsetid(QONNX_DOMAIN, 1))  # QCDQToQuant adds none
    current = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                  default=OPSET)
    if current < OPSET:
        try:
            proto = onnx.version_converter.convert_version(proto, OPSET)
        except Exception as e:  # the converter raises plain RuntimeError / ValueError
            line = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise HwsimError(f"cannot convert ONNX model to opset {OPSET}: {line}") from None
    imports = sorted(proto.opset_import, key=lambda o: o.domain not in ("", "ai.onnx"))
    del proto.opset_import[:]
    proto.opset_import.extend(imports)
    return ModelWrapper(proto)


def _check_outputs_computed(graph) -> None:
    """Every graph output must be computed by a node: an output that is an initializer or a
    graph input is what a Brevitas ``forward`` returning a ``QuantTensor`` exports (its scale,
    zero point and bit width as extra outputs)."""
    made = {o for n in graph.node for o in n.output}
    for out in graph.output:
        if out.name not in made:
            raise HwsimError(f"graph output {out.name!r} is not computed by any node (a "
                             "model returning a Brevitas QuantTensor exports its scale, zero "
                             "point and bit width as outputs: return a plain tensor)")


def load(path_or_model: PathOrModel, *, fuse: bool = True):
    """The model at ``path_or_model`` (a path or an ``onnx.ModelProto``) as a clean qonnx
    ``ModelWrapper``: checked by :func:`quant.onnx.check` (a malformed file is one
    :class:`HwsimError` line), cleaned by qonnx (shapes, folded constants, unique node names:
    the file's where set, else ``OpType_i``), QCDQ → QONNX ``Quant``, opset :data:`OPSET`; with
    ``fuse`` (default) the :data:`PATTERNS` are recognised too (:func:`recognise`)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.qcdq_to_qonnx import QCDQToQuant

    proto = onnx.ModelProto()
    proto.CopyFrom(check(path_or_model))  # the caller's model stays as it was
    _check_outputs_computed(proto.graph)
    model = _per_channel_weights_broadcast(_explicit_zero_points(_cleanup(ModelWrapper(proto))))
    model = quiet(model.transform, QCDQToQuant())
    model = _cleanup(_raise_opset(model))
    return recognise(model) if fuse else model


# --- support ---------------------------------------------------------------------------------

def _node_supported(model, node, owner: dict[str, str] | None = None) -> bool:
    """Whether hwsim compiles ``node``; ``owner``: node name → recognised pattern (default:
    read from ``model``)."""
    if node.op_type in _IN_PATTERN:
        owner = pattern_owners(model) if owner is None else owner
        if owner.get(node.name) in _IN_PATTERN[node.op_type]:
            return True
    if node.op_type not in SUPPORTED:
        return False
    return all(i >= len(node.input) or not node.input[i] or constant(model, node.input[i])
               is not None for i in _CONSTANT_INPUTS.get(node.op_type, ()))


def unsupported(model) -> list[tuple[str, str]]:
    """``(op_type, node_name)`` of each node hwsim cannot compile, in graph order: an op type
    outside :data:`SUPPORTED`, or ``Div``/data movement with a non-constant divisor, shape,
    slice or axes."""
    owner = pattern_owners(model)
    return [(n.op_type, n.name) for n in model.graph.node
            if not _node_supported(model, n, owner)]


def check_supported(model) -> None:
    """Raise :class:`HwsimError` with one line naming the first unsupported node's op type and
    name (and how many others there are) if :func:`unsupported` is not empty."""
    bad = unsupported(model)
    if bad:
        op, name = bad[0]
        more = f" (and {len(bad) - 1} more unsupported node(s))" if len(bad) > 1 else ""
        raise HwsimError(f"unsupported ONNX op {op} at node {name!r}{more}")


def summary(model) -> list[dict]:
    """One dict per node in graph order: ``name``, ``op_type``, ``supported`` (bool),
    ``pattern`` (the recognised pattern the node belongs to, or ``None``)."""
    owner = pattern_owners(model)
    return [{"name": n.name, "op_type": n.op_type, "supported": _node_supported(model, n, owner),
             "pattern": owner.get(n.name)} for n in model.graph.node]
