"""Von Mises visual attention on event frames (arXiv 2605.06005, after D'Angelo et al.).

Each of ``orientations`` von Mises kernels (size 13, r0 15, ρ 0.09, thickness 9) is an arc-shaped
edge-grouping filter::

    X = (x − size/2) + r0·cos θ,  Y = (size/2 − y) + r0·sin θ,  r = √(X² + Y²),
    vm_θ(y, x) = exp(thickness · ρ · r0 · cos(atan2(Y, X) − θ)) / I0(r − r0),

normalized to unit sum. At each of ``scales`` pyramid levels (the frame average-pooled by 1, 2,
3) the event frames are convolved with every kernel and drive LIF neurons
(``τ_mem`` = 33 steps, β = exp(−1/τ), subtractive reset at ``threshold``); the spike counts of all
orientations, scales and steps, brought back to full resolution, add up to the saliency map.
Its argmax (first in row-major order; the final membranes break ties when nothing fired) is the
salient point, and a region of interest of the classifier's input size is cropped around it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.special import i0

from hwsim.errors import HwsimError

__all__ = ["AttentionConfig", "crop_frames", "roi_origin", "saliency", "von_mises_kernels"]


@dataclass(frozen=True)
class AttentionConfig:
    """The paper's attention parameters (``threshold`` is in units of one event per pixel)."""

    orientations: int = 8
    size: int = 13
    r0: float = 15.0
    rho: float = 0.09
    thickness: float = 9.0
    scales: int = 3
    tau_mem: float = 33.0
    threshold: float = 2.0

    def __post_init__(self):
        if self.orientations < 1 or self.size < 3 or self.scales < 1:
            raise HwsimError("attention needs ≥ 1 orientation, kernel size ≥ 3 and ≥ 1 scale")
        if not (self.tau_mem > 0 and self.threshold > 0):
            raise HwsimError("attention tau_mem and threshold must be positive")


def von_mises_kernels(cfg: AttentionConfig = AttentionConfig()) -> np.ndarray:
    """(orientations, size, size) kernels, each summing to 1."""
    n = cfg.size
    x = np.arange(n)[None, :].astype(np.float64)
    y = np.arange(n)[:, None].astype(np.float64)
    out = []
    for k in range(cfg.orientations):
        th = np.pi * k / cfg.orientations * 2
        X = (x - n / 2) + cfg.r0 * np.cos(th)
        Y = (n / 2 - y) + cfg.r0 * np.sin(th)
        r = np.sqrt(X**2 + Y**2)
        ang = np.arctan2(Y, X)
        vm = np.exp(cfg.thickness * cfg.rho * cfg.r0 * (np.cos(ang - th) - 1)) / i0(r - cfg.r0)
        out.append(vm / vm.sum())
    return np.stack(out)


def saliency(frames: np.ndarray, cfg: AttentionConfig = AttentionConfig(),
             batch: int = 32) -> np.ndarray:
    """Saliency maps (N, H, W) float of (N, T, H, W) event frames (see the module docstring)."""
    frames = np.asarray(frames)
    if frames.ndim != 4:
        raise HwsimError(f"attention needs (N, T, H, W) frames, not shape {frames.shape}")
    N, T, H, W = frames.shape
    kern = torch.as_tensor(von_mises_kernels(cfg), dtype=torch.float32)[:, None]
    beta = float(np.exp(-1.0 / cfg.tau_mem))
    maps = np.zeros((N, H, W))
    with torch.no_grad():
        for a in range(0, N, batch):
            x = torch.as_tensor(frames[a:a + batch], dtype=torch.float32)
            b = x.shape[0]
            total = torch.zeros(b, H, W)
            last_mem = torch.zeros(b, H, W)
            for s in range(1, cfg.scales + 1):
                xs = x.reshape(b * T, 1, H, W)
                if s > 1:
                    xs = torch.nn.functional.avg_pool2d(xs, s, ceil_mode=True) * s * s
                resp = torch.nn.functional.conv2d(xs, kern, padding=cfg.size // 2)
                resp = resp.reshape(b, T, cfg.orientations, *resp.shape[-2:])
                v = torch.zeros_like(resp[:, 0])
                count = torch.zeros_like(v)
                for t in range(T):
                    v = beta * v + resp[:, t]
                    spk = (v > cfg.threshold).float()
                    v = v - spk * cfg.threshold
                    count += spk
                up = count.sum(1).repeat_interleave(s, -2).repeat_interleave(s, -1)
                total += up[:, :H, :W]
                last_mem += v.sum(1).repeat_interleave(s, -2).repeat_interleave(s, -1)[:, :H, :W]
            # membranes (< threshold each) only break ties between equal spike counts
            scale = float(cfg.orientations * cfg.scales * cfg.threshold) + 1.0
            maps[a:a + b] = (total + last_mem.clamp_min(0) / scale).numpy()
    return maps


def roi_origin(sal: np.ndarray, side: int) -> tuple[int, int]:
    """Top-left (y, x) of the ``side`` × ``side`` window centred on the saliency argmax."""
    H, W = sal.shape
    if side > min(H, W):
        raise HwsimError(f"region of interest ({side} px) is larger than the frame {H}×{W}")
    cy, cx = np.unravel_index(int(np.argmax(sal)), sal.shape)
    return (int(np.clip(cy - side // 2, 0, H - side)), int(np.clip(cx - side // 2, 0, W - side)))


def crop_frames(frames: np.ndarray, side: int = 48, cfg: AttentionConfig = AttentionConfig(),
                return_origins: bool = False):
    """Crop every sample's (T, H, W) frames to ``side`` × ``side`` around its salient point."""
    frames = np.asarray(frames)
    sal = saliency(frames, cfg)
    origins = [roi_origin(m, side) for m in sal]
    out = np.stack([f[:, y:y + side, x:x + side] for f, (y, x) in zip(frames, origins,
                                                                        strict=True)])
    return (out, np.array(origins)) if return_origins else out
