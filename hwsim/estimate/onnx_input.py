"""Reading a user's ONNX file for the estimator: checked before anything is priced.

:func:`read_onnx` loads the file, runs the full ``onnx.checker`` (:func:`quant.onnx.check`)
and checks every initializer (its stored size against its shape and type, finite values);
:func:`unpriced_ops` names the nodes the estimator cannot price. Any problem is one :class:`HwsimError` line.
"""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import HwsimError

__all__ = ["FREE_OPS", "PRICED_OPS", "WEIGHT_OPS", "read_onnx", "unpriced_ops"]

#: ops the estimator prices (as ternary or int8 matrix products)
PRICED_OPS = frozenset({"MatMul", "Gemm"})
#: ops that carry a constant weight to a priced op (followed, not priced themselves)
WEIGHT_OPS = frozenset({"Constant", "DequantizeLinear", "QuantizeLinear", "Cast", "Identity",
                        "Transpose"})
#: standard ops the estimator deliberately counts as free: element-wise arithmetic,
#: activations, normalizations and softmax (O(width) per vector beside the O(width²) products)
#: and pure data movement; they are listed in the estimate's ``notes['not_priced']``
FREE_OPS = frozenset({
    "Abs", "Add", "Sub", "Mul", "Div", "Neg", "Pow", "Sqrt", "Reciprocal", "Exp", "Log",
    "Erf", "Tanh", "Sigmoid", "Relu", "LeakyRelu", "Gelu", "HardSigmoid", "HardSwish", "Elu",
    "Selu", "Softplus", "Clip", "Floor", "Ceil", "Round", "Sign", "Min", "Max", "Mean", "Sum",
    "Softmax", "LogSoftmax", "LayerNormalization", "RMSNormalization",
    "SimplifiedLayerNormalization", "BatchNormalization", "ReduceMean", "ReduceSum",
    "ReduceMax", "ReduceMin", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Concat", "Split",
    "Slice", "Gather", "Expand", "Shape", "Size", "Tile", "Pad", "Where", "Equal", "Less",
    "Greater", "Not", "And", "Or", "Range", "ConstantOfShape", "Dropout", "Trilu",
})


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines() or [type(e).__name__])[0].strip()


def read_onnx(path: Path):
    """The checked ``onnx.ModelProto`` of ``path``; :class:`HwsimError` (one line) for a file
    that is missing, not ONNX, fails ``onnx.checker``, keeps its weights outside the file, or
    holds an initializer whose data do not match its shape and type or are not finite."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from quant.onnx import check

    path = Path(path)
    model = check(path)
    graph_inits = list(model.graph.initializer)
    graph_inits += [a.t for n in model.graph.node if n.op_type == "Constant"
                    for a in n.attribute if a.name == "value"]
    for t in graph_inits:
        what = f"{path.name}: initializer {t.name or '(constant)'!r}"
        if t.data_location == onnx.TensorProto.EXTERNAL:
            raise HwsimError(f"{what} keeps its data in an external file; save the model with "
                             f"its weights inside")
        if t.data_type not in (
                onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16,
                onnx.TensorProto.BFLOAT16, onnx.TensorProto.INT8, onnx.TensorProto.UINT8,
                onnx.TensorProto.INT16, onnx.TensorProto.UINT16, onnx.TensorProto.INT32,
                onnx.TensorProto.UINT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT64,
                onnx.TensorProto.BOOL):
            name = onnx.TensorProto.DataType.Name(t.data_type) if t.data_type in \
                onnx.TensorProto.DataType.values() else str(t.data_type)
            raise HwsimError(f"{what} has data type {name}, which the estimator cannot read")
        if any(d < 0 for d in t.dims):
            raise HwsimError(f"{what} has a negative dimension {list(t.dims)}")
        n = 1
        for d in t.dims:
            n *= d
        if n > 2**31:
            raise HwsimError(f"{what} claims {n:,} elements, more than the estimator reads")
        try:
            a = numpy_helper.to_array(t)
        except (ValueError, TypeError, IndexError, RuntimeError) as e:
            raise HwsimError(f"{what} does not match its shape {list(t.dims)} and type "
                             f"({_first_line(e)})") from None
        if a.size != n:
            raise HwsimError(f"{what} holds {a.size} values for shape {list(t.dims)}")
        if a.dtype.kind in "fc" and not np.all(np.isfinite(a)):
            raise HwsimError(f"{what} holds NaN or infinite values")
    return model


def unpriced_ops(model) -> list[str]:
    """Nodes the estimator cannot price, as ``"domain::op (node)"``: an op outside the standard
    ``ai.onnx`` domain, or a standard op that is neither priced, nor a weight path, nor free."""
    bad = []
    for node in model.graph.node:
        where = f"{node.op_type} (node {node.name!r})" if node.name else node.op_type
        if node.domain not in ("", "ai.onnx"):
            bad.append(f"{node.domain}::{where}")
        elif node.op_type not in PRICED_OPS | WEIGHT_OPS | FREE_OPS:
            bad.append(where)
    return bad
