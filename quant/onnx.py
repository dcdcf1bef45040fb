"""The one place hwsim checks, writes, exports and executes ONNX models.

Every model flow (BitNet, SwiftChannel, SNN, AirFM) and the estimator's ONNX reader go through
these functions, so every file is validated the same way and every executor runs with the same
settings:

* :func:`check` — ``onnx.checker.check_model(full_check=True)`` (structure, op schemas and strict
  shape/type inference); a missing, unreadable or invalid file is one :class:`HwsimError` line
  naming the file and the problem. Files are loaded without external data: a tensor that points
  outside the file fails the checker instead of being read.
* :func:`save` — check, then write atomically.
* :func:`export_torch` — ``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``), checked
  and written atomically; :func:`export_brevitas` — Brevitas's QONNX or QCDQ exporter, likewise.
* :func:`ort_session` / :func:`run_onnxruntime` — onnxruntime on the CPU, one thread, graph
  optimizations off: the graph is executed as written and reductions sum in one fixed order
  (``default_options=True``: onnxruntime's defaults, fusions on, as a user's session runs).
* :func:`make_static` — constants folded (data movement and shape arithmetic only) and a static
  ``value_info`` on every tensor: the fixed-shape form qonnx's ``cleanup`` and ``execute_onnx``
  take as they come.
* :func:`qonnx_executor` / :func:`run_qonnx` — qonnx's ``execute_onnx`` after shape inference
  (it needs static shapes).
* :data:`TIGHT_TOL`, :data:`QCDQ_TOL`, :func:`export_tolerance` — how far an exported float
  graph may differ from torch (integer graphs have no tolerance: their codes are compared ``==``).

Export settings that work with torch 2.13 + Brevitas 0.13.4: the TorchScript exporter at opset
13 (:data:`OPSET`), batch fixed by the example input unless dynamic axes are named. Importing
this module needs only numpy and onnx; torch, Brevitas, onnxruntime and qonnx are imported by
the functions that use them.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_bytes

__all__ = ["EXACT_FOLD_OPS", "FORMATS", "INT_FOLD_OPS", "OPSET", "QCDQ_TOL", "QONNX_DOMAIN",
           "TIGHT_TOL", "check", "export_brevitas", "export_tolerance", "export_torch",
           "make_static", "ort_session", "qonnx_executor", "run_onnxruntime", "run_qonnx", "save"]

#: the two exported forms of a quantized network: QONNX (``Quant`` nodes, run by qonnx) and
#: QCDQ (``QuantizeLinear``/``Clip``/``DequantizeLinear``, run by onnxruntime)
FORMATS = ("qonnx", "qcdq")
#: the custom-op domain of QONNX's ``Quant`` node
QONNX_DOMAIN = "qonnx.custom_op.general"
#: default opset of exported graphs
OPSET = 13

#: An exported fake-quant graph's output matches torch within this fraction of the output peak
#: (at least 1) wherever both take the same quantization codes. The graph performs the same
#: float32 operations as torch; an executor may only sum in another order (MatMul, ReduceMean,
#: Softmax), a few ulp per operation — far below one int8 step (peak / 127), so a code flip in
#: any projection exceeds it. QONNX's executor runs that same float graph.
TIGHT_TOL = 1e-4
#: QCDQ in onnxruntime reassociates float sums differently from torch, so an activation within
#: float rounding of a rounding tie can land one int8 code away; the flows allow such a
#: difference up to this fraction of the output peak (at least 1).
QCDQ_TOL = 0.05

PathOrModel = str | Path | onnx.ModelProto


def export_tolerance(fmt: str, peak: float) -> float:
    """The largest output difference from torch an exported graph of format ``fmt`` may show:
    :data:`TIGHT_TOL` (QONNX) or :data:`QCDQ_TOL` (QCDQ) times ``max(peak, 1)``."""
    if fmt not in FORMATS:
        raise HwsimError(f"unknown ONNX format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return (TIGHT_TOL if fmt == "qonnx" else QCDQ_TOL) * max(float(peak), 1.0)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines() or [type(e).__name__])[0].strip() or type(e).__name__


def check(path_or_model: PathOrModel) -> onnx.ModelProto:
    """The model at ``path_or_model`` (a path or an ``onnx.ModelProto``), loaded and validated by
    ``onnx.checker.check_model(full_check=True)``.

    Raises :class:`HwsimError` with one line naming the file and the problem: not a file, not
    readable as ONNX, or failing the checker (``"<file> fails onnx.checker: <first line>"``).
    """
    if isinstance(path_or_model, onnx.ModelProto):
        model, name = path_or_model, f"ONNX model {path_or_model.graph.name or '(unnamed)'!r}"
    else:
        path = Path(path_or_model)
        name = str(path)
        if not path.is_file():
            raise HwsimError(f"ONNX model {path} is not a file")
        try:
            model = onnx.load(name, load_external_data=False)
        except Exception as e:  # protobuf DecodeError, OSError, ValueError …
            raise HwsimError(f"cannot read ONNX model {path}: {_first_line(e)}") from None
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:  # ValidationError, InferenceError, ValueError (bad data type) …
        raise HwsimError(f"{name} fails onnx.checker: {_first_line(e)}") from None
    return model


def save(model: onnx.ModelProto, path: Path) -> Path:
    """:func:`check` ``model`` and write it atomically to ``path``."""
    check(model)
    atomic_write_bytes(Path(path), model.SerializeToString())
    return Path(path)


#: node types :func:`make_static` folds when every input is a constant: they move, cast or
#: select values and compute nothing, so folding them changes no bit of the result
EXACT_FOLD_OPS = frozenset({"Cast", "Concat", "ConstantOfShape", "Constant", "Expand", "Gather",
                            "Identity", "Range", "Reshape", "Slice", "Squeeze", "Transpose",
                            "Unsqueeze"})
#: arithmetic :func:`make_static` folds only on integer constants (shape arithmetic: exact)
INT_FOLD_OPS = frozenset({"Add", "Sub", "Mul", "Div", "Neg", "Equal", "Where"})


def _static_dims(vi) -> list[int] | None:
    t = vi.type.tensor_type
    if not t.HasField("shape") or any(not d.HasField("dim_value") for d in t.shape.dim):
        return None
    return [d.dim_value for d in t.shape.dim]


def _typed(model: onnx.ModelProto) -> dict:
    """Tensor name → ValueInfoProto of every tensor whose type is known (initializers too)."""
    g = model.graph
    known = {v.name: v for v in [*g.value_info, *g.input, *g.output]}
    known.update({t.name: onnx.helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                  for t in g.initializer})
    return known


def _fold_once(model: onnx.ModelProto) -> bool:
    """Fold every node :func:`make_static` may fold whose inputs are constant now (in place)."""
    from onnx import numpy_helper
    from onnx.reference import ReferenceEvaluator

    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    known = _typed(model)
    kept, folded = [], []
    for node in g.node:  # topological order: a folded node's constant inputs are known
        ins = [i for i in node.input if i]
        feeds = {}
        if node.domain not in ("", "ai.onnx"):
            ok = False
        elif node.op_type == "Shape":  # of a tensor with a static shape
            dims = _static_dims(known[ins[0]]) if ins[0] in known else None
            ok = dims is not None
            if ok:
                elem = onnx.helper.tensor_dtype_to_np_dtype(
                    known[ins[0]].type.tensor_type.elem_type)
                feeds = {ins[0]: np.zeros(dims, elem)}
        else:
            ok = all(i in consts for i in ins) and (
                node.op_type in EXACT_FOLD_OPS
                or (node.op_type in INT_FOLD_OPS
                    and all(np.issubdtype(consts[i].dtype, np.integer)
                            or consts[i].dtype == bool for i in ins)))
        if not ok:
            kept.append(node)
            continue
        sub = onnx.helper.make_graph(
            [node], "fold",
            [onnx.helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(
                v.dtype), v.shape) for i, v in feeds.items()],
            [onnx.helper.make_tensor_value_info(o, 0, None) for o in node.output],
            initializer=[numpy_helper.from_array(consts[i], i) for i in ins if i in consts])
        out = ReferenceEvaluator(onnx.helper.make_model(
            sub, opset_imports=list(model.opset_import))).run(None, feeds)
        for name, value in zip(node.output, out, strict=True):
            consts[name] = np.asarray(value)
            folded.append(name)
    if not folded:
        return False
    del g.node[:]
    g.node.extend(kept)
    used = {i for n in kept for i in n.input} | {o.name for o in g.output}
    inits = [t for t in g.initializer if t.name in used]
    inits += [numpy_helper.from_array(consts[n], n) for n in folded if n in used]
    del g.initializer[:]
    g.initializer.extend(inits)
    del g.value_info[:]
    return True


def make_static(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` in the form graph tools expect of a fixed-shape graph (qonnx's ``cleanup`` and
    ``execute_onnx``, FINN, Netron): every ``Constant``, every ``Shape`` of a static tensor and
    every constant-only node that only moves, casts or selects values (:data:`EXACT_FOLD_OPS`)
    or does integer shape arithmetic (:data:`INT_FOLD_OPS`) folded into an initializer, and a
    static ``value_info`` for every intermediate tensor, qonnx ``Quant`` outputs included (ONNX's
    shape inference does not know qonnx's ops: a ``Quant`` output has its input's type). No
    float arithmetic is folded, so quantizers and their float operations stay visible and the
    graph computes the same values bit for bit. Raises :class:`HwsimError` when a tensor's shape
    stays unknown or symbolic (a graph traced with dynamic axes is not static)."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    for _ in range(len(model.graph.node) + 1):
        model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        known = _typed(model)
        added = False
        for node in model.graph.node:
            if node.domain != QONNX_DOMAIN:
                continue
            out, src = node.output[0], known.get(node.input[0])
            if src is not None and _static_dims(src) is not None \
                    and (out not in known or _static_dims(known[out]) is None):
                for i, v in enumerate(model.graph.value_info):  # the tracer's shapeless type
                    if v.name == out:
                        del model.graph.value_info[i]
                        break
                vi = onnx.ValueInfoProto()
                vi.CopyFrom(src)
                vi.name = out
                model.graph.value_info.append(vi)
                known[vi.name] = vi
                added = True
        if not added and not _fold_once(model):
            break
    known = _typed(model)
    for node in model.graph.node:
        for t in node.output:
            if t not in known or _static_dims(known[t]) is None:
                raise HwsimError(f"ONNX model {model.graph.name or '(unnamed)'!r}: tensor {t!r} "
                                 f"of node {node.name!r} has no static shape")
    return model


def export_torch(module, args: tuple, path: Path, input_names: list[str],
                 output_names: list[str], *, opset: int = OPSET,
                 dynamic_axes: dict | None = None,
                 custom_opsets: dict[str, int] | None = None,
                 static: bool = False) -> onnx.ModelProto:
    """Trace ``module`` on ``args`` with ``torch.onnx.export`` (TorchScript exporter, no
    constant folding, so weights and quantizers stay visible as nodes), check the model and
    write it atomically to ``path``; ``static``: through :func:`make_static` first."""
    import torch

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer notes
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=opset,
                          input_names=input_names, output_names=output_names,
                          dynamic_axes=dynamic_axes, custom_opsets=custom_opsets or {},
                          do_constant_folding=False)
    model = onnx.load_from_string(buf.getvalue())
    if static:
        model = make_static(model)
    save(model, path)
    return model


def export_brevitas(module, example, path: Path, fmt: str) -> Path:
    """Export a Brevitas ``module`` traced at ``example`` as ``fmt`` (:data:`FORMATS`):
    QONNX (``Quant`` nodes with scale, zero point and bit width) or QCDQ (``QuantizeLinear`` /
    ``Clip`` / ``DequantizeLinear``); checked and written atomically to ``path``."""
    if fmt not in FORMATS:
        raise HwsimError(f"unknown ONNX format {fmt!r}: choose one of {', '.join(FORMATS)}")
    from brevitas.export import export_onnx_qcdq, export_qonnx

    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "model.onnx")
        if fmt == "qonnx":
            export_qonnx(module, input_t=example, export_path=out, dynamo=False,
                         opset_version=OPSET)
        else:
            export_onnx_qcdq(module, args=example, export_path=out, dynamo=False,
                             opset_version=OPSET)
        model = onnx.load(out)
    return save(model, path)


def ort_session(path_or_model: PathOrModel, default_options: bool = False):
    """A checked model's onnxruntime ``InferenceSession`` on the CPU: one thread, graph
    optimizations off (the graph runs as written, with one fixed summation order); with
    ``default_options``, onnxruntime's default session options instead (all graph
    optimizations and fusions on, default threads: what ``InferenceSession(path)`` runs)."""
    import onnxruntime as ort

    data = check(path_or_model).SerializeToString()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: no warnings about initializers listed as inputs
    if not default_options:
        opts.intra_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def run_onnxruntime(path_or_model: PathOrModel, inputs: dict[str, np.ndarray],
                    outputs: Sequence[str] | None = None,
                    default_options: bool = False) -> list[np.ndarray]:
    """Execute a checked model once in onnxruntime (:func:`ort_session`); the values of
    ``outputs`` (default: every graph output, in order)."""
    return ort_session(path_or_model, default_options).run(list(outputs) if outputs else None,
                                                           inputs)


def qonnx_executor(path_or_model: PathOrModel) -> Callable[[dict], list[np.ndarray]]:
    """A function ``inputs → [graph outputs, in order]`` running a checked model in qonnx's
    ``execute_onnx`` (shapes inferred once; qonnx's warnings and prints silenced)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    with warnings.catch_warnings():  # qonnx warns on every broadcast shape it re-checks
        warnings.simplefilter("ignore")
        wrapper = ModelWrapper(check(path_or_model)).transform(InferShapes())
    names = [o.name for o in wrapper.graph.output]

    def run(inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            out = execute_onnx(wrapper, inputs)
        return [np.asarray(out[n]) for n in names]

    return run


def run_qonnx(path_or_model: PathOrModel, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Execute a checked model once in qonnx's executor (:func:`qonnx_executor`)."""
    return qonnx_executor(path_or_model)(inputs)
