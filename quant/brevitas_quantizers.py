"""Torch quantizers of BitNet b1.58 (arXiv 2402.17764): absmean ternary weights, per-token int8.

Importing this module pulls in torch and Brevitas; :mod:`quant` itself stays numpy-only.

* :class:`TernaryAbsmeanWeight` — a Brevitas weight quantizer: 2-bit narrow signed integers
  (levels −1, 0, +1), one scale per matrix equal to ``mean|W|`` (``StatsOp.AVE`` on ``|W|``), so
  ``W_q = clamp(round(W / mean|W|), −1, 1)`` and the dequantized weight is ``W_q · mean|W|`` —
  the paper's ``s = 1 / mean|W|`` with ``W_q / s``. Rounding is ``torch.round`` (half to even)
  with Brevitas's straight-through estimator.
* :class:`PerTokenAbsmaxInt8` — Brevitas has no per-token dynamic activation quantizer (its
  dynamic scaling is group-wise for MX formats), so this one is written here with Brevitas's
  ``round_ste``: ``s = 127 / max(|x|).clamp(min=1e-5)`` over the last dimension,
  ``x_q = clamp(round(x · s), −128, 127)``, dequantized ``x_q / s``; the gradient is the
  straight-through estimator ``x + (q(x) − x).detach()`` of the paper.

Both expose the integer view (:func:`ternary_codes`, :func:`per_token_codes`) the integer
inference path and the exporters read, so no formula exists twice.
"""

from __future__ import annotations

import torch
from brevitas.function.ops_ste import round_ste
from brevitas.inject.enum import StatsOp
from brevitas.quant.scaled_int import Int8WeightPerTensorFloat

__all__ = [
    "ACT_MAX",
    "ACT_MIN",
    "SCALE_FLOOR",
    "PerTokenAbsmaxInt8",
    "TernaryAbsmeanWeight",
    "per_token_codes",
    "ternary_codes",
]

#: Clamp on ``mean|W|`` and on ``max|x|`` (arXiv 2402.17764 reference code: ``clamp(min=1e-5)``).
SCALE_FLOOR = 1e-5
#: Activation code range (int8, full range).
ACT_MIN, ACT_MAX = -128, 127


class TernaryAbsmeanWeight(Int8WeightPerTensorFloat):
    """Brevitas weight quantizer: absmean ternary, one scale per projection matrix."""

    bit_width = 2
    narrow_range = True
    scaling_stats_op = StatsOp.AVE
    scaling_min_val = SCALE_FLOOR


def per_token_codes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token absmax int8: codes (float tensor holding integers) and the per-token step.

    Returns ``(q, step)`` with ``q = clamp(round(x · 127 / max|x|), −128, 127)`` and
    ``step = max|x| / 127`` of shape ``x.shape[:-1] + (1,)``, so that ``x ≈ q · step``.
    ``q`` is computed as ``round(x / step)`` — the same float operation the exported graphs
    perform (``Div`` then round), so torch and ONNX agree code for code.
    """
    amax = x.detach().abs().amax(dim=-1, keepdim=True).clamp(min=SCALE_FLOOR)
    step = amax / ACT_MAX
    q = torch.clamp(torch.round(x.detach() / step), ACT_MIN, ACT_MAX)
    return q, step


class PerTokenAbsmaxInt8(torch.nn.Module):
    """Fake-quantize activations to per-token absmax int8 with a straight-through gradient."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        amax = x.abs().amax(dim=-1, keepdim=True).clamp(min=SCALE_FLOOR).detach()
        step = amax / ACT_MAX
        # ``step`` is detached, so round_ste gives d q / d x = 1: the paper's x + (q(x) − x).detach()
        return torch.clamp(round_ste(x / step), ACT_MIN, ACT_MAX) * step


def ternary_codes(weight: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Absmean ternary codes of a float matrix: ``(W_q as int8, mean|W|)``.

    Equal to what :class:`TernaryAbsmeanWeight` computes inside a Brevitas ``QuantLinear``
    (tested), without building a layer.
    """
    w = weight.detach().float()
    scale = w.abs().mean().clamp(min=SCALE_FLOOR)
    return torch.clamp(torch.round(w / scale), -1, 1).to(torch.int8), float(scale)
