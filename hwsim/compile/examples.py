"""Quantization-aware models no seed flow knows, for ``hwsim bench compile``, the docs and the
tests: a Brevitas MLP, a pre-norm transformer encoder block, a CNN with a sigmoid attention
gate and a small conv/BatchNorm/pool classifier. Each is calibrated (a few training-mode
batches set the activation scales and BatchNorm statistics) and exported by :func:`export` to
QONNX or QCDQ — what a user's own model looks like to ``hwsim compile``."""

from __future__ import annotations

from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFloat,
    Uint8ActPerTensorFixedPoint,
    Uint8ActPerTensorFloat,
)

from hwsim.compile.bitnet_block import BitNetDecoderBlock, BitNetFFNBlock
from hwsim.errors import HwsimError

__all__ = ["EXAMPLES", "MLP", "EncoderBlock", "GatedCNN", "ProbQuant", "SmallCNN", "calibrated",
           "export"]

#: tokens and features of :class:`EncoderBlock`; attention heads
T, D, HEADS = 4, 16, 2


class ProbQuant(Uint8ActPerTensorFixedPoint):
    """Attention probabilities as uint8 codes of 1/256 (a constant power-of-two scale)."""

    scaling_impl_type = "const"
    scaling_init = 1.0
    max_val = 1.0


class MLP(torch.nn.Module):
    """16 → 32 → 24 → 8: int8 input, ReLU layers with uint8 codes, an int8 output; the first
    layer has a bias, the second is followed by a ``hidden`` function (ReLU by default)."""

    def __init__(self, hidden=None):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.l1 = qnn.QuantLinear(16, 32, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  return_quant_tensor=True)
        self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.l2 = qnn.QuantLinear(32, 24, bias=False, weight_quant=Int8WeightPerTensorFloat)
        self.hidden = hidden or torch.nn.ReLU()
        self.q2 = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.l3 = qnn.QuantLinear(24, 8, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.l3(self.q2(self.hidden(self.l2(self.r1(self.l1(self.inp(x)))))))


def _q():
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)


def _lin(i, o):
    return qnn.QuantLinear(i, o, bias=True, weight_quant=Int8WeightPerTensorFloat,
                           output_quant=Int8ActPerTensorFloat)


class EncoderBlock(torch.nn.Module):
    """Pre-norm transformer encoder block on ``T × D`` tokens: int8 weights and activations,
    ``x1 = Q(x + O(attn(Q(LN1(x)))))`` with 2-head softmax attention, then
    ``y = Q(x1 + L2(Q(GELU(L1(Q(LN2(x1)))))))``."""

    def __init__(self):
        super().__init__()
        self.dh = D // HEADS
        self.inp, self.n1, self.n2 = _q(), _q(), _q()
        self.ln1, self.ln2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.q, self.k, self.v, self.o = (_lin(D, D) for _ in range(4))
        self.qp, self.qo, self.r1 = qnn.QuantIdentity(act_quant=ProbQuant), _q(), _q()
        self.fc1, self.fc2 = _lin(D, 2 * D), _lin(2 * D, D)
        self.qg, self.r2 = _q(), _q()

    def forward(self, x):
        x = self.inp(x)
        h = self.n1(self.ln1(x))

        def split(z):
            return z.reshape(T, HEADS, self.dh).transpose(0, 1)

        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        a = self.qp(torch.softmax(q @ k.transpose(-1, -2) / self.dh ** 0.5, dim=-1))
        x1 = self.r1(x + self.o(self.qo((a @ v).transpose(0, 1).reshape(T, D))))
        f = self.qg(torch.nn.functional.gelu(self.fc1(self.n2(self.ln2(x1)))))
        return self.r2(x1 + self.fc2(f))


class GatedCNN(torch.nn.Module):
    """``f = ReLU(conv3×3(x))``, ``g = σ(conv1×1(f))``, ``y = conv3×3/2(f · g)`` on 3 × 8 × 8."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.c1 = qnn.QuantConv2d(3, 8, 3, padding=1, bias=True,
                                  weight_quant=Int8WeightPerTensorFloat)
        self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat)
        self.c2 = qnn.QuantConv2d(8, 8, 1, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)
        self.sig = qnn.QuantSigmoid(act_quant=Uint8ActPerTensorFloat)
        self.gq = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)
        self.c3 = qnn.QuantConv2d(8, 4, 3, stride=2, padding=1, bias=True,
                                  weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        f = self.r1(self.c1(self.inp(x)))
        return self.c3(self.gq(f * self.sig(self.c2(f))))


class SmallCNN(torch.nn.Module):
    """A classifier as users write them: two conv → BatchNorm → ReLU stages on 1 × 8 × 8, a
    2×2 max pool between them, global average pooling, a flatten and a linear head with float
    logits (no output quantizer)."""

    def __init__(self, classes: int = 10):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(1, 8, 3, padding=1, bias=True,
                                  weight_quant=Int8WeightPerTensorFloat)
        self.bn1 = torch.nn.BatchNorm2d(8)
        self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.pool = torch.nn.MaxPool2d(2)
        self.c2 = qnn.QuantConv2d(8, 16, 3, padding=1, bias=True,
                                  weight_quant=Int8WeightPerTensorFloat)
        self.bn2 = torch.nn.BatchNorm2d(16)
        self.r2 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat)
        self.gap = torch.nn.AdaptiveAvgPool2d(1)
        self.q3 = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(16, classes, bias=True, weight_quant=Int8WeightPerTensorFloat)
        with torch.no_grad():  # BatchNorm gains and shifts as training leaves them, not 1 and 0
            for bn in (self.bn1, self.bn2):
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.2, 0.2)

    def forward(self, x):
        x = self.pool(self.r1(self.bn1(self.c1(self.inp(x)))))
        x = self.q3(self.gap(self.r2(self.bn2(self.c2(x)))))
        return self.fc(torch.flatten(x, 1))


#: name → (class, calibration batch shape, calibration input scale, export input shape)
EXAMPLES = {
    "mlp": (MLP, (64, 16), 2.0, (2, 16)),
    "encoder": (EncoderBlock, (T, D), 1.0, (T, D)),
    "gated-cnn": (GatedCNN, (16, 3, 8, 8), 2.0, (1, 3, 8, 8)),
    "cnn": (SmallCNN, (16, 1, 8, 8), 2.0, (1, 1, 8, 8)),
    "bitnet-ffn": (BitNetFFNBlock, (8, 128), 2.0, (8, 128)),  # BitNet-tiny width, 8 tokens
    # a whole BitNet-tiny decoder layer: 4 query heads, 2 key/value heads, causal, 8 tokens
    "bitnet-layer": (BitNetDecoderBlock, (8, 128), 2.0, (8, 128)),
}


def calibrated(name: str, seed: int = 0) -> torch.nn.Module:
    """Example ``name`` with seeded weights, its activation scales set by 8 training-mode
    batches of normal inputs, in eval mode."""
    if name not in EXAMPLES:
        raise HwsimError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLES)}")
    cls, shape, scale, _ = EXAMPLES[name]
    torch.manual_seed(seed)
    model = cls()
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(*shape) * scale)
    return model.eval()


def export(name: str, path: Path, fmt: str, seed: int = 0) -> Path:
    """Example ``name`` calibrated and exported to ``path`` as ``fmt`` (``qonnx``/``qcdq``)."""
    from quant.onnx import export_brevitas
    return export_brevitas(calibrated(name, seed), torch.randn(*EXAMPLES[name][3]), Path(path),
                           fmt)
