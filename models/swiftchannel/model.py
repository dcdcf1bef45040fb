"""SwiftChannel student (and teacher) in float PyTorch, with Conv3XC re-parameterization.

Architecture (arXiv 2605.01931; REFERENCE.md "SwiftChannel"): conv 2→12 (3×3) → 4 × SPAB
(12→8→12, 3×3) → conv 12→4 (3×3) → conv 4→(2·rf·rs) (1×1) → PixelShuffle(rf, rs). A SPAB is
``c2 = conv(relu(conv(x)))``, ``out = (x + c2) · (sigmoid(c2) − 0.5)``: the attention is the
parameter-free gate ``sigmoid − 0.5``. While training, every 3×3 conv is a :class:`Conv3XC`
(1×1 → 3×3 → 1×1 plus a 1×1 skip, widened by ``gain``), which :meth:`Conv3XC.fused` folds
into one 3×3 conv for inference (:func:`reparameterize`). The teacher is the same network with
24 channels and 6 blocks.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hwsim.errors import HwsimError

__all__ = ["GATE_RANGE", "SPAB", "Conv3XC", "StudentConfig", "SwiftChannelNet", "gate", "pixel_shuffle",
           "reparameterize"]


@dataclass(frozen=True)
class StudentConfig:
    """Widths of the network. Defaults: the paper's deployed student (≈7.8 k parameters at
    rf = rs = 4)."""

    feat: int = 12
    mid: int = 8
    down: int = 4
    blocks: int = 4
    rf: int = 4        # frequency upscale (PixelShuffle rows)
    rs: int = 4        # spatial upscale (PixelShuffle columns)
    gain: int = 2      # Conv3XC widening while training
    conv3xc: bool = True

    def __post_init__(self):
        for k in ("feat", "mid", "down", "blocks", "rf", "rs", "gain"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwsimError(f"SwiftChannel {k} must be a positive integer, not {v!r}")

    @staticmethod
    def teacher(rf: int = 4, rs: int = 4) -> StudentConfig:
        """The teacher: 24 channels, 6 blocks (paper); mid = 48 is our assumption (126 k
        parameters after folding, the paper says ≈ 122 k)."""
        return StudentConfig(feat=24, mid=48, down=4, blocks=6, rf=rf, rs=rs)


def pixel_shuffle(x: torch.Tensor, rf: int, rs: int) -> torch.Tensor:
    """``(B, C·rf·rs, H, W)`` → ``(B, C, rf·H, rs·W)``.

    ``out[c, rf·h+i, rs·w+j] = in[c·rf·rs + i·rs + j, h, w]`` (torch's PixelShuffle when rf = rs).
    """
    b, c, h, w = x.shape
    oc = c // (rf * rs)
    x = x.reshape(b, oc, rf, rs, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, oc, rf * h, rs * w)


class Conv3XC(nn.Module):
    """A 3×3 conv trained as ``1×1 → 3×3 → 1×1`` (widened by ``gain``) plus a 1×1 skip.

    The forward pass, in training as in eval, folds the branches (:meth:`fused`, a few small
    einsums, differentiable) and runs one 3×3 convolution with zero padding 1: the same function
    as the branches (:meth:`branches`, where the input is zero-padded before the first 1×1 so its
    bias reaches the border exactly as in the folded conv; tested), with gradients to every
    branch weight, at a fraction of the cost: the widened branch convolutions never run on the
    feature maps (``hwsim bench swiftchannel-train-speed`` measures the ratio).
    """

    def __init__(self, c_in: int, c_out: int, gain: int = 2):
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.sk = nn.Conv2d(c_in, c_out, 1)
        self.conv = nn.Sequential(nn.Conv2d(c_in, c_in * gain, 1),
                                  nn.Conv2d(c_in * gain, c_out * gain, 3),
                                  nn.Conv2d(c_out * gain, c_out, 1))

    def fused(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Weights ``(c_out, c_in, 3, 3)`` and bias ``(c_out,)`` of the equivalent 3×3 conv."""
        c1, c2, c3 = self.conv
        w1, b1 = c1.weight[:, :, 0, 0], c1.bias          # (g·ci, ci)
        w2, b2 = c2.weight, c2.bias                      # (g·co, g·ci, 3, 3)
        w3, b3 = c3.weight[:, :, 0, 0], c3.bias          # (co, g·co)
        w = torch.einsum("ob,bakl,ai->oikl", w3, w2, w1)
        b = w3 @ (torch.einsum("bakl,a->b", w2, b1) + b2) + b3
        w = w.clone()
        w[:, :, 1, 1] += self.sk.weight[:, :, 0, 0]
        return w, b + self.sk.bias

    def branches(self, x: torch.Tensor) -> torch.Tensor:
        """The unfolded computation ``conv(pad(x)) + sk(x)``: the reference :meth:`forward`
        must equal."""
        return self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)

    def forward(self, x):
        w, b = self.fused()
        return F.conv2d(x, w, b, padding=1)


def _conv3(c_in: int, c_out: int, cfg: StudentConfig) -> nn.Module:
    return Conv3XC(c_in, c_out, cfg.gain) if cfg.conv3xc else nn.Conv2d(c_in, c_out, 3, padding=1)


#: the gate's input range: the int8 model tabulates ``sigmoid − 0.5`` over [−3, 3) (512-entry
#: LUT, :mod:`hwsim.golden.swiftchannel.network`) and clamps outside it
GATE_RANGE = 3.0


def gate(c2: torch.Tensor) -> torch.Tensor:
    """``sigmoid(clamp(c2, −3, 3)) − 0.5``: the function the int8 LUT tabulates.

    The float student trains with the clamp too. Without it the trained blocks drive most gate
    inputs past ±3 (28–87 % per block in a 24-epoch run) and the LUT's clamp then changes the
    function the network learned (that run's float model drops from −17.6 to −3.7 dB NMSE at
    10 dB when its gate is clamped; docs/swiftchannel.md).
    """
    return torch.sigmoid(torch.clamp(c2, -GATE_RANGE, GATE_RANGE)) - 0.5


class SPAB(nn.Module):
    """Swift parameter-free attention block: ``(x + c2) · (sigmoid(c2) − 0.5)``, the sigmoid's
    input clamped to the LUT's [−3, 3] (:func:`gate`)."""

    def __init__(self, ch: int, mid: int, cfg: StudentConfig):
        super().__init__()
        self.c1 = _conv3(ch, mid, cfg)
        self.c2 = _conv3(mid, ch, cfg)

    def forward(self, x):
        c2 = self.c2(F.relu(self.c1(x)))
        return (x + c2) * gate(c2)


class SwiftChannelNet(nn.Module):
    """Input ``(B, 2, F/rf, C/rs)`` LS estimates (re, im) → ``(B, 2, F, C)`` channel."""

    def __init__(self, cfg: StudentConfig = StudentConfig()):
        super().__init__()
        self.cfg = cfg
        self.head = _conv3(2, cfg.feat, cfg)
        self.blocks = nn.ModuleList(SPAB(cfg.feat, cfg.mid, cfg) for _ in range(cfg.blocks))
        self.tail = _conv3(cfg.feat, cfg.down, cfg)
        self.up = nn.Conv2d(cfg.down, 2 * cfg.rf * cfg.rs, 1)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != 2:
            raise HwsimError(f"SwiftChannel input must be (batch, 2, rows, cols), got {tuple(x.shape)}")
        y = self.head(x)
        for blk in self.blocks:
            y = blk(y)
        return pixel_shuffle(self.up(self.tail(y)), self.cfg.rf, self.cfg.rs)


def reparameterize(net: SwiftChannelNet) -> SwiftChannelNet:
    """A copy of ``net`` with every :class:`Conv3XC` folded into a plain 3×3 ``nn.Conv2d``."""
    cfg = StudentConfig(**{**net.cfg.__dict__, "conv3xc": False})
    out = SwiftChannelNet(cfg)
    src = dict(net.named_modules())
    with torch.no_grad():
        for name, mod in out.named_modules():
            if isinstance(mod, nn.Conv2d) and name in src:
                s = src[name]
                w, b = s.fused() if isinstance(s, Conv3XC) else (s.weight, s.bias)
                mod.weight.copy_(w)
                mod.bias.copy_(b)
    return out.eval()
