"""The sliding-window golden: windows against a direct loop, the convolution they give against
a direct integer convolution, parameters and the control model's timing."""

import numpy as np
import pytest
from onnx import helper
from qonnx.custom_op.registry import getCustomOp

from hwsim.compile.dialect import DOMAIN
from hwsim.errors import HwsimError
from hwsim.golden.common import conv_window as g

RNG = np.random.default_rng(5)


def _direct_windows(x, k, s, pad, zp, kw=None, sw=None, pw=None):
    kw, sw, pw = (k if kw is None else kw), (s if sw is None else sw), (pad if pw is None else pw)
    h, w, c = x.shape
    oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pw - kw) // sw + 1
    out = np.empty((oh * ow, k * kw * c), np.int64)
    for oy in range(oh):
        for ox in range(ow):
            v = []
            for ky in range(k):
                for kx in range(kw):
                    iy, ix = oy * s - pad + ky, ox * sw - pw + kx
                    inside = 0 <= iy < h and 0 <= ix < w
                    v += list(x[iy, ix]) if inside else [zp] * c
            out[oy * ow + ox] = v
    return out


@pytest.mark.parametrize("h, w, c, k, s, pad", [(5, 6, 2, 3, 1, 1), (8, 8, 4, 3, 2, 1),
                                                (4, 4, 3, 1, 1, 0), (6, 5, 1, 4, 3, 2),
                                                (3, 3, 2, 3, 1, 0)])
def test_windows_equal_a_direct_loop(h, w, c, k, s, pad):
    p = g.ConvWindowParams(channels=c, height=h, width=w, kernel=k, stride=s, pad=pad,
                           signed=False, zero_point=17)
    x = RNG.integers(0, 256, (2, h, w, c))
    got = g.conv_window(x, p)
    assert got.shape == (2, p.out_height * p.out_width, p.vector)
    for n in range(2):
        assert np.array_equal(got[n], _direct_windows(x[n], k, s, pad, 17))


@pytest.mark.parametrize("h, w, c, k, s, pad, kw, sw, pw", [
    (4, 7, 2, 2, 1, 0, 3, 2, 1), (1, 9, 3, 1, 1, 0, 3, 1, 1), (5, 3, 1, 3, 2, 1, 1, 1, 0)])
def test_rectangular_windows_equal_a_direct_loop(h, w, c, k, s, pad, kw, sw, pw):
    """Height and width with their own kernel, stride and pad; height 1 is a 1-D window."""
    p = g.ConvWindowParams(channels=c, height=h, width=w, kernel=k, stride=s, pad=pad,
                           kernel_w=kw, stride_w=sw, pad_w=pw, zero_point=-5)
    assert p.vector == k * kw * c
    x = RNG.integers(-128, 128, (1, h, w, c))
    got = g.conv_window(x, p)
    assert got.shape == (1, p.out_height * p.out_width, p.vector)
    assert np.array_equal(got[0], _direct_windows(x[0], k, s, pad, -5, kw, sw, pw))
    assert len(g.output_beat_cycles(p)) == p.out_height * p.out_width * p.vector_beats


def test_square_defaults_fill_the_width_parameters():
    p = g.ConvWindowParams(channels=2, height=5, width=5, kernel=3, stride=2, pad=1)
    assert (p.kernel_w, p.stride_w, p.pad_w) == (3, 2, 1)
    assert p == g.ConvWindowParams(channels=2, height=5, width=5, kernel=3, stride=2, pad=1,
                                   kernel_w=3, stride_w=2, pad_w=1)


@pytest.mark.parametrize("group", [1, 4])
def test_int_conv_equals_a_direct_integer_convolution(group):
    """The dialect's IntConv (im2col · weight matrix) against a loop over output pixels, with
    zero-point padding, for a dense and a depthwise convolution."""
    n, c, h, w, o, k, s, pad, zp = 1, 4, 6, 5, 4 if group > 1 else 3, 3, 2, 1, -3
    a = RNG.integers(-128, 128, (n, c, h, w)).astype(np.int8)
    wt = RNG.integers(-127, 128, (o, c // group, k, k)).astype(np.int8)
    bias = RNG.integers(-1000, 1000, o).astype(np.int32)
    ctx = {"a": a, "w": wt, "b": bias}
    getCustomOp(helper.make_node("IntConv", ["a", "w", "b"], ["acc"], domain=DOMAIN,
                                 kernel_size=k, stride=s, pad=pad, group=group, pad_code=zp)
                ).execute_node(ctx, None)
    padded = np.full((n, c, h + 2 * pad, w + 2 * pad), zp, np.int64)
    padded[:, :, pad:pad + h, pad:pad + w] = a
    oh, ow = (h + 2 * pad - k) // s + 1, (w + 2 * pad - k) // s + 1
    want = np.zeros((n, o, oh, ow), np.int64)
    for oc in range(o):
        chans = range(c) if group == 1 else [oc]
        for y in range(oh):
            for x in range(ow):
                win = padded[0, list(chans), y * s:y * s + k, x * s:x * s + k]
                want[0, oc, y, x] = int((win * wt[oc].astype(np.int64)).sum()) + bias[oc]
    assert ctx["acc"].dtype == np.int32 and np.array_equal(ctx["acc"], want)


def test_weight_matrix_rows_follow_the_window_order():
    w = RNG.integers(-128, 128, (5, 3, 2, 2))
    m = g.conv_weight_matrix(w)
    assert m.shape == (12, 5)
    assert m[(1 * 2 + 0) * 3 + 2, 4] == w[4, 2, 1, 0]
    d = g.conv_weight_matrix(RNG.integers(-128, 128, (3, 1, 2, 2)), groups=3)
    assert d.shape == (12, 3) and d[(0 * 2 + 1) * 3 + 1, 0] == 0
    with pytest.raises(HwsimError, match="depthwise"):
        g.conv_weight_matrix(w, groups=2)


@pytest.mark.parametrize("kw, match", [
    (dict(lanes=3), "must divide"), (dict(pad=3), "pad"), (dict(kernel=12), "larger"),
    (dict(signed=1), "signed"), (dict(zero_point=128), "zero_point"),
    (dict(signed=False, zero_point=-1), "zero_point"), (dict(stride=0), "stride"),
    (dict(kernel_w=2, pad_w=2), "pad_w"), (dict(kernel_w=7), "larger"),
    (dict(stride_w=0), "stride_w")])
def test_params_are_validated(kw, match):
    with pytest.raises(HwsimError, match=match):
        g.ConvWindowParams(**{"channels": 4, "height": 4, "width": 4, "kernel": 3, **kw})


def test_input_shape_and_range_are_checked():
    p = g.ConvWindowParams(channels=2, height=3, width=3)
    with pytest.raises(HwsimError, match="NHWC"):
        g.conv_window(np.zeros((3, 3, 3), np.int64), p)
    with pytest.raises(HwsimError):
        g.conv_window(np.full((3, 3, 2), 200), p)


def test_dependencies_and_timing():
    p = g.ConvWindowParams(channels=2, height=4, width=4, kernel=3, stride=1, pad=1, lanes=1)
    deps = g.dependencies(p)
    assert deps[0] == 1 * 4 + 1 and deps[-1] == 15 and deps[3] == 1 * 4 + 3
    beats = g.output_beat_cycles(p)
    assert len(beats) == 16 * p.vector_beats
    # the first window waits for pixel 5's last beat (cycle 11): beats from cycle 12 + 2 on
    assert beats[0] == 2 * 5 + 1 + 1 + g.PIPELINE_DEPTH
    assert beats[p.vector_beats - 1] - beats[0] == p.vector_beats - 1
    assert g.stream_cycles(p, 2) > 2 * g.stream_cycles(p, 1) - g.PIPELINE_DEPTH - 2
    a = g.action_counts(p)
    assert a["buffer_write_bits"] == 8 * 32 and a["out_bits"] == 8 * 16 * 18
    # in-image taps per axis: 2, 3, 3, 2 → 10 × 10 pixel reads of 2 codes
    assert a["buffer_read_bits"] == 8 * 2 * 100
