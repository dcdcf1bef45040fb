"""SwiftChannel int8 convolution engine: parameters, golden function and cycle formula.

The engine computes one :class:`hwsim.golden.swiftchannel.network.ConvInt` layer (3×3 or 1×1, stride 1,
zero padding in the real domain) on a uint8 image streamed in raster order, one pixel (all
``ic`` channels) per beat, and streams out the requantized uint8 codes, ``ocp`` output channels
per beat, pixel-major. Golden: :func:`hwsim.golden.swiftchannel.network.conv_int`.

Architecture (:class:`rtl.swiftchannel.conv.SwiftChannelConv`): a line buffer of
:data:`LINE_ROWS` image rows, ``taps`` taps per cycle: each cycle reads ``taps`` pixels of the
3×3 window and multiplies their ``ic`` channels by the weights of ``ocp`` output channels
(``ic · ocp · taps`` DSP48E2-style 9×8-bit MACs), so a pixel costs ``(k²/taps) · oc/ocp``
cycles. Computing starts once the
pixel below-right of the first output pixel has arrived (``W + 2`` pixels for k = 3, one for
k = 1); afterwards the input runs ahead (up to three rows) and never stalls the MACs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.swiftchannel.network import MAX_SHIFT, MULT_BITS, ConvInt, conv_int

__all__ = [
    "LINE_ROWS",
    "PIPELINE_DEPTH",
    "RTL_MAX_WIDTH",
    "ConvEngineParams",
    "action_counts",
    "conv_engine",
    "frame_cycles",
    "rtl_limits",
    "start_cycles",
    "storage_bits",
]

#: rows held by the line buffer (a power of two: the row slot is ``row mod 4``)
LINE_ROWS = 4
#: cycles from the last tap's issue to its output beat (line-buffer read, MAC, requant)
PIPELINE_DEPTH = 3
#: bits of a requantization shift field (0 … MAX_SHIFT)
SHIFT_BITS = MAX_SHIFT.bit_length()


def _tup(a, dtype=np.int64) -> tuple:
    return tuple(np.asarray(a, dtype=dtype).ravel().tolist())


@dataclass(frozen=True)
class ConvEngineParams:
    """Elaboration parameters: shape, parallelism and the layer's integer constants.

    Parameters
    ----------
    ic, oc, height, width, k : int
        Channels in/out, image size, kernel size (3 or 1).
    ocp : int
        Output channels computed in parallel (must divide ``oc``).
    weights : tuple of int
        ``oc · ic · k · k`` int8 codes, row-major (oc, ic, kh, kw).
    bias : tuple of int
        ``oc`` int32 codes at the accumulator's scale.
    mults, shifts : tuple of int
        ``oc`` requantizers ``(acc · M + (z_out << S) + 2**(S−1)) >> S``: 16-bit unsigned
        ``M``, ``0 ≤ S ≤ 40`` (:func:`hwsim.golden.swiftchannel.network.requant_mult`).
    z_in, z_out : int
        Zero points of the input and output codes.
    taps : int
        Taps of the k×k window computed in parallel (must divide k²; 1 = one tap per cycle,
        k = one kernel row, k² = the whole window): ``ic · ocp · taps`` MACs per cycle and
        ``k²/taps`` cycles per pixel and output-channel group.
    """

    ic: int
    oc: int
    height: int
    width: int
    k: int
    ocp: int
    weights: tuple
    bias: tuple
    mults: tuple
    shifts: tuple
    z_in: int
    z_out: int
    taps: int = 1

    def __post_init__(self):
        check_ints(self, "swiftchannel-conv", ("ic", "oc", "height", "width", "k", "ocp", "taps"))
        if self.k not in (1, 3):
            raise HwsimError(f"swiftchannel-conv k must be 1 or 3, not {self.k}")
        if (self.k * self.k) % self.taps:
            raise HwsimError(f"swiftchannel-conv taps ({self.taps}) must divide k² ({self.k ** 2})")
        if self.oc % self.ocp:
            raise HwsimError(f"swiftchannel-conv ocp ({self.ocp}) must divide oc ({self.oc})")
        if self.k == 3 and self.width < 2:
            raise HwsimError("swiftchannel-conv needs width ≥ 2 for a 3×3 kernel")
        for name in ("weights", "bias", "mults", "shifts"):
            object.__setattr__(self, name, _tup(getattr(self, name)))
        if len(self.weights) != self.oc * self.ic * self.k * self.k:
            raise HwsimError(f"swiftchannel-conv needs {self.oc * self.ic * self.k ** 2} weights, "
                             f"got {len(self.weights)}")
        if not len(self.bias) == len(self.mults) == len(self.shifts) == self.oc:
            raise HwsimError(f"swiftchannel-conv needs {self.oc} biases, multipliers and shifts")
        if min(self.weights) < -128 or max(self.weights) > 127:
            raise HwsimError("swiftchannel-conv weights must be int8 codes")
        if min(self.bias) < -(2**31) or max(self.bias) >= 2**31:
            raise HwsimError("swiftchannel-conv biases must be int32 codes")
        if min(self.mults) < 0 or max(self.mults) >= 1 << MULT_BITS:
            raise HwsimError(f"swiftchannel-conv multipliers must be {MULT_BITS}-bit unsigned")
        if min(self.shifts) < 0 or max(self.shifts) > MAX_SHIFT:
            raise HwsimError(f"swiftchannel-conv shifts must lie in 0 … {MAX_SHIFT}, got "
                             f"{min(self.shifts)} … {max(self.shifts)}")
        for name in ("z_in", "z_out"):
            if not 0 <= getattr(self, name) <= 255:
                raise HwsimError(f"swiftchannel-conv {name} must be a uint8 code")

    @classmethod
    def from_conv(cls, conv: ConvInt, height: int, width: int, ocp: int | None = None,
                  taps: int = 1):
        """``taps`` is clamped to k² (a 1×1 layer has one tap)."""
        oc, ic, k, _ = np.asarray(conv.w).shape
        return cls(ic=int(ic), oc=int(oc), height=int(height), width=int(width), k=int(k),
                   ocp=int(ocp or oc), weights=conv.w, bias=conv.b, mults=conv.mult, shifts=conv.shift,
                   z_in=int(conv.z_in), z_out=int(conv.z_out), taps=min(int(taps), int(k) ** 2))

    def conv(self) -> ConvInt:
        w = np.array(self.weights, dtype=np.int64).reshape(self.oc, self.ic, self.k, self.k)
        return ConvInt(w, np.array(self.bias), np.array(self.mults), np.array(self.shifts),
                       self.z_in, self.z_out)

    @property
    def groups(self) -> int:
        return self.oc // self.ocp

    @property
    def steps(self) -> int:
        """Cycles per pixel and output-channel group (``k² / taps``)."""
        return self.k * self.k // self.taps

    @property
    def pixel_cycles(self) -> int:
        """Cycles per pixel: the engine's initiation interval in a dataflow pipeline."""
        return self.groups * self.steps

    @property
    def pixels(self) -> int:
        return self.height * self.width

    @property
    def acc_width(self) -> int:
        """Signed accumulator bits: 9-bit centred codes × int8 weights, ic·k² terms, + int32 bias."""
        terms = self.ic * self.k * self.k
        return max((terms * 255 * 128).bit_length() + 1, 32) + 1


def conv_engine(x, p: ConvEngineParams) -> np.ndarray:
    """Golden: codes (ic, H, W) → output beats (H·W·groups, ocp) in stream order."""
    x = np.asarray(x)
    if x.shape != (p.ic, p.height, p.width):
        raise HwsimError(f"swiftchannel-conv input must be ({p.ic}, {p.height}, {p.width}), "
                         f"got {x.shape}")
    y = conv_int(x[None], p.conv())[0]  # (oc, H, W)
    return y.reshape(p.groups, p.ocp, p.pixels).transpose(2, 0, 1).reshape(-1, p.ocp)


def start_cycles(p: ConvEngineParams) -> int:
    """Input beats needed before the first tap issues: pixel (1, 1) for k = 3, pixel 0 for k = 1."""
    return min(p.width + 2, p.pixels) if p.k == 3 else 1


def compute_cycles(p: ConvEngineParams) -> int:
    return p.pixels * p.pixel_cycles


def frame_cycles(p: ConvEngineParams) -> int:
    """Cycles from the first input beat to the last output beat, both counted (no stalls)."""
    return start_cycles(p) + compute_cycles(p) + PIPELINE_DEPTH


def action_counts(p: ConvEngineParams, frames: int = 1) -> dict[str, int]:
    return {
        "mac_int8": frames * p.pixels * p.oc * p.ic * p.k * p.k,
        "linebuf_read_bits": frames * compute_cycles(p) * 8 * p.ic * p.taps,
        "linebuf_write_bits": frames * p.pixels * 8 * p.ic,
        "requant": frames * p.pixels * p.oc,
        "cycles": frames * frame_cycles(p),
    }


def storage_bits(p: ConvEngineParams) -> int:
    """Bits of the RTL's memories: the line buffer (:data:`LINE_ROWS` rows of ``ic`` int8
    channels), the int8 weight ROM, and per output channel a 32-bit bias and a requantizer."""
    return (LINE_ROWS * p.width * 8 * p.ic + p.oc * p.ic * p.k * p.k * 8
            + p.groups * p.ocp * (32 + 16 + 6))


#: Widest signal the RTL may hold: Amaranth's netlist numbers the bits of one cell in 16 bits
#: (``amaranth.hdl._nir``), so a wider memory word or port fails with an assertion.
RTL_MAX_WIDTH = 1 << 16


def rtl_limits(p: ConvEngineParams) -> list[tuple[str, int, int]]:
    """``(parameter, value, limit)`` of the RTL's elaboration limits: one weight-ROM word
    holds ``ocp × taps × ic`` int8 weights."""
    return [("weight word bits (8 × ocp × taps × ic)", 8 * p.ocp * p.taps * p.ic, RTL_MAX_WIDTH)]
