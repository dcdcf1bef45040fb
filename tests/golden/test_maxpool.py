"""The max-pooling golden: against torch's ``max_pool2d`` on integer-valued tensors, the NHWC
kernel function against the NCHW one, parameters and the cycle model."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden.common import conv_window as win
from hwsim.golden.common import maxpool as g

RNG = np.random.default_rng(11)


def _torch_pool(x, k, s, pad):
    t = torch.from_numpy(np.asarray(x, np.float64))
    return torch.nn.functional.max_pool2d(t, k, s, pad).numpy()


@pytest.mark.parametrize("shape, k, s, pad", [((2, 3, 6, 6), 2, 2, 0), ((1, 4, 7, 5), 3, 2, 1),
                                              ((1, 2, 5, 5), 2, 1, 0), ((2, 1, 6, 7), 3, 3, 1),
                                              ((1, 3, 4, 4), 1, 1, 0), ((1, 2, 9, 8), 4, 3, 2)])
@pytest.mark.parametrize("signed", [True, False])
def test_max_pool2d_equals_torch(shape, k, s, pad, signed):
    lo, hi = (-128, 127) if signed else (0, 255)
    x = RNG.integers(lo, hi + 1, shape)
    got = g.max_pool2d(x, k, s, pad)
    assert got.dtype == np.int64
    assert np.array_equal(got, _torch_pool(x, k, s, pad).astype(np.int64))


def test_padding_never_wins_even_on_the_smallest_codes():
    x = np.full((1, 1, 3, 3), -128)
    assert np.array_equal(g.max_pool2d(x, 2, 2, 1), np.full((1, 1, 2, 2), -128))
    x[0, 0, 0, 0] = -127
    assert g.max_pool2d(x, 2, 2, 1)[0, 0, 0, 0] == -127


@pytest.mark.parametrize("h, w, c, k, s, pad, lanes", [(6, 6, 4, 2, 2, 0, 2),
                                                       (5, 6, 4, 3, 2, 1, 4),
                                                       (4, 5, 3, 2, 1, 1, 1)])
def test_the_nhwc_kernel_function_is_the_nchw_pool(h, w, c, k, s, pad, lanes):
    p = g.MaxPoolParams(channels=c, height=h, width=w, kernel=k, stride=s, pad=pad,
                        lanes=lanes, signed=False)
    x = RNG.integers(0, 256, (2, h, w, c))
    got = g.maxpool(x, p)
    ref = g.max_pool2d(x.transpose(0, 3, 1, 2), k, s, pad).transpose(0, 2, 3, 1)
    assert got.shape == (2, p.out_height * p.out_width, c)
    assert np.array_equal(got, ref.reshape(2, -1, c))


def test_params_are_checked():
    with pytest.raises(HwsimError, match="lanes"):
        g.MaxPoolParams(channels=3, lanes=2)
    with pytest.raises(HwsimError, match="pad"):
        g.MaxPoolParams(kernel=2, pad=2)
    with pytest.raises(HwsimError, match="larger"):
        g.MaxPoolParams(height=2, width=8, kernel=3, pad=0)
    with pytest.raises(HwsimError, match="signed"):
        g.MaxPoolParams(signed=1)
    p = g.MaxPoolParams(channels=2, height=4, width=4)
    with pytest.raises(HwsimError, match="shape"):
        g.maxpool(np.zeros((1, 4, 4, 3), np.int64), p)
    with pytest.raises(HwsimError, match="range"):
        g.maxpool(np.full((1, 4, 4, 2), 300), p)
    with pytest.raises(HwsimError, match="integer"):
        g.max_pool2d(np.zeros((1, 1, 4, 4), np.float32), 2, 2)


def test_the_window_pads_with_the_smallest_code():
    assert g.MaxPoolParams(signed=True).window.zero_point == -128
    assert g.MaxPoolParams(signed=False).window.zero_point == 0


def test_cycle_model_is_the_windows_last_pixel_plus_the_comparator():
    p = g.MaxPoolParams(channels=4, height=6, width=6, kernel=2, stride=2, lanes=2)
    beats = g.output_beat_cycles(p)
    wbeats = win.output_beat_cycles(p.window)
    assert len(beats) == p.out_height * p.out_width * p.pixel_beats
    # the last beat of each output pixel: the window's last beat, one register later
    per = p.window.vector_beats
    assert beats[p.pixel_beats - 1::p.pixel_beats] == [t + 1 for t in wbeats[per - 1::per]]
    assert g.stream_cycles(p) == beats[-1] + 1
    assert g.stream_cycles(p, 2) > g.stream_cycles(p)
    assert g.tail_cycles(p) == win.tail_cycles(p.window) + g.REDUCE_DEPTH
    assert g.interval_cycles(p) == p.kernel ** 2 * p.pixel_beats
    assert g.dependencies(p) == win.dependencies(p.window)


def test_action_counts():
    p = g.MaxPoolParams(channels=4, height=6, width=6, kernel=2, stride=2)
    a = g.action_counts(p, 2)
    assert a["compare8"] == 2 * 9 * 3 * 4
    assert a["out_bits"] == 2 * 9 * 4 * 8
    assert a["buffer_write_bits"] == 2 * 36 * 4 * 8
    assert g.storage_bits(p) == p.window.depth * 8
