"""The quantized SNN's per-time-step network in ONNX, run by onnxruntime over the time steps.

One ONNX graph computes one 1 ms step of :class:`~models.snn.classifier.QuantSnnClassifier`:
``(frame (B, 1, H, W), v0, v1, v2) → (spikes (B, classes), v0', v1', v2')`` with the weight
codes and threshold codes as constants (Conv, MatMul, Mul, Add, Floor, Clip, Greater, Where).
:func:`run_onnx` loops it over the steps, carrying the membranes, and sums the output spikes.
Export, check and the onnxruntime session are :mod:`quant.onnx`'s.

Contract (``tests/models/test_snn_export.py``): every value in the graph is an integer held
exactly in float32 (see :mod:`models.snn.classifier`), so onnxruntime's spike counts equal the
torch model's with ``==`` — no tolerance.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from quant.onnx import export_torch, ort_session

from .classifier import LEAK_FRAC, LEAK_MULT, QuantSnnClassifier

__all__ = ["QuantStep", "export_onnx", "run_onnx"]


class QuantStep(nn.Module):
    """One time step of a :class:`QuantSnnClassifier` with frozen integer weight codes."""

    def __init__(self, model: QuantSnnClassifier):
        super().__init__()
        with torch.no_grad():
            self.register_buffer("wc", model.weight_codes(model.conv)[0].round())
            self.register_buffer("w1", model.weight_codes(model.fc1)[0].round().T.contiguous())
            self.register_buffer("w2", model.weight_codes(model.fc2)[0].round().T.contiguous())
        self.th = [float(t) for t in model.thresholds()]
        self.stride = model.shape.stride
        self.lo, self.hi = -(1 << (model.mem_bits - 1)), (1 << (model.mem_bits - 1)) - 1

    def _lif(self, v, cur, th):
        vl = torch.floor((v * LEAK_MULT + (1 << (LEAK_FRAC - 1))) / (1 << LEAK_FRAC))
        u = torch.clamp(vl + cur, self.lo, self.hi)
        s = (u > th).to(u.dtype)
        return u - s * th, s

    def forward(self, frame, v0, v1, v2):
        cur = nn.functional.conv2d(frame, self.wc, stride=self.stride).flatten(1)
        v0, s = self._lif(v0, cur, self.th[0])
        v1, s = self._lif(v1, s @ self.w1, self.th[1])
        v2, s = self._lif(v2, s @ self.w2, self.th[2])
        return s, v0, v1, v2


def export_onnx(model: QuantSnnClassifier, path: Path, opset: int = 17,
                batch: int | None = None) -> Path:
    """Write the per-step graph (dynamic batch, or a fixed ``batch``: what ``hwsim compile``
    takes), checked, to ``path`` atomically."""
    step = QuantStep(model).eval()
    sh = model.shape
    b = batch or 1
    args = (torch.zeros(b, 1, sh.side, sh.side), torch.zeros(b, sh.conv_out),
            torch.zeros(b, sh.hidden), torch.zeros(b, sh.classes))
    names_in, names_out = ["frame", "v0", "v1", "v2"], ["spikes", "v0_next", "v1_next", "v2_next"]
    export_torch(step, args, path, names_in, names_out, opset=opset,
                 dynamic_axes=None if batch else {n: {0: "batch"} for n in names_in + names_out})
    return Path(path)


def run_onnx(path: Path, frames: np.ndarray) -> np.ndarray:
    """Run the per-step graph over (N, T, H, W) frames; returns (N, classes) spike counts."""
    sess = ort_session(path)
    shapes = {i.name: i.shape for i in sess.get_inputs()}
    n = frames.shape[0]
    v = [np.zeros((n, shapes[k][1]), np.float32) for k in ("v0", "v1", "v2")]
    counts = None
    for t in range(frames.shape[1]):
        s, *v = sess.run(None, {"frame": frames[:, t, None].astype(np.float32),
                                "v0": v[0], "v1": v[1], "v2": v[2]})
        counts = s if counts is None else counts + s
    return counts
