"""The int8 SwiftChannel student: QAT whose forward is the integer pipeline, and its parameters.

Quantization (arXiv 2605.01931, REFERENCE.md; :mod:`hwsim.golden.swiftchannel.network`): uint8
activations with a zero point and a learned real scale, int8 weights with one real scale per
output channel, int32 biases at scale ``s_in · s_w[oc]``, and every requantizer an integer
multiplier and rounding shift, ``q = clip((acc·M + (zp << S) + 2**(S−1)) >> S, 0, 255)``; the
SPAB gate ``sigmoid(x) − 0.5`` is the 512-entry LUT over [−3, 3) and ``(x + c2) · gate`` is
fused, one requantizer for the product (the sum is never a uint8 code).

Brevitas learns the scales: :class:`ShiftedUint8ActPerTensorFloat` activations (uint8, integer
zero point), :class:`Uint8ActPerTensorFloat` after the ReLU of each SPAB (zero point 0: the
ReLU is the clip), :class:`Int8WeightPerChannelFloat` weights, :class:`Int32Bias`. A float
fake-quant graph cannot reproduce integer multipliers code for code, so every layer also runs
the integer golden on the integer codes of its input, with ``(M, S)`` derived from the current
scales, and its output value is made exact by ``out = fq + (exact − fq).detach()``: the forward
pass *is* the integer pipeline (the model's output codes ``==``
:func:`hwsim.golden.swiftchannel.network.swiftchannel_int` of :func:`int_model`), the backward pass is
Brevitas' straight-through one with learned scales. The LUT gate runs on the exact codes too
(:class:`_LutGate`, straight-through sigmoid gradient inside [−3, 3]).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity
from brevitas.quant import Int8WeightPerChannelFloat, Int32Bias, Uint8ActPerTensorFloat
from brevitas.quant.shifted_scaled_int import ShiftedUint8ActPerTensorFloat
from torch import nn

from hwsim.golden.swiftchannel import network as gold

from .model import StudentConfig, SwiftChannelNet, pixel_shuffle

__all__ = ["QuantSwiftChannel", "int_model"]

_INT32 = 2**31


def _act(relu: bool = False) -> QuantIdentity:
    quant = Uint8ActPerTensorFloat if relu else ShiftedUint8ActPerTensorFloat
    return QuantIdentity(act_quant=quant, return_quant_tensor=True)


def _conv(c_in: int, c_out: int, k: int) -> QuantConv2d:
    return QuantConv2d(c_in, c_out, k, padding=k // 2, weight_quant=Int8WeightPerChannelFloat,
                       bias_quant=Int32Bias, return_quant_tensor=False)


class _Act:
    """One activation: the Brevitas QuantTensor (value made exact) and its integer codes."""

    def __init__(self, fq, codes: torch.Tensor):
        self.scale = float(fq.scale.detach())
        self.zp = round(float(fq.zero_point.detach()))
        self.codes = codes  # int64, same shape as the value
        exact = (codes - self.zp).to(fq.value.dtype) * self.scale
        value = fq.value + (exact - fq.value).detach() if torch.is_grad_enabled() else exact
        self.qt = fq.set(value=value)

    @property
    def value(self) -> torch.Tensor:
        return self.qt.value


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))


def _conv_int(conv: QuantConv2d, x: _Act, s_out: float, z_out: int) -> gold.ConvInt:
    """The layer's integer parameters at the current scales (weights, bias, ``(M, S)``)."""
    w = conv.quant_weight()
    s_w = w.scale.detach().reshape(-1).double()
    w_int = torch.round(w.value.detach() / w.scale.detach()).to(torch.int64)
    b_int = torch.round(conv.bias.detach().double() / (s_w * x.scale)).to(torch.int64)
    ms = [gold.requant_multiplier(x.scale * float(sw) / s_out) for sw in s_w.tolist()]
    return gold.ConvInt(w_int.numpy(), np.clip(b_int.numpy(), -_INT32, _INT32 - 1),
                        np.array([m for m, _ in ms]), np.array([s for _, s in ms]), x.zp, z_out)


def _conv_acc(codes: torch.Tensor, c: gold.ConvInt) -> np.ndarray:
    """``Σ w·(q − z_in) + b`` as :func:`hwsim.golden.swiftchannel.network.conv_acc`, by a float64 torch
    convolution (exact: every partial sum is an integer far below 2**53)."""
    w = torch.from_numpy(np.asarray(c.w, np.float64))
    acc = F.conv2d((codes - c.z_in).double(), w, padding=c.k // 2)
    return torch.round(acc).to(torch.int64).numpy() + np.asarray(c.b).reshape(1, -1, 1, 1)


def _layer(conv: QuantConv2d, act: QuantIdentity, x: _Act) -> tuple[_Act, gold.ConvInt]:
    fq = act(conv(x.qt))
    ci = _conv_int(conv, x, float(fq.scale.detach()), round(float(fq.zero_point.detach())))
    return _Act(fq, _t(gold.requant_conv(_conv_acc(x.codes, ci), ci))), ci


class _LutGate(torch.autograd.Function):
    """``lut[idx(q)] / 256`` forward on integer codes; ``sigmoid'`` backward inside [−3, 3], zero
    outside (straight-through)."""

    @staticmethod
    def forward(ctx, value, gate_codes):
        ctx.save_for_backward(value)
        return gate_codes.to(value.dtype) / gold.GATE_ONE

    @staticmethod
    def backward(ctx, grad):
        (value,) = ctx.saved_tensors
        s = torch.sigmoid(value)
        inside = (value.abs() < gold.LUT_RANGE).to(grad.dtype)  # the LUT clamps outside
        return grad * s * (1 - s) * inside, None


class _QSPAB(nn.Module):
    def __init__(self, ch: int, mid: int):
        super().__init__()
        self.c1, self.a1 = _conv(ch, mid, 3), _act(relu=True)
        self.c2, self.a2 = _conv(mid, ch, 3), _act()
        self.a_out = _act()
        self.register_buffer("lut", torch.from_numpy(gold.sigmoid_lut()), persistent=False)

    def forward(self, x: _Act) -> tuple[_Act, gold.SpabInt]:
        c1, i1 = _layer(self.c1, self.a1, x)
        c2, i2 = _layer(self.c2, self.a2, c1)
        lut_mult, lut_shift = gold.lut_multiplier(c2.scale)
        g_codes = self.lut.numpy()[gold.lut_index(c2.codes.numpy(), c2.zp, lut_mult, lut_shift)]
        g = _LutGate.apply(c2.value, _t(g_codes))
        o_fq = self.a_out((x.value + c2.value) * g)  # the fused gate: the sum is not quantized
        s_out, z_out = float(o_fq.scale.detach()), round(float(o_fq.zero_point.detach()))
        mx, mc, sh = gold.skip_multipliers(x.scale, c2.scale, s_out)
        blk = gold.SpabInt(c1=i1, c2=i2, lut_mult=lut_mult, lut_shift=lut_shift, sum_mult_x=mx,
                           sum_mult_c=mc, sum_shift=sh, z_out=z_out)
        out = _Act(o_fq, _t(gold.spab_gate(x.codes.numpy(), c2.codes.numpy(), blk,
                                           self.lut.numpy(), x.zp)))
        return out, blk


class QuantSwiftChannel(nn.Module):
    """The int8 student (plain 3×3 convs, as after re-parameterization)."""

    def __init__(self, cfg: StudentConfig):
        super().__init__()
        self.cfg = cfg
        self.a_in = _act()
        self.head, self.a_head = _conv(2, cfg.feat, 3), _act()
        self.blocks = nn.ModuleList(_QSPAB(cfg.feat, cfg.mid) for _ in range(cfg.blocks))
        self.tail, self.a_tail = _conv(cfg.feat, cfg.down, 3), _act()
        self.up, self.a_up = _conv(cfg.down, 2 * cfg.rf * cfg.rs, 1), _act()

    @classmethod
    def from_float(cls, net: SwiftChannelNet) -> QuantSwiftChannel:
        """Initialize from a re-parameterized float student (plain convs)."""
        q = cls(net.cfg)
        src = dict(net.named_modules())
        with torch.no_grad():
            for name, mod in q.named_modules():
                if isinstance(mod, QuantConv2d):
                    mod.weight.copy_(src[name].weight)
                    mod.bias.copy_(src[name].bias)
        return q

    def forward_int(self, x: torch.Tensor) -> tuple[_Act, gold.IntModel]:
        """Output activation before the PixelShuffle, and the integer model that computed it."""
        fq = self.a_in(x)
        s_in, z_in = float(fq.scale.detach()), round(float(fq.zero_point.detach()))
        y = _Act(fq, _t(gold.quantize_codes(x.detach().numpy(), s_in, z_in)))
        y, head = _layer(self.head, self.a_head, y)
        blocks = []
        for blk in self.blocks:
            y, b = blk(y)
            blocks.append(b)
        y, tail = _layer(self.tail, self.a_tail, y)
        y, up = _layer(self.up, self.a_up, y)
        im = gold.IntModel(s_in=s_in, z_in=z_in, head=head, blocks=tuple(blocks), tail=tail,
                           up=up, rf=self.cfg.rf, rs=self.cfg.rs, s_out=y.scale, z_out=y.zp,
                           lut=gold.sigmoid_lut())
        return y, im

    def forward(self, x):
        return pixel_shuffle(self.forward_int(x)[0].value, self.cfg.rf, self.cfg.rs)

    @torch.no_grad()
    def output_codes(self, x) -> np.ndarray:
        """uint8 output codes after the PixelShuffle (what the golden must reproduce)."""
        self.eval()
        y, _ = self.forward_int(x)
        return pixel_shuffle(y.codes, self.cfg.rf, self.cfg.rs).numpy()


@torch.no_grad()
def int_model(q: QuantSwiftChannel, example: torch.Tensor) -> gold.IntModel:
    """Integer parameters of ``q`` in eval mode (the scales of one forward on ``example``)."""
    q.eval()
    return q.forward_int(example[:1])[1]
