"""Fast tier: the Amaranth ConvWindow against the golden windows and its cycle model in
Amaranth's simulator."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import conv_window as g
from hwsim.kernels import conv_window as kt
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.conv_window import ConvWindow


def rtl_window(p, a, idle=0.0, stall=0.0, seed=0):
    dut = ConvWindow(p)
    x = Source(dut.x, kt.x_words(p, a), idle=idle)
    n = kt.images(p, a).shape[0] * p.out_height * p.out_width * p.vector_beats
    y = Sink(dut.y, n, stall=stall)
    run_streams(dut, [x], [y], seed=seed)
    return np.array(kt.y_codes(p, y.values)), [c - x.cycles[0] for c in y.cycles]


#: (channels, height, width, kernel, stride, pad, lanes)
CONFIGS = [(2, 5, 4, 3, 1, 1, 1), (4, 6, 5, 3, 2, 1, 2), (3, 4, 4, 1, 1, 0, 3),
           (1, 6, 6, 4, 3, 2, 1), (2, 3, 3, 3, 1, 0, 2), (2, 8, 3, 5, 1, 2, 1),
           (8, 8, 8, 3, 2, 1, 8), (3, 8, 8, 3, 1, 1, 3)]


@pytest.mark.parametrize("c, h, w, k, s, pad, lanes", CONFIGS)
@pytest.mark.parametrize("signed", [True, False])
def test_every_case_bit_exact_and_cycles(c, h, w, k, s, pad, lanes, signed):
    p = g.ConvWindowParams(channels=c, height=h, width=w, kernel=k, stride=s, pad=pad,
                           lanes=lanes, signed=signed, zero_point=-5 if signed else 200)
    for case in get_kernel("conv-window").cases(p, seed=h * 10 + k):
        a = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, beats = rtl_window(p, a, idle, stall, seed=case.get("seed", 0))
        assert np.array_equal(got, kt.golden(p, a)), case["name"]
        if idle == 0 and stall == 0:
            n = kt.images(p, a).shape[0]
            assert beats == g.output_beat_cycles(p, n), case["name"]


#: (channels, height, width, kernel, stride, pad, kernel_w, stride_w, pad_w, lanes): rectangular
#: windows; height 1 with a 1-row window is a 1-D convolution
RECT = [(2, 4, 7, 2, 1, 0, 3, 2, 1, 2), (3, 1, 9, 1, 1, 0, 3, 1, 1, 1),
        (2, 1, 10, 1, 1, 0, 4, 3, 2, 2), (1, 6, 3, 3, 2, 1, 1, 1, 0, 1)]


@pytest.mark.parametrize("c, h, w, k, s, pad, kw, sw, pw, lanes", RECT)
def test_rectangular_windows_bit_exact_and_cycles(c, h, w, k, s, pad, kw, sw, pw, lanes):
    p = g.ConvWindowParams(channels=c, height=h, width=w, kernel=k, stride=s, pad=pad,
                           kernel_w=kw, stride_w=sw, pad_w=pw, lanes=lanes, zero_point=7)
    for case in get_kernel("conv-window").cases(p, seed=w * 10 + kw):
        a = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, beats = rtl_window(p, a, idle, stall, seed=case.get("seed", 0))
        assert np.array_equal(got, kt.golden(p, a)), case["name"]
        if idle == 0 and stall == 0:
            assert beats == g.output_beat_cycles(p, kt.images(p, a).shape[0]), case["name"]

def test_component_rejects_wrong_params():
    with pytest.raises(HwsimError, match="needs ConvWindowParams"):
        ConvWindow({"channels": 4})


def test_the_cycle_check_catches_a_slower_rtl(tmp_path):
    from hwsim.sim.amaranth_tb import simulate_amaranth
    from hwsim.sim.checker import one_cycle_late
    from tests.sim._report_checks import assert_only_cycles_fail

    kernel = get_kernel("conv-window")
    p = kernel.params(channels=2, height=4, width=4, kernel=3, stride=1, pad=1)
    assert_only_cycles_fail(simulate_amaranth(one_cycle_late(kernel), p,
                                              kernel.cases(p, quick=True), tmp_path))
