"""Registry entry and stimulus of the 2-D max-pooling unit (``maxpool``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common import maxpool as spec
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes

from . import CliParam, Kernel
from ._contract import interval, latency
from .conv_window import image_cases
from .int8_mvu import flag


def manifest(p: spec.MaxPoolParams) -> dict:
    return {
        "kernel": "maxpool",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "numeric": {
            "function": "hwsim.golden.common.maxpool.maxpool: output pixel (oy, ox), channel c, "
                        "is the largest code of channel c over input pixels (oy*stride - pad "
                        "+ ky, ox*stride - pad + kx), ky, kx < kernel, inside the image",
            "rounding": "none: codes are compared, not computed",
            "overflow": "none",
            "padding": "the smallest code (never wins a maximum: ONNX MaxPool's -inf)",
            "code": p.code.to_dict(),
            "x_beat": "channels/lanes beats per pixel, pixels row-major (NHWC), lane 0 the "
                      "lowest channel",
            "y_beat": "channels/lanes beats per pooled pixel, output pixels row-major",
            "line_buffer": {"rows": p.window.ring_rows, "words": p.window.depth,
                            "word_bits": 8 * p.lanes},
        },
        "latency": latency(spec.stream_cycles, p, 1, unit="image", first="x beat",
                           last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="output pixel"),
        "cycles": {"image": spec.stream_cycles(p, 1), "output_pixel": spec.interval_cycles(p),
                   "tail": spec.tail_cycles(p)},
    }


def images(p: spec.MaxPoolParams, a: dict) -> np.ndarray:
    """A case's images, (n, height, width, channels)."""
    return np.asarray(a["X"]).reshape(-1, p.height, p.width, p.channels)


def x_words(p: spec.MaxPoolParams, a: dict) -> list[int]:
    """The ``x`` beats: ``lanes`` codes each, NHWC order."""
    return [pack_lanes(beat, 8) for beat in images(p, a).reshape(-1, p.lanes)]


def y_codes(p: spec.MaxPoolParams, words) -> list[int]:
    return [int(v) for w in words for v in unpack_lanes(w, 8, p.lanes, signed=p.signed)]


def y_beats(p: spec.MaxPoolParams, a: dict) -> int:
    """Output beats of a case."""
    return images(p, a).shape[0] * p.out_height * p.out_width * p.pixel_beats


def golden(p: spec.MaxPoolParams, a: dict) -> np.ndarray:
    """The golden pooled codes of a case, in stream order."""
    return spec.maxpool(images(p, a), p).ravel()


def expected_cycles(p: spec.MaxPoolParams, a: dict) -> int:
    return spec.stream_cycles(p, images(p, a).shape[0])


def cases(p: spec.MaxPoolParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """:func:`hwsim.kernels.conv_window.image_cases` (its ``extremes`` mostly the smallest
    code: ties and padding-code inputs)."""
    return image_cases(p, seed, quick, extremes_p=(0.8, 0.2))


KERNEL = Kernel(
    name="maxpool",
    top="maxpool",
    summary="2-D max pooling on 8-bit codes: line buffers, running maximum per channel",
    params_cls=spec.MaxPoolParams,
    cli_params=(
        CliParam("channels", int, 8, "codes per input pixel"),
        CliParam("height", int, 8, "image rows"),
        CliParam("width", int, 8, "image columns"),
        CliParam("kernel", int, 2, "window size (square)"),
        CliParam("stride", int, 2, "window step"),
        CliParam("pad", int, 0, "padding on every side (reads the smallest code)"),
        CliParam("lanes", int, 1, "codes per beat (must divide channels)"),
        CliParam("signed", flag, True, "codes are int8 (1) or uint8 (0)"),
    ),
    component_path="rtl.common.maxpool:MaxPool",
    testbench="hwsim.sim.tb_maxpool",
    golden="hwsim.golden.common.maxpool:maxpool",
    cycles=lambda p: spec.stream_cycles(p, 1),
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(channels=2, height=4, width=4, kernel=2, stride=2, pad=0, lanes=1),
                 dict(channels=4, height=5, width=6, kernel=3, stride=2, pad=1, lanes=2,
                      signed=False)),
)
