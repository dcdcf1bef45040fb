"""The feed-forward half of a BitNet b1.58 decoder layer with static int8 quantizers, the part
of the layer ``hwsim compile`` takes (see docs/compile.md, "BitNet b1.58").

``x + w2(Q(SubLN(Q(Q(relu(w1·h))²) ⊙ Q(w3·h)))))`` with ``h = Q(RMSNorm(x))``: RMSNorm and
SubLN (RMSNorm) with per-channel gains, ternary absmean ``w1``/``w3``/``w2`` without bias,
ReLU² written ``Mul(r, r)``, the gating product and the residual add. Every activation a
compute node reads or writes has a per-tensor int8 quantizer set by calibration
(:class:`brevitas.quant.Int8ActPerTensorFloat`) where the exported BitNet layer
(:mod:`models.bitnet.export`) has dynamic per-token absmax quantizers and float tensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat

from quant.brevitas_quantizers import TernaryAbsmeanWeight

__all__ = ["BitNetFFNBlock", "RMSNorm", "calibrated", "export"]


class RMSNorm(torch.nn.Module):
    """``x / sqrt(mean(x²) + ε) · γ`` over the last axis (as :class:`models.bitnet.model.RMSNorm`)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _q():
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)


def _ternary(i: int, o: int):
    return qnn.QuantLinear(i, o, bias=False, weight_quant=TernaryAbsmeanWeight,
                           output_quant=Int8ActPerTensorFloat)


class BitNetFFNBlock(torch.nn.Module):
    """The FFN half of a BitNet b1.58 2B4T decoder layer (width ``d``, FFN width ``ffn``)."""

    def __init__(self, d: int = 128, ffn: int = 352, eps: float = 1e-5):
        super().__init__()
        self.inp, self.norm, self.qn = _q(), RMSNorm(d, eps), _q()
        self.w1, self.w3, self.qg = _ternary(d, ffn), _ternary(d, ffn), _q()
        self.qm, self.sub_norm, self.qs = _q(), RMSNorm(ffn, eps), _q()
        self.w2, self.out = _ternary(ffn, d), _q()

    def forward(self, x):
        x = self.inp(x)
        h = self.qn(self.norm(x))
        r = torch.relu(self.w1(h))
        m = self.qm(self.qg(r * r) * self.w3(h))
        return self.out(x + self.w2(self.qs(self.sub_norm(m))))


def calibrated(d: int = 128, ffn: int = 352, tokens: int = 8, seed: int = 0) -> BitNetFFNBlock:
    """A seeded block with gains in [0.5, 1.5], its activation scales set by 8 training-mode
    batches of ``tokens`` normal vectors, in eval mode."""
    torch.manual_seed(seed)
    model = BitNetFFNBlock(d, ffn)
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.sub_norm.weight.uniform_(0.5, 1.5)
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(tokens, d) * 2)
    return model.eval()


def export(path: Path, fmt: str, d: int = 128, ffn: int = 352, tokens: int = 8,
           seed: int = 0) -> Path:
    """The calibrated block exported to ``path`` as ``fmt`` (``qonnx``/``qcdq``), input
    ``(tokens, d)``."""
    from quant.onnx import export_brevitas
    return export_brevitas(calibrated(d, ffn, tokens, seed), torch.randn(tokens, d), Path(path),
                           fmt)
