"""Sliding-window (im2col) generator: a pixel stream in, one convolution window per output
pixel out.

The first half of a quantized convolution in a dataflow design (FINN style): the window unit
turns an image streamed pixel by pixel in NHWC order (a pixel's ``channels`` codes contiguous)
into one vector of ``kernel · kernel_w · channels`` codes per output pixel, which a
matrix–vector unit (``int8-mvu``, ``rows`` = output channels, ``cols`` = the vector length)
turns into the output pixel. This module is the specification of the ``ConvWindow`` RTL in
:mod:`rtl.common.conv_window`, the compiler's ``IntConv`` golden (:func:`im2col`) and the
source of the window's cycle formulas. The window is ``kernel`` rows by ``kernel_w``
columns, steps ``stride`` rows and ``stride_w`` columns and pads ``pad`` rows and ``pad_w``
columns (the ``_w`` values default to the square ones; a 1-D convolution is an image of
height 1 with ``kernel = 1``, ``stride = 1``, ``pad = 0``).

Numerics (no arithmetic: a reordering with padding):

* output pixel ``(oy, ox)`` (``oy < out_height``, ``ox < out_width``, row-major) reads input
  pixels ``(oy·stride − pad + ky, ox·stride_w − pad_w + kx)`` for ``ky < kernel``,
  ``kx < kernel_w``;
* its vector holds, for ``ky`` then ``kx`` then channel ``c``, the code of that pixel's
  channel ``c``, or ``zero_point`` where the pixel lies outside the image (zero-point
  padding: the code of real 0, so a padded window equals the float convolution's zeros).

Hardware (:mod:`rtl.common.conv_window`): ``ring_rows`` = ``min(height, kernel + stride)``
image rows in one on-chip memory (a ring of line buffers), ``channels / lanes`` words of
``lanes`` codes per pixel. An input row is accepted once the rows the current output row
still reads are safe from it; an output vector starts once its last input pixel
(:func:`dependencies`) has been written. Back-pressure on ``y`` stalls the output only; the
next image is accepted once the last window of the current one is issued.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import QType

__all__ = [
    "PIPELINE_DEPTH",
    "ConvWindowParams",
    "action_counts",
    "conv_weight_matrix",
    "conv_window",
    "dependencies",
    "im2col",
    "interval_cycles",
    "output_beat_cycles",
    "storage_bits",
    "stream_cycles",
    "tail_cycles",
]

#: register stages from the cycle a window beat's address is issued to the cycle the beat is
#: on ``y``: the memory's registered read and the output register.
PIPELINE_DEPTH = 2


@dataclass(frozen=True)
class ConvWindowParams:
    """Elaboration parameters of the sliding-window unit.

    Parameters
    ----------
    channels, height, width : int
        Input image: ``height × width`` pixels of ``channels`` codes.
    kernel, stride : int
        Window rows and row step (``kernel ≤ height + 2·pad``).
    pad : int
        Zero-point padding above and below (``0 … kernel − 1``).
    lanes : int
        Codes per beat on ``x`` and ``y``; must divide ``channels``.
    signed : bool
        Codes are int8 (True) or uint8 (False).
    zero_point : int
        The padding code (the input quantizer's code of real 0), inside the code range.
    kernel_w, stride_w, pad_w : int or None
        Window columns, column step and padding left and right (``0 … kernel_w − 1``,
        ``kernel_w ≤ width + 2·pad_w``); None (the default): ``kernel``, ``stride``, ``pad``.

    Raises
    ------
    HwsimError
        On sizes < 1, lanes not dividing channels, a pad outside ``0 … kernel − 1``, a window
        larger than the padded image or a zero point outside the code range.
    """

    channels: int = 8
    height: int = 8
    width: int = 8
    kernel: int = 3
    stride: int = 1
    pad: int = 1
    lanes: int = 1
    signed: bool = True
    zero_point: int = 0
    kernel_w: int | None = None
    stride_w: int | None = None
    pad_w: int | None = None

    def __post_init__(self):
        for name, square in (("kernel_w", "kernel"), ("stride_w", "stride"), ("pad_w", "pad")):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(self, square))
        check_ints(self, "conv-window", ("channels", "height", "width", "kernel", "stride",
                                         "lanes", "kernel_w", "stride_w"))
        check_ints(self, "conv-window", (("pad", 0, self.kernel - 1),
                                         ("pad_w", 0, self.kernel_w - 1)))
        if not isinstance(self.signed, bool):
            raise HwsimError(f"conv-window signed must be true or false, not {self.signed!r}")
        if self.channels % self.lanes:
            raise HwsimError(f"conv-window lanes ({self.lanes}) must divide channels "
                             f"({self.channels})")
        if self.kernel > self.height + 2 * self.pad or self.kernel_w > self.width + 2 * self.pad_w:
            raise HwsimError(f"conv-window kernel {self.kernel}×{self.kernel_w} is larger than "
                             f"the padded {self.height}×{self.width} image (pad {self.pad}×"
                             f"{self.pad_w})")
        q = self.code
        if (isinstance(self.zero_point, bool) or not isinstance(self.zero_point, int | np.integer)
                or not q.min_code <= self.zero_point <= q.max_code):
            raise HwsimError(f"conv-window zero_point must be an integer {q.min_code} … "
                             f"{q.max_code}, not {self.zero_point!r}")

    @property
    def code(self) -> QType:
        """The code format: int8 or uint8."""
        return QType(8, signed=self.signed)

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.pad - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.pad_w - self.kernel_w) // self.stride_w + 1

    @property
    def vector(self) -> int:
        """Codes per window: ``kernel · kernel_w · channels``."""
        return self.kernel * self.kernel_w * self.channels

    @property
    def pixel_beats(self) -> int:
        """Beats per input pixel: ``channels / lanes``."""
        return self.channels // self.lanes

    @property
    def vector_beats(self) -> int:
        """Beats per window: ``kernel · kernel_w · channels / lanes``."""
        return self.kernel * self.kernel_w * self.pixel_beats

    @property
    def ring_rows(self) -> int:
        """Image rows the line-buffer memory holds: ``min(height, kernel + stride)``."""
        return min(self.height, self.kernel + self.stride)

    @property
    def depth(self) -> int:
        """Words of the line-buffer memory (``lanes`` codes each)."""
        return self.ring_rows * self.width * self.pixel_beats


# ------------------------------------------------------------------------------------------
# The function
def im2col(x, kernel: int, stride: int, pad: int, zero_point: int, kernel_w: int | None = None,
           stride_w: int | None = None, pad_w: int | None = None) -> np.ndarray:
    """Windows of NHWC codes: ``x`` (…, H, W, C) → (…, OH, OW, kernel·kernel_w·C), each window
    ordered ``ky``, ``kx``, channel; pixels outside the image read ``zero_point``. ``kernel``,
    ``stride``, ``pad`` are along H; the ``_w`` ones along W (None: the same as along H)."""
    kw = kernel if kernel_w is None else kernel_w
    sw = stride if stride_w is None else stride_w
    pw = pad if pad_w is None else pad_w
    x = np.asarray(x)
    *lead, h, w, c = x.shape
    oh = (h + 2 * pad - kernel) // stride + 1
    ow = (w + 2 * pw - kw) // sw + 1
    padded = np.full((*lead, h + 2 * pad, w + 2 * pw, c), zero_point, dtype=np.int64)
    padded[..., pad:pad + h, pw:pw + w, :] = x
    cols = [padded[..., ky:ky + stride * (oh - 1) + 1:stride,
                   kx:kx + sw * (ow - 1) + 1:sw, :]
            for ky in range(kernel) for kx in range(kw)]
    return np.concatenate(cols, axis=-1)


def conv_weight_matrix(w, groups: int = 1) -> np.ndarray:
    """ONNX ``Conv`` weights ``(out, in/groups, kh, kw)`` as the matrix ``(kh·kw·in, out)`` that
    multiplies an :func:`im2col` window (rows ordered ``ky``, ``kx``, channel). ``groups`` is
    1 or the input channel count (depthwise: block-diagonal, the other channels' weights 0)."""
    w = np.asarray(w)
    out, per, kh, kw = w.shape
    if groups == 1:
        return np.ascontiguousarray(w.transpose(2, 3, 1, 0).reshape(kh * kw * per, out))
    if per != 1 or out % groups:
        raise HwsimError(f"conv weights of shape {w.shape}: groups={groups} must be 1 or "
                         "depthwise (one input channel per group)")
    full = np.zeros((out, groups, kh, kw), dtype=w.dtype)
    mult = out // groups
    for o in range(out):
        full[o, o // mult] = w[o, 0]
    return np.ascontiguousarray(full.transpose(2, 3, 1, 0).reshape(kh * kw * groups, out))


def conv_window(x, p: ConvWindowParams) -> np.ndarray:
    """Golden window unit: NHWC codes ``x`` (…, height, width, channels) of ``p.code`` →
    (…, out_height·out_width, kernel·kernel_w·channels) int64 windows (:func:`im2col`), one per
    output pixel in row-major order.

    Raises
    ------
    HwsimError
        Where ``x`` does not have the image's shape or a code lies outside the code range.
    """
    x = p.code.check(x, "conv-window input codes")
    if x.shape[-3:] != (p.height, p.width, p.channels):
        raise HwsimError(f"conv-window input has shape {x.shape}; its images are "
                         f"{(p.height, p.width, p.channels)} (NHWC)")
    cols = im2col(x, p.kernel, p.stride, p.pad, p.zero_point, p.kernel_w, p.stride_w, p.pad_w)
    return cols.reshape(*x.shape[:-3], p.out_height * p.out_width, p.vector)


# ------------------------------------------------------------------------------------------
# Timing
def dependencies(p: ConvWindowParams) -> list[int]:
    """For each window (row-major), the index of the last input pixel it reads (clipped to
    the image): the window may start once that pixel is written."""
    def last(o, n, k, s, pad):
        return min(n - 1, o * s - pad + k - 1)
    return [last(oy, p.height, p.kernel, p.stride, p.pad) * p.width
            + last(ox, p.width, p.kernel_w, p.stride_w, p.pad_w)
            for oy in range(p.out_height) for ox in range(p.out_width)]


def tail_cycles(p: ConvWindowParams) -> int:
    """Cycles from accepting a window's last input beat (the last beat of its
    :func:`dependencies` pixel) to its last ``y`` beat, when the window waited for it: the
    window's beats issue from the next cycle on, ``vector_beats`` of them, then
    :data:`PIPELINE_DEPTH`."""
    return p.vector_beats + PIPELINE_DEPTH


def interval_cycles(p: ConvWindowParams) -> int:
    """Cycles between the last ``y`` beats of back-to-back windows whose input is there."""
    return p.vector_beats


def output_beat_cycles(p: ConvWindowParams, images: int = 1) -> list[int]:
    """The cycle of every ``y`` beat, counted from the first ``x`` beat (cycle 0), for
    ``images`` images presented one beat per cycle with no idle input and no back-pressure.

    A cycle-by-cycle model of the RTL's control (:mod:`rtl.common.conv_window`): an input
    beat is accepted where its row is free (``row < lowest + ring_rows``, ``lowest`` the first
    image row the current output row reads, clipped at 0) and the previous image's windows
    are all issued; a window beat issues where the window's last input pixel was written in
    an earlier cycle; it is on ``y`` :data:`PIPELINE_DEPTH` cycles later."""
    deps = dependencies(p)
    total_in = p.height * p.width * p.pixel_beats
    n_out = len(deps)
    out, t = [], 0
    for _ in range(images):
        b = 0          # input beats accepted of this image
        written = 0    # pixels fully written (as registered at the start of the cycle)
        j, k = 0, 0    # window, beat within it
        t_start = t
        while j < n_out:
            oy = j // p.out_width
            lowest = max(0, oy * p.stride - p.pad)
            row = b // (p.width * p.pixel_beats)
            accept = b < total_in and row < lowest + p.ring_rows and t >= t_start
            issue = written > deps[j]
            new_written = written + (1 if accept and (b + 1) % p.pixel_beats == 0 else 0)
            if accept:
                b += 1
            if issue:
                out.append(t + PIPELINE_DEPTH)
                k += 1
                if k == p.vector_beats:
                    k, j = 0, j + 1
            written = new_written
            t += 1
        # the next image's first beat is accepted in the cycle after the last issue
    return out


def stream_cycles(p: ConvWindowParams, images: int = 1) -> int:
    """Cycles from the first ``x`` beat to the last ``y`` beat, both counted, for ``images``
    back-to-back images (no idle input, no back-pressure): :func:`output_beat_cycles`."""
    return output_beat_cycles(p, images)[-1] + 1


# ------------------------------------------------------------------------------------------
def storage_bits(p: ConvWindowParams) -> int:
    """Bits of the line-buffer memory: ``ring_rows`` rows of ``width · channels`` codes."""
    return p.depth * 8 * p.lanes


def action_counts(p: ConvWindowParams, images: int = 1) -> dict[str, int]:
    """Hardware actions for ``images`` images: every input code written to the line buffer
    once, every window code read once (padding codes are not read), every window code sent."""
    windows = p.out_height * p.out_width
    reads = 0
    for oy in range(p.out_height):
        rows = sum(0 <= oy * p.stride - p.pad + ky < p.height for ky in range(p.kernel))
        for ox in range(p.out_width):
            cols = sum(0 <= ox * p.stride_w - p.pad_w + kx < p.width
                       for kx in range(p.kernel_w))
            reads += rows * cols
    return {
        "buffer_write_bits": images * 8 * p.height * p.width * p.channels,
        "buffer_read_bits": images * 8 * reads * p.channels,
        "out_bits": images * 8 * windows * p.vector,
        "cycles": stream_cycles(p, images),
    }
