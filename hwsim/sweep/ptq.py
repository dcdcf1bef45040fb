"""Fake quantization of a float torch model's Conv2d / Linear layers for sweep points.

* weights: symmetric, one scale per output channel (``max|w| / (2**(b−1) − 1)``), codes
  ``±(2**(b−1) − 1)`` — at 2 bits that is ternary ``{−1, 0, +1}``;
* layer inputs: asymmetric unsigned ``a``-bit codes with a zero point, one scale per tensor,
  the range calibrated once (min / max over calibration inputs) and then frozen (PTQ);
* straight-through gradients, so ``method="qat"`` can fine-tune the float weights with the
  quantizers in place.

Everything else (nonlinearities, attention products, normalizations) stays float: a sweep point
measures what the weight and activation widths of the MAC layers cost in accuracy.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

__all__ = ["layer_macs", "quantize_layers"]


class _WeightQuant(nn.Module):
    def __init__(self, bits: int):
        super().__init__()
        self.qmax = (1 << (bits - 1)) - 1

    def forward(self, w):
        dims = tuple(range(1, w.ndim))
        scale = w.detach().abs().amax(dim=dims, keepdim=True).clamp_min(1e-12) / self.qmax
        q = torch.clamp(torch.round(w / scale), -self.qmax, self.qmax) * scale
        return w + (q - w).detach()


def _act_hook(lo: float, hi: float, bits: int):
    levels = (1 << bits) - 1
    scale = max(hi - lo, 1e-12) / levels
    zp = round(-lo / scale)

    def hook(_mod, inputs):
        x = inputs[0]
        q = (torch.clamp(torch.round(x / scale) + zp, 0, levels) - zp) * scale
        return (x + (q - x).detach(), *inputs[1:])
    return hook


def quantize_layers(net: nn.Module, weight_bits: int, act_bits: int,
                    calibrate: Callable[[nn.Module], None],
                    types: tuple[type, ...] = (nn.Conv2d, nn.Linear)) -> int:
    """Quantize every ``types`` layer of ``net`` in place; ``calibrate(net)`` runs the float net
    on calibration data once (under ``no_grad``) to fix the input ranges. Returns the number of
    layers quantized."""
    mods = [m for m in net.modules() if isinstance(m, types)]
    ranges: dict[nn.Module, list[float]] = {}

    def observe(mod, inputs):
        x = inputs[0].detach()
        lo, hi = float(x.min()), float(x.max())
        r = ranges.setdefault(mod, [lo, hi])
        r[0], r[1] = min(r[0], lo), max(r[1], hi)

    hooks = [m.register_forward_pre_hook(observe) for m in mods]
    net.eval()
    with torch.no_grad():
        calibrate(net)
    for h in hooks:
        h.remove()
    for m in mods:
        if m not in ranges:  # not on the calibration path: leave it float
            continue
        lo, hi = ranges[m]
        m.register_forward_pre_hook(_act_hook(min(lo, 0.0), max(hi, 0.0), act_bits))
        parametrize.register_parametrization(m, "weight", _WeightQuant(weight_bits))
    return len(ranges)


def layer_macs(net: nn.Module, run: Callable[[nn.Module], None]) -> dict:
    """MACs and weights of the Conv2d / Linear layers in one ``run(net)``, by forward hooks."""
    total = {"macs": 0}

    def hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            k = mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]
            total["macs"] += out.numel() * k
        else:
            total["macs"] += inp[0].numel() // mod.in_features * mod.in_features \
                * mod.out_features

    mods = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    hs = [m.register_forward_hook(hook) for m in mods]
    net.eval()
    with torch.no_grad():
        run(net)
    for h in hs:
        h.remove()
    return {"macs": total["macs"], "weights": sum(m.weight.numel() for m in mods)}
