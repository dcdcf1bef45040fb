"""The int8 SwiftChannel student: Brevitas QAT and its integer parameters.

Quantization (arXiv 2605.01931, REFERENCE.md): uint8 activations with a zero point, int8 weights
with one scale per output channel, int32 biases at scale ``s_in · s_w[oc]``, and the requantizer
``q = clip(round(acc · s_in · s_w[oc] / s_out) + zp, 0, 255)``; the SPAB gate
``sigmoid(x) − 0.5`` is a 512-entry LUT over [−3, 3) (:mod:`hwsim.golden.swiftchannel`).

Brevitas quantizers: :class:`ShiftedUint8ActPerTensorFixedPoint` (uint8, learned integer zero
point), :class:`Uint8ActPerTensorFixedPoint` after the ReLU of each SPAB (zero point 0: the ReLU
is the clip), :class:`Int8WeightPerChannelFixedPoint`, :class:`Int32Bias`. All scales are powers
of two (a design choice, not the paper's): every fake-quantized value is then an integer times a
power of two, float32 convolutions, sums and products of them are exact, and the fake-quant
model's output codes equal the integer golden's bit for bit (``tests/golden``). The LUT gate runs
on integer codes in the model too (:class:`_LutGate`, straight-through sigmoid gradient).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from brevitas.nn import QuantConv2d, QuantIdentity
from brevitas.quant import Int32Bias
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint, Uint8ActPerTensorFixedPoint
from brevitas.quant.shifted_scaled_int import ShiftedUint8ActPerTensorFixedPoint
from torch import nn

from hwsim.golden import swiftchannel as gold

from .model import StudentConfig, SwiftChannelNet, pixel_shuffle

__all__ = ["QuantSwiftChannel", "int_model"]


def _act(relu: bool = False) -> QuantIdentity:
    quant = Uint8ActPerTensorFixedPoint if relu else ShiftedUint8ActPerTensorFixedPoint
    return QuantIdentity(act_quant=quant, return_quant_tensor=True)


def _conv(c_in: int, c_out: int, k: int) -> QuantConv2d:
    return QuantConv2d(c_in, c_out, k, padding=k // 2, weight_quant=Int8WeightPerChannelFixedPoint,
                       bias_quant=Int32Bias, return_quant_tensor=False)


def _codes(qt) -> torch.Tensor:
    """Integer codes of a QuantTensor (exact: value / scale is exact for power-of-two scales)."""
    return torch.round(qt.value / qt.scale + qt.zero_point).to(torch.int64)


def _pot(x) -> int:
    """log2 of a power-of-two scale, checked."""
    e = math.log2(float(x))
    if e != round(e):
        raise AssertionError(f"scale {float(x)} is not a power of two")
    return round(e)


class _LutGate(torch.autograd.Function):
    """``lut[idx(q)] / 256`` forward on integer codes; ``sigmoid'`` backward inside [−3, 3], zero
    outside (straight-through)."""

    @staticmethod
    def forward(ctx, value, codes, zp, mult, shift, lut):
        idx = gold.lut_index(codes.numpy(), int(zp), mult, shift)
        ctx.save_for_backward(value)
        return torch.from_numpy(lut[idx].astype(np.float32) / gold.GATE_ONE)

    @staticmethod
    def backward(ctx, grad):
        (value,) = ctx.saved_tensors
        s = torch.sigmoid(value)
        inside = (value.abs() < gold.LUT_RANGE).to(grad.dtype)  # the LUT clamps outside
        return grad * s * (1 - s) * inside, None, None, None, None, None


class _QSPAB(nn.Module):
    def __init__(self, ch: int, mid: int):
        super().__init__()
        self.c1, self.a1 = _conv(ch, mid, 3), _act(relu=True)
        self.c2, self.a2 = _conv(mid, ch, 3), _act()
        self.a_sum, self.a_out = _act(), _act()
        self.register_buffer("lut", torch.from_numpy(gold.sigmoid_lut()), persistent=False)

    #: export mode: the gate as float ``sigmoid − 0.5`` (ONNX has no LUT op: the exports carry
    #: the function the LUT tabulates)
    float_gate = False

    def gate(self, c2) -> torch.Tensor:
        if self.float_gate:  # the function the LUT tabulates: clamped to its range [−3, 3]
            x = torch.clamp(c2.value, -gold.LUT_RANGE, gold.LUT_RANGE)
            return torch.sigmoid(x) - 0.5
        mult, shift = gold.lut_multiplier(float(c2.scale.detach()))
        return _LutGate.apply(c2.value, _codes(c2).cpu(), float(c2.zero_point.detach()), mult, shift,
                              self.lut.numpy())

    def forward(self, x, trace=None):
        c1 = self.a1(self.c1(x))
        c2 = self.a2(self.c2(c1))
        g = self.gate(c2)
        s = self.a_sum(x.value + c2.value)
        out = self.a_out(s.value * g)
        if trace is not None:
            trace.update(x=x, c1=c1, c2=c2, sum=s, out=out)
        return out


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

    def forward_quant(self, x, traces=None):
        """Output QuantTensor before the PixelShuffle; ``traces`` collects every QuantTensor."""
        t = {} if traces is None else traces
        t["in"] = xi = self.a_in(x)
        y = t["head"] = self.a_head(self.head(xi))
        for i, blk in enumerate(self.blocks):
            d = {} if traces is not None else None
            y = blk(y, d)
            if d is not None:
                t[f"block{i}"] = d
        y = t["tail"] = self.a_tail(self.tail(y))
        t["up"] = y = self.a_up(self.up(y))
        return y

    def forward(self, x):
        return pixel_shuffle(self.forward_quant(x).value, self.cfg.rf, self.cfg.rs)

    def set_float_gate(self, on: bool) -> None:
        """Gate as float ``sigmoid − 0.5`` (for ONNX export) instead of the integer LUT."""
        for blk in self.blocks:
            blk.float_gate = on

    @torch.no_grad()
    def output_codes(self, x) -> np.ndarray:
        """uint8 output codes after the PixelShuffle (what the golden must reproduce)."""
        self.eval()
        y = self.forward_quant(x)
        return pixel_shuffle(_codes(y), self.cfg.rf, self.cfg.rs).numpy()


def _conv_params(conv: QuantConv2d, s_in: float, s_out: float, z_in: int, z_out: int) -> dict:
    w = conv.quant_weight()
    s_w = w.scale.detach().reshape(-1)
    w_int = torch.round(w.value / w.scale).to(torch.int64).numpy()
    acc_scale = (s_w * float(s_in)).double()
    b_int = torch.round(conv.bias.detach().double() / acc_scale).to(torch.int64).numpy()
    exps = np.array([_pot(float(s_in) * float(sw)) - _pot(s_out) for sw in s_w])
    return {"w": w_int, "b": np.clip(b_int, -(2**31), 2**31 - 1), "exp": exps,
            "z_in": int(z_in), "z_out": int(z_out)}


@torch.no_grad()
def int_model(q: QuantSwiftChannel, example: torch.Tensor) -> gold.IntModel:
    """Integer parameters of ``q`` (scales and zero points read from one traced forward)."""
    q.eval()
    t: dict = {}
    q.forward_quant(example[:1], traces=t)

    def sz(qt):
        return float(qt.scale), round(float(qt.zero_point))

    s_in, z_in = sz(t["in"])
    s_prev, z_prev = s_in, z_in
    convs = []

    def add_conv(conv, out_qt):
        nonlocal s_prev, z_prev
        s_o, z_o = sz(out_qt)
        convs.append(_conv_params(conv, s_prev, s_o, z_prev, z_o))
        s_prev, z_prev = s_o, z_o

    add_conv(q.head, t["head"])
    blocks = []
    for i, blk in enumerate(q.blocks):
        d = t[f"block{i}"]
        s_x = s_prev
        add_conv(blk.c1, d["c1"])
        c1 = convs.pop()
        add_conv(blk.c2, d["c2"])
        c2 = convs.pop()
        s2 = sz(d["c2"])[0]
        ss, zs = sz(d["sum"])
        so, zo = sz(d["out"])
        mult, shift = gold.lut_multiplier(s2)
        blocks.append(gold.SpabInt(
            c1=gold.ConvInt(**c1), c2=gold.ConvInt(**c2), lut_mult=mult, lut_shift=shift,
            sum_exp_x=_pot(s_x) - _pot(ss), sum_exp_c=_pot(s2) - _pot(ss), z_sum=zs,
            mul_exp=_pot(ss) - gold.GATE_BITS - _pot(so), z_out=zo))
        s_prev, z_prev = so, zo
    add_conv(q.tail, t["tail"])
    add_conv(q.up, t["up"])
    head, tail, up = (gold.ConvInt(**c) for c in convs)
    s_up, z_up = sz(t["up"])
    return gold.IntModel(s_in=s_in, z_in=z_in, head=head, blocks=tuple(blocks), tail=tail, up=up,
                         rf=q.cfg.rf, rs=q.cfg.rs, s_out=s_up, z_out=z_up,
                         lut=gold.sigmoid_lut())
