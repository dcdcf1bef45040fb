"""ONNX export of ternary × per-token-int8 projections: QONNX and QCDQ.

Importing this module pulls in torch and onnx (``quant`` itself stays numpy-only).

A model whose projections are :class:`models.bitnet.model.BitLinear` (Brevitas ``QuantLinear``
with :class:`~quant.brevitas_quantizers.TernaryAbsmeanWeight` behind a
:class:`~quant.brevitas_quantizers.PerTokenAbsmaxInt8`) is copied with each projection replaced
by an :class:`ExportLinear`, then traced by ``torch.onnx.export`` (TorchScript exporter,
opset 13). Each ``ExportLinear`` computes the same fake-quant function in torch and emits:

* **QONNX** — activation ``Quant(x, step, 0, 8, signed, not narrow, ROUND)`` with the per-token
  ``step = max(|x|, 1e-5) / 127`` computed in the graph (``Abs → ReduceMax → Clip → Div``);
  weight ``Quant(W, mean|W|, 0, 2, signed, narrow, ROUND)`` on the float weight, so the ternary
  quantizer is visible in the graph. Runs in ``qonnx.core.onnx_exec.execute_onnx``.
* **QCDQ** — activation ``Div(x, step) → QuantizeLinear(1, int8 0) → DequantizeLinear → Mul(step)``
  (opset-13 QuantizeLinear takes only scalar or 1-D scales, so the per-token scale is applied
  around a unit-scale int8 quantizer); weight: int8 ternary codes as an initializer →
  ``Clip(−1, 1) → DequantizeLinear(mean|W|)``. Runs in onnxruntime.

Rounding is half to even everywhere (``torch.round``, ``np.round``, QuantizeLinear), and the
quantizer input ``x / step`` is one IEEE float32 division in torch, numpy and onnxruntime alike.
Every written model passes ``onnx.checker`` and is written atomically.
"""

from __future__ import annotations

import contextlib
import copy
import io
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_bytes

from .brevitas_quantizers import ACT_MAX, ACT_MIN, SCALE_FLOOR, PerTokenAbsmaxInt8

__all__ = ["FORMATS", "QCDQ_TOL", "TIGHT_TOL", "ExportLinear", "check_onnx", "export_onnx",
           "export_tolerance", "replace_bitlinears", "run_qcdq", "run_qonnx"]

FORMATS = ("qonnx", "qcdq")
QONNX_DOMAIN = "qonnx.custom_op.general"
OPSET = 13

#: an exported fake-quant graph's output matches torch within this fraction of the output peak
#: (at least 1) wherever both take the same quantization codes: float32 reassociation only, well
#: below one int8 step (QONNX's executor runs the same float graph)
TIGHT_TOL = 1e-4
#: QCDQ in onnxruntime reassociates float sums differently, so an activation within float
#: rounding of a rounding tie can land one code away: the flows allow such a difference up to
#: this fraction of the output peak (at least 1)
QCDQ_TOL = 0.05


def export_tolerance(fmt: str, peak: float) -> float:
    """The largest output difference from torch an exported graph of format ``fmt`` may show:
    :data:`TIGHT_TOL` (QONNX) or :data:`QCDQ_TOL` (QCDQ) times ``max(peak, 1)``."""
    if fmt not in FORMATS:
        raise HwsimError(f"unknown ONNX format {fmt!r}: choose one of {', '.join(FORMATS)}")
    return (TIGHT_TOL if fmt == "qonnx" else QCDQ_TOL) * max(float(peak), 1.0)


def _int_range(bits: int, narrow: bool) -> tuple[int, int]:
    return -(1 << (bits - 1)) + int(narrow), (1 << (bits - 1)) - 1


class _QonnxQuant(torch.autograd.Function):
    """Signed, zero-point-free QONNX ``Quant`` with half-even rounding."""

    @staticmethod
    def forward(ctx, x, scale, bits: int, narrow: bool):
        lo, hi = _int_range(bits, narrow)
        return torch.clamp(torch.round(x / scale), lo, hi) * scale

    @staticmethod
    def symbolic(g, x, scale, bits: int, narrow: bool):
        zero = g.op("Constant", value_t=torch.tensor(0.0))
        bw = g.op("Constant", value_t=torch.tensor(float(bits)))
        return g.op(f"{QONNX_DOMAIN}::Quant", x, scale, zero, bw, rounding_mode_s="ROUND",
                    signed_i=1, narrow_i=int(narrow)).setType(x.type())


class _QcdqUnitInt8(torch.autograd.Function):
    """``QuantizeLinear(1, 0) → DequantizeLinear(1, 0)`` on int8: round half even, saturate."""

    @staticmethod
    def forward(ctx, y):
        return torch.clamp(torch.round(y), ACT_MIN, ACT_MAX)

    @staticmethod
    def symbolic(g, y):
        one = g.op("Constant", value_t=torch.tensor(1.0))
        zp = g.op("Constant", value_t=torch.tensor(0, dtype=torch.int8))
        q = g.op("QuantizeLinear", y, one, zp)
        return g.op("DequantizeLinear", q, one, zp).setType(y.type())


class _QcdqTernaryWeight(torch.autograd.Function):
    """int8 ternary codes → ``Clip(−1, 1) → DequantizeLinear(scale)``."""

    @staticmethod
    def forward(ctx, codes, scale):
        return torch.clamp(codes.float(), -1, 1) * scale

    @staticmethod
    def symbolic(g, codes, scale):
        lo = g.op("Constant", value_t=torch.tensor(-1, dtype=torch.int8))
        hi = g.op("Constant", value_t=torch.tensor(1, dtype=torch.int8))
        zp = g.op("Constant", value_t=torch.tensor(0, dtype=torch.int8))
        c = g.op("Clip", codes, lo, hi)
        return g.op("DequantizeLinear", c, scale, zp).setType(
            codes.type().with_dtype(torch.float32))


class ExportLinear(nn.Module):
    """Export form of a ternary-weight, per-token-int8 projection (see the module docstring).

    ``codes``: (out, in) int8 ternary codes; ``scale``: ``mean|W|``; ``weight``: the float
    weight the codes came from (QONNX quantizes it in the graph); ``gain``: an extra output
    factor (a ``Mul`` node) for pre-quantized weights whose scale is not their absmean.
    """

    def __init__(self, weight: torch.Tensor, codes: torch.Tensor, scale: torch.Tensor, fmt: str,
                 gain: float = 1.0):
        super().__init__()
        self.gain = gain
        if fmt not in FORMATS:
            raise HwsimError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.fmt = fmt
        self.register_buffer("weight", weight.detach().float().clone())
        self.register_buffer("codes", codes.detach().to(torch.int8).clone())
        self.register_buffer("scale", scale.detach().float().reshape(()).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        step = x.abs().amax(dim=-1, keepdim=True).clamp(min=SCALE_FLOOR) / ACT_MAX
        if self.fmt == "qonnx":
            xq = _QonnxQuant.apply(x, step, 8, False)
            wq = _QonnxQuant.apply(self.weight, self.scale, 2, True)
        else:
            xq = _QcdqUnitInt8.apply(x / step) * step
            wq = _QcdqTernaryWeight.apply(self.codes, self.scale)
        y = torch.matmul(xq, wq.t())
        return y if self.gain == 1.0 else y * self.gain


def replace_bitlinears(model: nn.Module, fmt: str) -> nn.Module:
    """A copy of ``model`` with every quantized projection replaced by an :class:`ExportLinear`.

    A projection is a Brevitas ``QuantLinear`` without bias whose ``act_quant`` is a
    :class:`PerTokenAbsmaxInt8`; its codes and scale come from Brevitas's own ``quant_weight()``.
    """
    from brevitas.nn import QuantLinear

    model = copy.deepcopy(model).eval()
    found = 0
    for name, mod in list(model.named_modules()):
        if isinstance(mod, QuantLinear) and isinstance(getattr(mod, "act_quant", None),
                                                       PerTokenAbsmaxInt8):
            with torch.no_grad():
                qw = mod.quant_weight()
            new = ExportLinear(mod.weight, qw.int(), qw.scale, fmt,
                               float(getattr(mod, "weight_gain", 1.0)))
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
            found += 1
    if not found:
        raise HwsimError("model has no ternary projections to export (is it the float model?)")
    return model


def check_onnx(model_or_path) -> onnx.ModelProto:
    """Load (if a path) and validate with ``onnx.checker``; a bad file raises one clear line."""
    try:
        if isinstance(model_or_path, str | Path):
            model = onnx.load(str(model_or_path))
        else:
            model = model_or_path
        onnx.checker.check_model(model)
    except FileNotFoundError:
        raise HwsimError(f"ONNX file {model_or_path} does not exist") from None
    except Exception as e:  # onnx raises DecodeError, ValidationError, OSError …
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HwsimError(f"{model_or_path if isinstance(model_or_path, str | Path) else 'model'}"
                         f" is not a valid ONNX model ({first})") from None
    return model


def export_onnx(module: nn.Module, args: tuple, path: Path, input_names: list[str],
                output_names: list[str]) -> onnx.ModelProto:
    """Trace ``module`` on ``args``, check the ONNX model and write it atomically to ``path``."""
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer notes
        torch.onnx.export(module, args, buf, dynamo=False, opset_version=OPSET,
                          input_names=input_names, output_names=output_names,
                          custom_opsets={QONNX_DOMAIN: 1}, do_constant_folding=False)
    model = onnx.load_from_string(buf.getvalue())
    check_onnx(model)
    atomic_write_bytes(Path(path), model.SerializeToString())
    return model


def run_qcdq(path_or_model, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Execute a QCDQ model in onnxruntime (CPU)."""
    import onnxruntime as ort

    data = (check_onnx(path_or_model).SerializeToString())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def run_qonnx(path_or_model, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Execute a QONNX model in qonnx's executor."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.infer_shapes import InferShapes

    with warnings.catch_warnings():  # qonnx warns on every broadcast shape it re-checks
        warnings.simplefilter("ignore")
        wrapper = ModelWrapper(check_onnx(path_or_model)).transform(InferShapes())
        with contextlib.redirect_stdout(io.StringIO()):
            out = execute_onnx(wrapper, inputs)
    return [out[o.name] for o in wrapper.graph.output]
