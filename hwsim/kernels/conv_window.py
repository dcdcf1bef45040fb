"""Registry entry and stimulus of the sliding-window (im2col) unit (``conv-window``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common import conv_window as spec
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes

from . import CliParam, Kernel
from ._contract import interval, latency
from .int8_mvu import flag


def manifest(p: spec.ConvWindowParams) -> dict:
    return {
        "kernel": "conv-window",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "numeric": {
            "function": "hwsim.golden.common.conv_window.conv_window: window (oy, ox) holds, "
                        "for ky, kx, channel, the code of input pixel (oy*stride - pad + ky, "
                        "ox*stride_w - pad_w + kx), zero_point outside the image",
            "rounding": "none: codes are moved, not computed",
            "overflow": "none",
            "code": p.code.to_dict(),
            "x_beat": "channels/lanes beats per pixel, pixels row-major (NHWC), lane 0 the "
                      "lowest channel",
            "y_beat": "kernel*kernel_w*channels/lanes beats per window (ky, kx, channel), "
                      "windows row-major over output pixels",
            "line_buffer": {"rows": p.ring_rows, "words": p.depth, "word_bits": 8 * p.lanes},
        },
        "latency": latency(spec.stream_cycles, p, 1, unit="image", first="x beat",
                           last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="window"),
        "cycles": {"image": spec.stream_cycles(p, 1), "window": spec.interval_cycles(p),
                   "tail": spec.tail_cycles(p)},
    }


def images(p: spec.ConvWindowParams, a: dict) -> np.ndarray:
    """A case's images, (n, height, width, channels)."""
    return np.asarray(a["X"]).reshape(-1, p.height, p.width, p.channels)


def x_words(p: spec.ConvWindowParams, a: dict) -> list[int]:
    """The ``x`` beats: ``lanes`` codes each, NHWC order."""
    return [pack_lanes(beat, 8) for beat in images(p, a).reshape(-1, p.lanes)]


def y_codes(p: spec.ConvWindowParams, words) -> list[int]:
    return [int(v) for w in words for v in unpack_lanes(w, 8, p.lanes, signed=p.signed)]


def golden(p: spec.ConvWindowParams, a: dict) -> np.ndarray:
    """The golden window codes of a case, in stream order."""
    return spec.conv_window(images(p, a), p).ravel()


def expected_cycles(p: spec.ConvWindowParams, a: dict) -> int:
    return spec.stream_cycles(p, images(p, a).shape[0])


def image_cases(p, seed: int = 0, quick: bool = False, extremes_p=None) -> list[dict]:
    """Random images and stress on the handshakes, for a unit that streams NHWC images of
    ``p.code`` codes (``p.height``, ``p.width``, ``p.channels``):

    * ``random``: one image of uniform codes (cycles checked);
    * ``two_images``: two back-to-back images (cycles checked);
    * ``extremes``: only the smallest and largest codes (``extremes_p``: their probabilities);
    * ``idle_backpressure``: 30 % idle input, 40 % output stalls;
    * ``stall90``: 50 % idle input, 90 % output stalls.
    """
    rng = np.random.default_rng(seed)
    q = p.code

    def img(n):
        return rng.integers(q.min_code, q.max_code + 1, (n, p.height, p.width, p.channels))

    out = [{"name": "random", "arrays": {"X": img(1)}}]
    if not quick:
        out.append({"name": "two_images", "arrays": {"X": img(2)}})
        out.append({"name": "extremes", "arrays": {"X": rng.choice(
            [q.min_code, q.max_code], (1, p.height, p.width, p.channels), p=extremes_p)}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"X": img(2)}})
    if not quick:
        out.append({"name": "stall90", "idle": 0.5, "stall": 0.9, "seed": seed + 11,
                    "arrays": {"X": img(1)}})
    return out


def cases(p: spec.ConvWindowParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """:func:`image_cases` of the window unit."""
    return image_cases(p, seed, quick)


KERNEL = Kernel(
    name="conv-window",
    top="conv_window",
    summary="sliding-window (im2col) unit: line buffers, zero-point padding, stride",
    params_cls=spec.ConvWindowParams,
    cli_params=(
        CliParam("channels", int, 8, "codes per input pixel"),
        CliParam("height", int, 8, "image rows"),
        CliParam("width", int, 8, "image columns"),
        CliParam("kernel", int, 3, "window rows (and columns unless --kernel-w)"),
        CliParam("stride", int, 1, "window row step (and column step unless --stride-w)"),
        CliParam("pad", int, 1, "zero-point padding rows (and columns unless --pad-w)"),
        CliParam("lanes", int, 1, "codes per beat (must divide channels)"),
        CliParam("signed", flag, True, "codes are int8 (1) or uint8 (0)"),
        CliParam("zero_point", int, 0, "the padding code"),
        CliParam("kernel_w", int, None, "window columns (default: --kernel)"),
        CliParam("stride_w", int, None, "window column step (default: --stride)"),
        CliParam("pad_w", int, None, "zero-point padding columns (default: --pad)"),
    ),
    component_path="rtl.common.conv_window:ConvWindow",
    testbench="hwsim.sim.tb_conv_window",
    golden="hwsim.golden.common.conv_window:conv_window",
    cycles=lambda p: spec.stream_cycles(p, 1),
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(channels=2, height=5, width=4, kernel=3, stride=1, pad=1, lanes=1),
                 dict(channels=4, height=6, width=5, kernel=3, stride=2, pad=1, lanes=2,
                      signed=False, zero_point=9),
                 dict(channels=2, height=4, width=7, kernel=2, stride=1, pad=0, kernel_w=3,
                      stride_w=2, pad_w=1, lanes=2, zero_point=-3)),
)
