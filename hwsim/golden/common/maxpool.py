"""2-D max pooling on 8-bit codes: a pixel stream in, one pooled pixel per output pixel out.

Max pooling commutes with a per-tensor quantizer of positive scale (a monotone map), so on the
codes of such a quantizer it is exact: the compiler's ``IntMaxPool`` (a ``MaxPool`` between a
``DequantizeLinear`` and the next layer) runs it on codes. This module is the specification of
the ``MaxPool`` RTL in :mod:`rtl.common.maxpool` and of its cycle formulas.

Numerics (no arithmetic but comparisons):

* output pixel ``(oy, ox)`` (``oy < out_height``, ``ox < out_width``, row-major), channel
  ``c``, is the largest code of channel ``c`` over the input pixels
  ``(oy·stride − pad + ky, ox·stride − pad + kx)``, ``ky, kx < kernel``, inside the image;
* padding (``pad ≤ kernel − 1``: every window holds an input pixel) reads the smallest code,
  which never wins a maximum: the same as ONNX ``MaxPool``'s −∞ padding.

Hardware (:mod:`rtl.common.maxpool`): the sliding-window unit
(:mod:`hwsim.golden.common.conv_window`, padding code the smallest code) issues each window's
``kernel²`` pixels, ``ky``, ``kx``, channel beat, one beat per cycle; a comparator stage
keeps a running maximum per channel beat (``channels / lanes`` registers of ``lanes`` codes)
and sends the beats of a window's last pixel, maxima final, one cycle after they arrive.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import QType

from . import conv_window as win

__all__ = [
    "REDUCE_DEPTH",
    "MaxPoolParams",
    "action_counts",
    "dependencies",
    "interval_cycles",
    "max_pool2d",
    "maxpool",
    "output_beat_cycles",
    "storage_bits",
    "stream_cycles",
    "tail_cycles",
]

#: register stages the comparator adds after the window unit's output
REDUCE_DEPTH = 1


@dataclass(frozen=True)
class MaxPoolParams:
    """Elaboration parameters of the max-pooling unit.

    Parameters
    ----------
    channels, height, width : int
        Input image: ``height × width`` pixels of ``channels`` codes.
    kernel, stride : int
        Square window size and step (``kernel ≤ height + 2·pad``, same for the width).
    pad : int
        Padding on every side (``0 … kernel − 1``), read as the smallest code.
    lanes : int
        Codes per beat on ``x`` and ``y``; must divide ``channels``.
    signed : bool
        Codes are int8 (True) or uint8 (False).

    Raises
    ------
    HwsimError
        On sizes < 1, lanes not dividing channels, a pad outside ``0 … kernel − 1`` or a window
        larger than the padded image.
    """

    channels: int = 8
    height: int = 8
    width: int = 8
    kernel: int = 2
    stride: int = 2
    pad: int = 0
    lanes: int = 1
    signed: bool = True

    def __post_init__(self):
        check_ints(self, "maxpool", ("channels", "height", "width", "kernel", "stride",
                                     "lanes"))
        check_ints(self, "maxpool", (("pad", 0, self.kernel - 1),))
        if not isinstance(self.signed, bool):
            raise HwsimError(f"maxpool signed must be true or false, not {self.signed!r}")
        if self.channels % self.lanes:
            raise HwsimError(f"maxpool lanes ({self.lanes}) must divide channels "
                             f"({self.channels})")
        if self.kernel > self.height + 2 * self.pad or self.kernel > self.width + 2 * self.pad:
            raise HwsimError(f"maxpool kernel {self.kernel} is larger than the padded "
                             f"{self.height}×{self.width} image (pad {self.pad})")

    @property
    def code(self) -> QType:
        """The code format: int8 or uint8."""
        return QType(8, signed=self.signed)

    @property
    def window(self) -> win.ConvWindowParams:
        """The window unit's parameters (padding code: the smallest code)."""
        return win.ConvWindowParams(channels=self.channels, height=self.height,
                                    width=self.width, kernel=self.kernel, stride=self.stride,
                                    pad=self.pad, lanes=self.lanes, signed=self.signed,
                                    zero_point=self.code.min_code)

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def pixel_beats(self) -> int:
        """Beats per input and per output pixel: ``channels / lanes``."""
        return self.channels // self.lanes


# ------------------------------------------------------------------------------------------
# The functions
def max_pool2d(x, kernel: int, stride: int, pad: int = 0) -> np.ndarray:
    """Max pooling of NCHW integer codes ``x`` (…, C, H, W) → (…, C, OH, OW) int64: square
    ``kernel``, ``stride``, ``pad`` on every side (``pad < kernel``; padding never wins)."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.integer):
        raise HwsimError(f"max_pool2d works on integer codes, not {x.dtype}")
    if x.ndim < 3 or not (kernel >= 1 and stride >= 1 and 0 <= pad < kernel):
        raise HwsimError(f"max_pool2d needs (…, C, H, W) codes, kernel ≥ 1, stride ≥ 1 and "
                         f"0 ≤ pad < kernel (shape {x.shape}, kernel {kernel}, stride "
                         f"{stride}, pad {pad})")
    *lead, h, w = x.shape
    oh, ow = (h + 2 * pad - kernel) // stride + 1, (w + 2 * pad - kernel) // stride + 1
    if oh < 1 or ow < 1:
        raise HwsimError(f"max_pool2d kernel {kernel} is larger than the padded {h}×{w} image")
    low = np.iinfo(np.int64).min
    padded = np.full((*lead, h + 2 * pad, w + 2 * pad), low, dtype=np.int64)
    padded[..., pad:pad + h, pad:pad + w] = x
    out = np.full((*lead, oh, ow), low, dtype=np.int64)
    for ky in range(kernel):
        for kx in range(kernel):
            out = np.maximum(out, padded[..., ky:ky + stride * (oh - 1) + 1:stride,
                                         kx:kx + stride * (ow - 1) + 1:stride])
    return out


def maxpool(x, p: MaxPoolParams) -> np.ndarray:
    """Golden max-pooling unit: NHWC codes ``x`` (…, height, width, channels) of ``p.code``
    → (…, out_height·out_width, channels) int64 pooled pixels in row-major order.

    Raises
    ------
    HwsimError
        Where ``x`` does not have the image's shape or a code lies outside the code range.
    """
    x = p.code.check(x, "maxpool input codes")
    if x.shape[-3:] != (p.height, p.width, p.channels):
        raise HwsimError(f"maxpool input has shape {x.shape}; its images are "
                         f"{(p.height, p.width, p.channels)} (NHWC)")
    y = max_pool2d(np.moveaxis(x, -1, -3), p.kernel, p.stride, p.pad)
    return np.moveaxis(y, -3, -1).reshape(*x.shape[:-3], p.out_height * p.out_width,
                                          p.channels)


# ------------------------------------------------------------------------------------------
# Timing
def dependencies(p: MaxPoolParams) -> list[int]:
    """For each output pixel (row-major), the index of the last input pixel it reads."""
    return win.dependencies(p.window)


def tail_cycles(p: MaxPoolParams) -> int:
    """Cycles from accepting an output pixel's last input beat (its :func:`dependencies`
    pixel's) to its last ``y`` beat, when it waited for it: the window unit's tail, then
    :data:`REDUCE_DEPTH`."""
    return win.tail_cycles(p.window) + REDUCE_DEPTH


def interval_cycles(p: MaxPoolParams) -> int:
    """Cycles between the last ``y`` beats of back-to-back output pixels whose input is
    there: a window's ``kernel² · channels / lanes`` beats."""
    return win.interval_cycles(p.window)


def output_beat_cycles(p: MaxPoolParams, images: int = 1) -> list[int]:
    """The cycle of every ``y`` beat, counted from the first ``x`` beat (cycle 0), for
    ``images`` images presented one beat per cycle with no idle input and no back-pressure:
    the window unit's beats of each window's last pixel
    (:func:`~hwsim.golden.common.conv_window.output_beat_cycles`), :data:`REDUCE_DEPTH`
    cycles later."""
    beats = win.output_beat_cycles(p.window, images)
    per = p.window.vector_beats
    first_of_last = per - p.pixel_beats
    return [t + REDUCE_DEPTH for i, t in enumerate(beats) if i % per >= first_of_last]


def stream_cycles(p: MaxPoolParams, images: int = 1) -> int:
    """Cycles from the first ``x`` beat to the last ``y`` beat, both counted, for ``images``
    back-to-back images (no idle input, no back-pressure): :func:`output_beat_cycles`."""
    return output_beat_cycles(p, images)[-1] + 1


# ------------------------------------------------------------------------------------------
def storage_bits(p: MaxPoolParams) -> int:
    """Bits of the RTL's memories: the window unit's line buffer (the running maxima are
    registers)."""
    return win.storage_bits(p.window)


def action_counts(p: MaxPoolParams, images: int = 1) -> dict[str, int]:
    """Hardware actions for ``images`` images: the window unit's line-buffer writes and reads,
    one 8-bit comparison per window code after each window's first pixel, a running-maximum
    register read per window code, every output code sent."""
    w = win.action_counts(p.window, images)
    windows = images * p.out_height * p.out_width
    return {
        "buffer_write_bits": w["buffer_write_bits"],
        "buffer_read_bits": w["buffer_read_bits"],
        "compare8": windows * (p.kernel * p.kernel - 1) * p.channels,
        "register_read_bits": windows * (p.kernel * p.kernel - 1) * p.channels * 8,
        "out_bits": windows * p.channels * 8,
        "cycles": stream_cycles(p, images),
    }
