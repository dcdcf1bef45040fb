"""Export forms of ternary × per-token-int8 projections: QONNX and QCDQ.

Importing this module pulls in torch and onnx (``quant`` itself stays numpy-only); tracing,
checking and executing the graphs is :mod:`quant.onnx`'s.

A model whose projections are :class:`models.bitnet.model.BitLinear` (Brevitas ``QuantLinear``
with :class:`~quant.brevitas_quantizers.TernaryAbsmeanWeight` behind a
:class:`~quant.brevitas_quantizers.PerTokenAbsmaxInt8`) is copied with each projection replaced
by an :class:`ExportLinear`, then traced by :func:`quant.onnx.export_torch` (TorchScript exporter,
opset 13). Each ``ExportLinear`` computes the same fake-quant function in torch and emits:

* **QONNX** — activation ``Quant(x, step, 0, 8, signed, not narrow, ROUND)`` with the per-token
  ``step = max(|x|, 1e-5) / 127`` computed in the graph (``Abs → ReduceMax → Clip → Div``);
  weight ``Quant(W, mean|W|, 0, 2, signed, narrow, ROUND)`` on the float weight, so the ternary
  quantizer is visible in the graph. Runs in ``qonnx.core.onnx_exec.execute_onnx``.
* **QCDQ** — activation ``Div(x, step) → QuantizeLinear(1, int8 0) → DequantizeLinear → Mul(step)``
  (opset-13 QuantizeLinear takes only scalar or 1-D scales, so the per-token scale is applied
  around a unit-scale int8 quantizer); weight: int8 ternary codes as an initializer →
  ``Clip(−1, 1) → DequantizeLinear(1, 0) → Mul(mean|W|)`` (the same float32 product as
  ``DequantizeLinear(mean|W|)``; a weight ``DequantizeLinear`` straight into ``MatMul`` is fused
  by onnxruntime's default optimizations into ``MatMulNBits``, which quantizes the activations
  again). Runs in onnxruntime, with default session options too.

Rounding is half to even everywhere (``torch.round``, ``np.round``, QuantizeLinear), and the
quantizer input ``x / step`` is one IEEE float32 division in torch, numpy and onnxruntime alike.
Models are traced by :func:`quant.onnx.export_torch`: checked and written atomically.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from hwsim.errors import HwsimError

from .brevitas_quantizers import ACT_MAX, ACT_MIN, SCALE_FLOOR, PerTokenAbsmaxInt8
from .onnx import FORMATS, QONNX_DOMAIN

__all__ = ["ExportLinear", "replace_bitlinears"]


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
    """int8 ternary codes → ``Clip(−1, 1) → DequantizeLinear(1, 0) → Mul(scale)``."""

    @staticmethod
    def forward(ctx, codes, scale):
        return torch.clamp(codes.float(), -1, 1) * scale

    @staticmethod
    def symbolic(g, codes, scale):
        lo = g.op("Constant", value_t=torch.tensor(-1, dtype=torch.int8))
        hi = g.op("Constant", value_t=torch.tensor(1, dtype=torch.int8))
        zp = g.op("Constant", value_t=torch.tensor(0, dtype=torch.int8))
        one = g.op("Constant", value_t=torch.tensor(1.0))
        c = g.op("Clip", codes, lo, hi)
        w = g.op("DequantizeLinear", c, one, zp)
        return g.op("Mul", w, scale).setType(codes.type().with_dtype(torch.float32))


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
