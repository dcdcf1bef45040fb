"""Fast tier: the Amaranth MaxPool against the golden pooled pixels and its cycle model in
Amaranth's simulator."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import maxpool as g
from hwsim.kernels import get_kernel
from hwsim.kernels import maxpool as kt
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.maxpool import MaxPool


def rtl_pool(p, a, idle=0.0, stall=0.0, seed=0):
    dut = MaxPool(p)
    x = Source(dut.x, kt.x_words(p, a), idle=idle)
    y = Sink(dut.y, kt.y_beats(p, a), stall=stall)
    run_streams(dut, [x], [y], seed=seed)
    return np.array(kt.y_codes(p, y.values)), [c - x.cycles[0] for c in y.cycles]


#: (channels, height, width, kernel, stride, pad, lanes)
CONFIGS = [(2, 4, 4, 2, 2, 0, 1), (4, 6, 6, 2, 2, 0, 2), (4, 5, 6, 3, 2, 1, 2),
           (3, 5, 5, 2, 1, 0, 3), (1, 7, 5, 3, 3, 1, 1), (2, 3, 3, 1, 1, 0, 1)]


@pytest.mark.parametrize("c, h, w, k, s, pad, lanes", CONFIGS)
@pytest.mark.parametrize("signed", [True, False])
def test_every_case_bit_exact_and_cycles(c, h, w, k, s, pad, lanes, signed):
    p = g.MaxPoolParams(channels=c, height=h, width=w, kernel=k, stride=s, pad=pad,
                        lanes=lanes, signed=signed)
    for case in get_kernel("maxpool").cases(p, seed=h * 10 + k):
        a = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, beats = rtl_pool(p, a, idle, stall, seed=case.get("seed", 0))
        assert np.array_equal(got, kt.golden(p, a)), case["name"]
        if idle == 0 and stall == 0:
            n = kt.images(p, a).shape[0]
            assert beats == g.output_beat_cycles(p, n), case["name"]


def test_component_rejects_wrong_params():
    with pytest.raises(HwsimError, match="needs MaxPoolParams"):
        MaxPool({"channels": 4})


def test_the_cycle_check_catches_a_slower_rtl(tmp_path):
    from hwsim.sim.amaranth_tb import simulate_amaranth
    from hwsim.sim.checker import one_cycle_late
    from tests.sim._report_checks import assert_only_cycles_fail

    kernel = get_kernel("maxpool")
    p = kernel.params(channels=2, height=4, width=4, kernel=2, stride=2)
    assert_only_cycles_fail(simulate_amaranth(one_cycle_late(kernel), p,
                                              kernel.cases(p, quick=True), tmp_path))
