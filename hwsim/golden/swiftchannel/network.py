"""Integer SwiftChannel student: int8 conv + multiplier requantization + LUT gating + PixelShuffle.

The specification of the int8 SwiftChannel (arXiv 2605.01931; REFERENCE.md "SwiftChannel") on
integer numpy arrays. Activations are uint8 codes ``q`` with a zero point ``z`` and a real
(learned) scale (``value = (q − z) · s``); weights int8 with one real scale per output channel;
biases int32 at the accumulator's scale ``s_in · s_w[oc]``. Every rescale is an integer
multiplier and a rounding shift (:func:`requant_mult`)::

    q = clip((acc · M + (zp << S) + 2**(S−1)) >> S, 0, 255)

with ``(M, S) = quantize_multiplier(s_in · s_w[oc] / s_out, bits=16, max_shift=40)``
(:func:`requant_multiplier`): ``M`` a 16-bit unsigned multiplier, ``S ≤ 40``, per output
channel; ties round up (half up on ``acc · M · 2**-S``, the zero point added exactly).
The SPAB gate is fused: the skip add ``x + c2`` rescales each operand's ``q − z`` by its own
multiplier (one shared shift, :func:`quant.qtype.quantize_multipliers_shared`), the wide sum is
multiplied by the gate code and only the product is requantized (:func:`spab_gate`): the sum
``x + c2`` never becomes a uint8 code.

Contract (``tests/golden/test_swiftchannel.py``):

* :func:`swiftchannel_int` equals, with ``==`` on every uint8 code, the output codes of the QAT
  model :class:`models.swiftchannel.qat.QuantSwiftChannel` it was extracted from (that model's
  forward runs this integer pipeline; its backward is straight-through);
* the SPAB gate ``sigmoid(x) − 0.5`` is a 512-entry LUT over [−3, 3): entry ``k`` holds
  ``round(256 · (sigmoid(−3 + (k + ½)·6/512) − ½))`` (the bin centre; an int8 code, scale 2**-8)
  and the index of a code ``q`` is ``clip(floor((q − z) · M · 2**-S) + 256, 0, 511)`` where
  ``M · 2**-S ≈ s · 512/6`` (16-bit ``M``), i.e. ``x·512/6 + 256`` clamped, as in the paper;
* inputs are quantized in float32 (:func:`quantize_input`: ``round_half_even(x / s_in) + z``,
  the division in float32, as ONNX ``QuantizeLinear`` does it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from quant.qtype import Rounding, quantize_multiplier, quantize_multipliers_shared, round_shift

__all__ = [
    "GATE_BITS",
    "GATE_ONE",
    "LUT_RANGE",
    "LUT_SIZE",
    "MAX_SHIFT",
    "MULT_BITS",
    "ConvInt",
    "IntModel",
    "SpabInt",
    "conv_acc",
    "conv_centred",
    "conv_int",
    "dequantize_output",
    "lut_index",
    "lut_multiplier",
    "macs",
    "pixel_shuffle_int",
    "quantize_codes",
    "quantize_input",
    "requant_conv",
    "requant_mult",
    "requant_multiplier",
    "sigmoid_lut",
    "skip_multipliers",
    "skip_sum",
    "spab_gate",
    "spab_int",
    "student_features",
    "swiftchannel_int",
]

LUT_SIZE = 512
LUT_RANGE = 3.0
GATE_BITS = 8
GATE_ONE = 1 << GATE_BITS
_ACT_MAX = 255
#: requantization multipliers are unsigned 16-bit, shifts 0 … 40
MULT_BITS = 16
MAX_SHIFT = 40


def sigmoid_lut() -> np.ndarray:
    """The 512 int8 gate codes ``round(256 · (sigmoid(x_k) − 0.5))``, ``x_k`` the bin centres."""
    x = -LUT_RANGE + (np.arange(LUT_SIZE) + 0.5) * (2 * LUT_RANGE / LUT_SIZE)
    return np.round(GATE_ONE * (1.0 / (1.0 + np.exp(-x)) - 0.5)).astype(np.int64)


def lut_multiplier(scale: float) -> tuple[int, int]:
    """``(M, S)`` with ``M · 2**-S ≈ scale · 512/6``: maps ``q − z`` to a LUT index offset."""
    return quantize_multiplier(float(scale) * LUT_SIZE / (2 * LUT_RANGE), bits=16)


def lut_index(codes, zp: int, mult: int, shift: int) -> np.ndarray:
    """``clip(floor((q − z)·M / 2**S) + 256, 0, 511)`` for uint8 codes ``q``."""
    q = np.asarray(codes, dtype=np.int64)
    off = round_shift((q - int(zp)) * int(mult), int(shift), Rounding.FLOOR)
    return np.clip(off + LUT_SIZE // 2, 0, LUT_SIZE - 1)


def requant_multiplier(real: float) -> tuple[int, int]:
    """``(M, S)`` of one rescale factor: 16-bit ``M``, ``S ≤ 40`` (:func:`quantize_multiplier`)."""
    return quantize_multiplier(float(real), bits=MULT_BITS, max_shift=MAX_SHIFT)


def _per_channel(v, ndim: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.int64)
    return v.reshape((-1,) + (1,) * (ndim - 1)) if v.ndim else v


def requant_mult(acc, mult, shift, zp: int) -> np.ndarray:
    """``clip((acc·M + (zp << S) + 2**(S−1)) >> S, 0, 255)``; ``M``, ``S`` scalars or per
    channel (axis 0 of ``acc``). Exact in int64: ``|acc · M|`` must stay below 2**62."""
    acc = np.asarray(acc, dtype=np.int64)
    m, s = _per_channel(mult, acc.ndim), _per_channel(shift, acc.ndim)
    if np.any(m < 0) or np.any(m >= 1 << MULT_BITS) or np.any(s < 0) or np.any(s > MAX_SHIFT):
        raise HwsimError(f"requantizer multipliers must be {MULT_BITS}-bit unsigned and shifts "
                         f"0 … {MAX_SHIFT}")
    if acc.size and int(np.abs(acc).max()) >= 1 << (62 - MULT_BITS):
        raise HwsimError("a SwiftChannel accumulator passed 2**46: its product would overflow int64")
    y = round_shift(acc * m + (np.int64(zp) << s), s, Rounding.HALF_UP)
    return np.clip(y, 0, _ACT_MAX)


@dataclass(frozen=True)
class ConvInt:
    """One int8 convolution (3×3 or 1×1, stride 1, zero padding in the real domain).

    ``w`` (oc, ic, k, k) int8 codes, ``b`` (oc,) int32 at scale ``s_in · s_w[oc]``, ``mult``,
    ``shift`` (oc,) the requantizers of ``s_in · s_w[oc] / s_out`` (:func:`requant_multiplier`),
    zero points ``z_in``, ``z_out``.
    """

    w: np.ndarray
    b: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    z_in: int
    z_out: int

    @property
    def k(self) -> int:
        return int(self.w.shape[-1])


@dataclass(frozen=True)
class SpabInt:
    """An integer SPAB: two convs, the LUT gate and the fused ``(x + c2) · gate`` with one
    requantizer (:func:`spab_gate`)."""

    c1: ConvInt          # ReLU conv: z_out = 0, the clip at 0 is the ReLU
    c2: ConvInt
    lut_mult: int
    lut_shift: int
    sum_mult_x: int      # sum_mult_x · 2**-sum_shift ≈ s_x · 2**-8 / s_out
    sum_mult_c: int      # sum_mult_c · 2**-sum_shift ≈ s_c2 · 2**-8 / s_out
    sum_shift: int
    z_out: int


@dataclass(frozen=True)
class IntModel:
    s_in: float
    z_in: int
    head: ConvInt
    blocks: tuple[SpabInt, ...]
    tail: ConvInt
    up: ConvInt
    rf: int
    rs: int
    s_out: float
    z_out: int
    lut: np.ndarray


def conv_acc(x, conv: ConvInt) -> np.ndarray:
    """Exact accumulators ``Σ w · (q − z_in) + b`` for codes ``x`` (n, ic, H, W) → (n, oc, H, W)."""
    x = np.asarray(x, dtype=np.int64)
    if x.ndim != 4 or x.shape[1] != conv.w.shape[1]:
        raise HwsimError(f"conv input of shape {x.shape} does not match weights {conv.w.shape}")
    return conv_centred(x - conv.z_in, conv)


def conv_centred(v, conv: ConvInt) -> np.ndarray:
    """``Σ w · v + b`` on centred inputs ``v = q − z_in`` (n, ic, H, W), zero padded, in ``v``'s
    dtype: int64 codes give :func:`conv_acc`; float64 values serve the rounding ablation
    (:mod:`models.swiftchannel.ablation`)."""
    v = np.asarray(v)
    k = conv.k
    p = k // 2
    vp = np.pad(v, ((0, 0), (0, 0), (p, p), (p, p)))
    n, _, H, W = v.shape
    acc = np.zeros((n, conv.w.shape[0], H, W), dtype=v.dtype)
    w = np.asarray(conv.w).astype(v.dtype)
    for dy in range(k):
        for dx in range(k):
            acc += np.einsum("oi,nihw->nohw", w[:, :, dy, dx], vp[:, :, dy:dy + H, dx:dx + W])
    acc += np.asarray(conv.b).astype(v.dtype).reshape(1, -1, 1, 1)
    return acc


def conv_int(x, conv: ConvInt) -> np.ndarray:
    """One int8 conv layer on uint8 codes (n, ic, H, W) → requantized uint8 codes (n, oc, H, W)."""
    acc = conv_acc(x, conv)
    return requant_conv(acc, conv)


def requant_conv(acc, conv: ConvInt) -> np.ndarray:
    """The per-channel requantizer of ``conv`` on accumulators (n, oc, H, W) → uint8 codes."""
    acc = np.asarray(acc, dtype=np.int64).transpose(1, 0, 2, 3)
    return requant_mult(acc, conv.mult, conv.shift, conv.z_out).transpose(1, 0, 2, 3)


def skip_multipliers(s_x: float, s_c: float, s_out: float) -> tuple[int, int, int]:
    """``(M_x, M_c, S)`` of the fused SPAB gate: ``M · 2**-S ≈ s · 2**-8 / s_out`` for the input
    ``x`` and for ``c2``, one shared shift (the gate code's scale ``2**-8`` folded in)."""
    (mx, mc), s = quantize_multipliers_shared((s_x / GATE_ONE / s_out, s_c / GATE_ONE / s_out),
                                              bits=MULT_BITS, max_shift=MAX_SHIFT)
    return mx, mc, s


def skip_sum(x, c2, blk: SpabInt, z_x: int) -> np.ndarray:
    """The wide SPAB skip sum ``(x − z_x)·M_x + (c2 − z_c)·M_c`` (no rounding; one unit
    is ``s_out · 2**(8 − S)`` in the real domain)."""
    x, c2 = np.asarray(x, np.int64), np.asarray(c2, np.int64)
    return (x - z_x) * blk.sum_mult_x + (c2 - blk.c2.z_out) * blk.sum_mult_c


def spab_gate(x, c2, blk: SpabInt, lut: np.ndarray, z_x: int) -> np.ndarray:
    """The SPAB gating unit on codes, element-wise and fused:
    ``clip((skip_sum · lut(c2) + (z_out << S) + 2**(S−1)) >> S, 0, 255)``."""
    g = np.asarray(lut, dtype=np.int64)[lut_index(c2, blk.c2.z_out, blk.lut_mult, blk.lut_shift)]
    return requant_mult(skip_sum(x, c2, blk, z_x) * g, 1, blk.sum_shift, blk.z_out)


def spab_int(x, blk: SpabInt, lut: np.ndarray, z_x: int) -> np.ndarray:
    """``(x + c2) · lut(c2)`` on codes: the two convs, then the fused gate (:func:`spab_gate`)."""
    c2 = conv_int(conv_int(x, blk.c1), blk.c2)
    return spab_gate(x, c2, blk, lut, z_x)


def pixel_shuffle_int(y, rf: int, rs: int) -> np.ndarray:
    """(n, C·rf·rs, H, W) → (n, C, rf·H, rs·W): out[c, rf·h+i, rs·w+j] = in[c·rf·rs + i·rs + j, h, w]."""
    n, c, h, w = y.shape
    oc = c // (rf * rs)
    return y.reshape(n, oc, rf, rs, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(n, oc, rf * h, rs * w)


def quantize_input(x, m: IntModel) -> np.ndarray:
    """Real LS estimates (n, 2, H, W) → uint8 codes (:func:`quantize_codes` at ``s_in``, ``z_in``)."""
    return quantize_codes(x, m.s_in, m.z_in)


def quantize_codes(x, scale: float, zp: int) -> np.ndarray:
    """``clip(round_half_even(x / scale) + zp, 0, 255)`` with the division in float32, as ONNX
    ``QuantizeLinear`` computes it (the QAT model quantizes its input with this too)."""
    x = np.asarray(x, dtype=np.float32)
    q = np.round(x / np.float32(scale)).astype(np.float64)
    return np.clip(q + int(zp), 0, _ACT_MAX).astype(np.int64)


def dequantize_output(codes, m: IntModel) -> np.ndarray:
    return (np.asarray(codes, dtype=np.float64) - m.z_out) * m.s_out


def swiftchannel_int(x_codes, m: IntModel) -> np.ndarray:
    """The whole int8 student on uint8 input codes (n, 2, H, W) → output codes (n, 2, rf·H, rs·W)."""
    return pixel_shuffle_int(student_features(x_codes, m), m.rf, m.rs)


def student_features(x_codes, m: IntModel) -> np.ndarray:
    """The student up to its last conv: codes (n, 2, H, W) → (n, 2·rf·rs, H, W), before the
    PixelShuffle (what the hardware pipeline streams out, one pixel per beat)."""
    x = np.asarray(x_codes)
    if x.ndim != 4 or x.shape[1] != 2:
        raise HwsimError(f"SwiftChannel input codes must be (n, 2, rows, cols), got {x.shape}")
    if x.dtype.kind not in "iu" or (x.size and (x.min() < 0 or x.max() > _ACT_MAX)):
        raise HwsimError("SwiftChannel input codes must be uint8 integers (0 … 255)")
    y = conv_int(x, m.head)
    z = m.head.z_out
    for blk in m.blocks:
        y = spab_int(y, blk, m.lut, z)
        z = blk.z_out
    y = conv_int(y, m.tail)
    return conv_int(y, m.up)


def macs(m: IntModel, rows: int, cols: int) -> int:
    """Multiply–accumulates of one inference on a (rows, cols) input."""
    convs = [m.head, *(c for b in m.blocks for c in (b.c1, b.c2)), m.tail, m.up]
    return rows * cols * sum(int(np.prod(c.w.shape)) for c in convs)


