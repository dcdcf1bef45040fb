"""Fast tier: the SwiftChannel conv engine in Amaranth's simulator == golden, cycles == formula."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.swiftchannel import conv as spec
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.swiftchannel.conv import SwiftChannelConv


def random_params(ic, oc, h, w, k, ocp, seed=0, **kw):
    rng = np.random.default_rng(seed)
    return spec.ConvEngineParams(
        ic=ic, oc=oc, height=h, width=w, k=k, ocp=ocp,
        weights=rng.integers(-128, 128, oc * ic * k * k), bias=rng.integers(-3000, 3000, oc),
        mults=kw.get("mults", rng.integers(1 << 15, 1 << 16, oc)),
        shifts=kw.get("shifts", rng.integers(20, 25, oc)), z_in=int(rng.integers(0, 256)),
        z_out=int(rng.integers(0, 256)), taps=kw.get("taps", 1))


def rtl_conv(p, x, idle=0.0, stall=0.0, seed=0):
    dut = SwiftChannelConv(p)
    beats = [pack_lanes(x[:, r, c], 8) for r in range(p.height) for c in range(p.width)]
    src = Source(dut.x, beats, idle=idle)
    snk = Sink(dut.y, p.pixels * p.groups, stall=stall)
    run_streams(dut, [src], [snk], seed=seed)
    out = np.array([unpack_lanes(v, 8, p.ocp, signed=False) for v in snk.values])
    return out, snk.cycles[-1] - src.cycles[0] + 1


@pytest.mark.parametrize("ic, oc, h, w, k, ocp", [
    (2, 4, 5, 6, 3, 4),     # head-like, all output channels in parallel
    (4, 6, 4, 3, 3, 2),     # three groups of output channels
    (3, 8, 3, 4, 1, 4),     # 1×1 (the upsampling conv)
])
def test_conv_engine_equals_golden_and_formula(ic, oc, h, w, k, ocp):
    p = random_params(ic, oc, h, w, k, ocp, seed=ic + oc)
    x = np.random.default_rng(1).integers(0, 256, (ic, h, w))
    got, cycles = rtl_conv(p, x)
    want = spec.conv_engine(x, p)
    assert got.shape == want.shape
    assert np.array_equal(got, want), np.argwhere(got != want)[:5]
    assert cycles == spec.frame_cycles(p)


@pytest.mark.parametrize("ic, oc, h, w, ocp, taps", [
    (2, 4, 5, 6, 4, 3),     # one kernel row per cycle
    (3, 4, 4, 5, 2, 9),     # the whole window per cycle, two channel groups
])
def test_tap_parallel_engine_equals_golden_and_formula(ic, oc, h, w, ocp, taps):
    p = random_params(ic, oc, h, w, 3, ocp, seed=ic + taps, taps=taps)
    x = np.random.default_rng(6).integers(0, 256, (ic, h, w))
    got, cycles = rtl_conv(p, x)
    assert np.array_equal(got, spec.conv_engine(x, p)), np.argwhere(got != spec.conv_engine(x, p))[:5]
    assert cycles == spec.frame_cycles(p) == spec.start_cycles(p) + h * w * (oc // ocp) * 9 // taps + 3
    got, _ = rtl_conv(p, x, idle=0.3, stall=0.4, seed=2)
    assert np.array_equal(got, spec.conv_engine(x, p))


def test_conv_engine_with_idle_input_and_backpressure():
    p = random_params(3, 4, 4, 5, 3, 2, seed=7)
    x = np.random.default_rng(2).integers(0, 256, (3, 4, 5))
    got, cycles = rtl_conv(p, x, idle=0.3, stall=0.4, seed=3)
    assert np.array_equal(got, spec.conv_engine(x, p))
    assert cycles >= spec.frame_cycles(p)


def test_conv_engine_saturates_and_extreme_requantizers():
    # M = 2**16 − 1, S = 0 (a gain of 65535: saturates), and S = 40 with M = 1 (all to z_out)
    p = random_params(2, 2, 3, 3, 3, 2, seed=1, mults=[65535, 1], shifts=[0, 40])
    x = np.random.default_rng(4).integers(0, 256, (2, 3, 3))
    got, _ = rtl_conv(p, x)
    want = spec.conv_engine(x, p)
    assert np.array_equal(got, want) and {0, 255} & set(want.ravel().tolist())


def test_bad_params():
    with pytest.raises(HwsimError, match="ocp"):
        random_params(2, 6, 3, 3, 3, 4)
    with pytest.raises(HwsimError, match="k must be 1 or 3"):
        random_params(2, 4, 3, 3, 5, 4)
    with pytest.raises(HwsimError, match="taps"):
        random_params(2, 4, 3, 3, 3, 4, taps=4)
    with pytest.raises(HwsimError, match="shifts"):
        random_params(2, 2, 3, 3, 3, 2, shifts=[41, 0])
    with pytest.raises(HwsimError, match="multipliers"):
        random_params(2, 2, 3, 3, 3, 2, mults=[1 << 16, 1])
