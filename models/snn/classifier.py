"""The paper's SNN classifier in snnTorch, its quantization-aware twin and its integer export.

Architecture (arXiv 2605.06005): ``Conv2d(1, 4, k=5, s=6) → Leaky → FC 256→512 → Leaky →
FC 512→classes → Leaky``, no biases, β = 0.92, fast-sigmoid surrogate (slope 25), 35 time steps
of 1 ms; the prediction is the argmax of the output spike counts. The input of every step is the
event-count frame of that millisecond (48 × 48), so the first layer too only adds weights.

* :class:`SnnClassifier`: float model with ``snntorch.Leaky`` neurons (subtractive reset,
  ``reset_delay=False``: a spiking neuron loses θ in the same step, as the integer LIF does).
* :class:`QuantSnnClassifier`: the QAT model. Weights are fake-quantized to ``weight_bits``
  (symmetric, one scale ``s = max|W| / (2**(b-1) - 1)`` per layer, straight-through rounding);
  the membrane lives in integer codes of that scale, ``mem_bits`` wide and saturating; the leak is
  the fixed-point multiply ``round_half_up(v · 236 / 256)``; the threshold code is
  ``round(1 / s)``. Every value of its forward pass is an integer held exactly in float32
  (|v · 236| < 2**24 for ``mem_bits ≤ 16``), so it computes the very integers of
  :func:`hwsim.golden.snn.lif_array.lif_array`.
* :func:`integer_layers` exports that model as weight codes and :class:`LifParams` per layer
  (the conv as a dense 256 × 2304 matrix), and :func:`integer_predict` runs the golden kernels.

Contract (``tests/models/test_snn_classifier.py``): the integer SNN's spike counts — and so its
predictions — equal the quantized torch model's exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import snntorch as snn
import torch
from snntorch import surrogate
from torch import nn

from hwsim.errors import HwsimError
from hwsim.golden.snn import lif_array as golden

__all__ = [
    "QuantSnnClassifier",
    "SnnClassifier",
    "SnnShape",
    "conv_as_dense",
    "integer_layers",
    "integer_predict",
    "spike_counts_int",
]

BETA = 0.92
SLOPE = 25
STEPS = 35
LEAK_MULT, LEAK_FRAC = 236, 8  # 236 / 256 = 0.921875 ≈ β


@dataclass(frozen=True)
class SnnShape:
    """Sizes of the classifier: ``side``-px input, conv ``channels × k × k`` at ``stride``."""

    side: int = 48
    channels: int = 4
    kernel: int = 5
    stride: int = 6
    hidden: int = 512
    classes: int = 10

    @property
    def conv_side(self) -> int:
        return (self.side - self.kernel) // self.stride + 1

    @property
    def conv_out(self) -> int:
        return self.channels * self.conv_side**2  # 4 · 8 · 8 = 256 in the paper


class SnnClassifier(nn.Module):
    """Float classifier with snnTorch Leaky neurons; ``forward`` returns (B, classes) spike counts."""

    def __init__(self, shape: SnnShape = SnnShape(), beta: float = BETA, slope: float = SLOPE):
        super().__init__()
        self.shape = shape
        self.conv = nn.Conv2d(1, shape.channels, shape.kernel, stride=shape.stride, bias=False)
        self.fc1 = nn.Linear(shape.conv_out, shape.hidden, bias=False)
        self.fc2 = nn.Linear(shape.hidden, shape.classes, bias=False)
        grad = surrogate.fast_sigmoid(slope=slope)
        self.lif = nn.ModuleList(
            snn.Leaky(beta=beta, spike_grad=grad, reset_delay=False) for _ in range(3))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames: (B, T, H, W) event counts → (B, classes) output spike counts."""
        mems = [lif.reset_mem() for lif in self.lif]
        counts = 0
        for t in range(frames.shape[1]):
            x = frames[:, t, None]  # (B, 1, H, W)
            s, mems[0] = self.lif[0](self.conv(x).flatten(1), mems[0])  # (B, 256)
            s, mems[1] = self.lif[1](self.fc1(s), mems[1])  # (B, 512)
            s, mems[2] = self.lif[2](self.fc2(s), mems[2])  # (B, classes)
            counts = counts + s
        return counts


# ------------------------------------------------------------------------------------------
def _ste(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Forward ``y``, backward identity to ``x`` (straight-through)."""
    return x + (y - x).detach()


class QuantSnnClassifier(nn.Module):
    """QAT classifier: integer weight codes, integer fixed-point membranes (see module doc)."""

    def __init__(self, shape: SnnShape = SnnShape(), weight_bits: int = 8, mem_bits: int = 16,
                 slope: float = SLOPE):
        super().__init__()
        if weight_bits not in range(2, 9):
            raise HwsimError(f"weight_bits must be 2 … 8, not {weight_bits}")
        if mem_bits not in range(4, 17):
            raise HwsimError(f"mem_bits must be 4 … 16 (exact in float32), not {mem_bits}")
        self.shape, self.weight_bits, self.mem_bits = shape, weight_bits, mem_bits
        self.conv = nn.Conv2d(1, shape.channels, shape.kernel, stride=shape.stride, bias=False)
        self.fc1 = nn.Linear(shape.conv_out, shape.hidden, bias=False)
        self.fc2 = nn.Linear(shape.hidden, shape.classes, bias=False)
        self.spike = surrogate.fast_sigmoid(slope=slope)

    @classmethod
    def from_float(cls, model: SnnClassifier, weight_bits: int, mem_bits: int = 16):
        q = cls(model.shape, weight_bits, mem_bits)
        q.load_state_dict({k: v for k, v in model.state_dict().items() if k in q.state_dict()})
        return q

    @property
    def qmax(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1

    def weight_codes(self, layer: nn.Module) -> tuple[torch.Tensor, float]:
        """Fake-quantized integer weight codes (STE) and the layer's scale."""
        w = layer.weight
        scale = w.detach().abs().max().clamp_min(1e-8) / self.qmax
        codes = _ste(w / scale, torch.round(w / scale).clamp(-self.qmax, self.qmax))
        return codes, float(scale)

    def thresholds(self) -> list[int]:
        """Threshold code of each layer: ``round(1 / s)``, within the membrane range."""
        top = (1 << (self.mem_bits - 1)) - 1
        return [int(min(max(round(1.0 / self.weight_codes(layer)[1]), 1), top))
                for layer in (self.conv, self.fc1, self.fc2)]

    def _lif(self, v, current, theta):
        lo, hi = -(1 << (self.mem_bits - 1)), (1 << (self.mem_bits - 1)) - 1
        vl = _ste(v * (LEAK_MULT / (1 << LEAK_FRAC)),
                  torch.floor((v * LEAK_MULT + (1 << (LEAK_FRAC - 1))) / (1 << LEAK_FRAC)))
        u = torch.clamp(vl + current, lo, hi)
        s = self.spike((u - theta) / theta)  # strict u > θ, surrogate in threshold units
        return u - s.detach() * theta, s

    def forward(self, frames: torch.Tensor, record: bool = False):
        """frames: (B, T, H, W) event counts → (B, classes) output spike counts
        (and, with ``record``, every layer's (B, T, N) spikes)."""
        wc, _ = self.weight_codes(self.conv)
        w1, _ = self.weight_codes(self.fc1)
        w2, _ = self.weight_codes(self.fc2)
        th = self.thresholds()
        B, T = frames.shape[:2]
        v = [frames.new_zeros(B, n) for n in (self.shape.conv_out, self.shape.hidden,
                                              self.shape.classes)]
        counts, rec = 0, [[], [], []]
        stride = self.shape.stride
        for t in range(T):
            cur = nn.functional.conv2d(frames[:, t, None], wc, stride=stride).flatten(1)
            v[0], s = self._lif(v[0], cur, th[0])
            rec[0].append(s)
            v[1], s = self._lif(v[1], s @ w1.T, th[1])
            rec[1].append(s)
            v[2], s = self._lif(v[2], s @ w2.T, th[2])
            rec[2].append(s)
            counts = counts + s
        if record:
            return counts, [torch.stack(r, 1) for r in rec]
        return counts


# ------------------------------------------------------------------------------------------
# Integer export and the golden-kernel network
def conv_as_dense(w_codes: np.ndarray, side: int, stride: int) -> np.ndarray:
    """Conv weights (C, 1, k, k) on a ``side²`` input → dense (C·o·o, side²) matrix, rows in
    torch's ``flatten`` order (channel, row, column)."""
    C, _, k, _ = w_codes.shape
    o = (side - k) // stride + 1
    dense = np.zeros((C, o, o, side, side), np.int64)
    for oy in range(o):
        for ox in range(o):
            dense[:, oy, ox, oy * stride:oy * stride + k, ox * stride:ox * stride + k] = \
                w_codes[:, 0]
    return dense.reshape(C * o * o, side * side)


def integer_layers(model: QuantSnnClassifier) -> list[tuple[np.ndarray, golden.LifParams]]:
    """The quantized model as (weight codes (N, M), LifParams) per layer for the golden kernels."""
    sh = model.shape
    out = []
    with torch.no_grad():
        for layer, theta in zip((model.conv, model.fc1, model.fc2), model.thresholds(),
                                strict=True):
            codes = model.weight_codes(layer)[0].round().to(torch.int64).numpy()
            if codes.ndim == 4:
                codes = conv_as_dense(codes, sh.side, sh.stride)
            n, m = codes.shape
            out.append((codes, golden.LifParams(
                neurons=n, inputs=m, lanes=1, weight_bits=model.weight_bits,
                mem_bits=model.mem_bits, threshold=theta, leak_mult=LEAK_MULT,
                leak_frac=LEAK_FRAC, leak_rounding="half_up")))
    return out


def spike_counts_int(layers, frames: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Golden integer SNN on one sample's (T, H, W) event counts: output spike counts and every
    layer's (T, N) spikes. Each layer is :func:`hwsim.golden.snn.lif_array.lif_array` fed with the
    previous layer's spikes as address events."""
    frames = np.asarray(frames)
    steps = golden.events_from_counts(frames.reshape(frames.shape[0], -1).astype(np.int64))
    spikes_all = []
    for w, p in layers:
        spikes, _ = golden.lif_array(w, steps, p)
        spikes_all.append(spikes)
        steps = [np.flatnonzero(s) for s in spikes]
    return spikes_all[-1].sum(0), spikes_all


def integer_predict(layers, frames: np.ndarray) -> np.ndarray:
    """Predicted class of each (T, H, W) sample in ``frames`` (N, T, H, W): argmax of counts."""
    return np.array([int(np.argmax(spike_counts_int(layers, f)[0])) for f in frames], np.int64)


def check_frames(frames, shape: SnnShape) -> None:
    """One clear error when frames do not fit the classifier."""
    if frames.ndim != 4 or tuple(frames.shape[2:]) != (shape.side, shape.side):
        raise HwsimError(f"SNN input must be (N, T, {shape.side}, {shape.side}) event frames, "
                         f"not {tuple(frames.shape)}")
    if not math.isfinite(float(frames.sum())):
        raise HwsimError("SNN input frames must be finite")
