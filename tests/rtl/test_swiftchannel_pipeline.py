"""Fast tier: the composed SwiftChannel pipeline in Amaranth's simulator == golden, cycles == formula."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.swiftchannel import network as sc
from hwsim.golden.swiftchannel import pipeline as spec
from hwsim.kernels.swiftchannel import random_int_model
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.swiftchannel.pipeline import SwiftChannelPipeline


def random_model(seed=0, feat=4, mid=3, down=2, blocks=2, rf=2, rs=1) -> sc.IntModel:
    return random_int_model(seed, feat, mid, down, blocks, rf, rs)


def rtl_pipeline(p, x, idle=0.0, stall=0.0, seed=0):
    dut = SwiftChannelPipeline(p)
    beats = [pack_lanes(x[:, r, c], 8) for r in range(p.height) for c in range(p.width)]
    src = Source(dut.x, beats, idle=idle)
    snk = Sink(dut.y, p.pixels, stall=stall)
    run_streams(dut, [src], [snk], seed=seed)
    out = np.array([unpack_lanes(v, 8, p.out_ch, signed=False) for v in snk.values])
    return out, snk.cycles[-1] - src.cycles[0] + 1


@pytest.mark.parametrize("h, w, taps, blocks", [
    (3, 6, 3, 1),
    pytest.param(4, 5, 1, 2, marks=pytest.mark.slow),
    pytest.param(4, 4, 9, 2, marks=pytest.mark.slow),
])
def test_pipeline_equals_golden_and_formula(h, w, taps, blocks):
    im = random_model(seed=h + taps, blocks=blocks)
    p = spec.PipelineParams.from_model(im, h, w, taps=taps)
    x = np.random.default_rng(taps).integers(0, 256, (2, h, w))
    got, cycles = rtl_pipeline(p, x)
    want = spec.pipeline(x, p)
    assert np.array_equal(got, want), np.argwhere(got != want)[:5]
    # the PixelShuffle is the write order: the streamed beats are the whole student's output
    img = sc.pixel_shuffle_int(got.T.reshape(1, p.out_ch, h, w), im.rf, im.rs)
    assert np.array_equal(img, sc.swiftchannel_int(x[None], im))
    assert cycles == spec.frame_cycles(p) == int(spec.arrival_cycles(p)[-1]) + 1


def test_pipeline_with_idle_input_and_backpressure():
    im = random_model(seed=3, blocks=1)
    p = spec.PipelineParams.from_model(im, 3, 4, taps=3)
    x = np.random.default_rng(5).integers(0, 256, (2, 3, 4))
    got, cycles = rtl_pipeline(p, x, idle=0.3, stall=0.5, seed=4)
    assert np.array_equal(got, spec.pipeline(x, p))
    assert cycles >= spec.frame_cycles(p)


def test_recurrence_equals_closed_form_on_the_default_geometry():
    im = random_model(seed=1, feat=12, mid=8, down=4, blocks=4, rf=4, rs=1)
    for taps in (1, 3, 9):
        p = spec.PipelineParams.from_model(im, 24, 32, taps=taps)
        assert int(spec.arrival_cycles(p)[-1]) + 1 == spec.frame_cycles(p)


def test_bad_params():
    im = random_model()
    with pytest.raises(HwsimError, match="skip_depth"):
        spec.PipelineParams.from_model(im, 4, 8, skip_depth=10)
    with pytest.raises(HwsimError, match="taps"):
        spec.PipelineParams.from_model(im, 4, 8, taps=2)
    p = spec.PipelineParams.from_model(im, 3, 4)
    with pytest.raises(HwsimError, match="input must be"):
        spec.pipeline(np.zeros((2, 4, 4), np.int64), p)
