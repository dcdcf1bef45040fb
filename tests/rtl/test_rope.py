"""Fast tier: the Amaranth Rope unit against the golden codes and its cycle model in
Amaranth's simulator, and its elaboration errors."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import rope as g
from hwsim.kernels import get_kernel
from hwsim.kernels import rope as kt
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.rope import Rope


def rtl_rope(p, a, idle=0.0, stall=0.0, seed=0):
    dut = Rope(p)
    x = Source(dut.x, kt.x_words(p, a), idle=idle)
    y = Sink(dut.y, kt.y_beats(p, a), stall=stall)
    run_streams(dut, [x], [y], seed=seed)
    return np.array(kt.y_codes(p, y.values)), x.cycles, y.cycles


#: (head_dim, heads, tokens, frac, real factor)
CONFIGS = [(2, 1, 3, 8, 1.0), (4, 2, 3, 14, 0.8), (8, 1, 2, 12, 1.7), (6, 3, 2, 16, 0.05)]


@pytest.mark.parametrize("hd, heads, tokens, frac, real", CONFIGS)
def test_every_case_bit_exact_and_every_beat_on_time(hd, heads, tokens, frac, real):
    ang = np.random.default_rng(hd).uniform(-np.pi, np.pi, (tokens, hd // 2))
    cos, sin = g.rope_tables(np.cos(ang), np.sin(ang), frac)
    mult, shift = g.rope_scale(real, frac)
    p = g.RopeParams(head_dim=hd, heads=heads, tokens=tokens, frac=frac, mult=mult,
                     shift=shift, cos=cos, sin=sin)
    for case in get_kernel("rope").cases(p, seed=hd * 10 + heads):
        a = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, xc, yc = rtl_rope(p, a, idle, stall, seed=case.get("seed", 0))
        assert np.array_equal(got, kt.golden(p, a)), case["name"]
        if idle == 0 and stall == 0:  # a fixed-latency pipeline: every beat, latency later
            assert [b - c for b, c in zip(yc, xc, strict=True)] == \
                [g.latency_cycles(p)] * len(xc), case["name"]
            assert yc[-1] - xc[0] + 1 == kt.expected_cycles(p, a)


def test_the_last_head_drains_without_more_input():
    # one token, then nothing: the second-half codes still come out
    p = g.RopeParams(head_dim=8, heads=1, tokens=1)
    a = {"X": np.arange(-4, 4).reshape(1, 1, 8) * 9}
    got, _, yc = rtl_rope(p, a, idle=0.6, stall=0.5, seed=3)
    assert np.array_equal(got, kt.golden(p, a)) and len(yc) == 8


def test_component_rejects_wrong_params():
    with pytest.raises(HwsimError, match="needs RopeParams"):
        Rope({"head_dim": 4})


def test_the_cycle_check_catches_a_slower_rtl(tmp_path):
    from hwsim.sim.amaranth_tb import simulate_amaranth
    from hwsim.sim.checker import one_cycle_late
    from tests.sim._report_checks import assert_only_cycles_fail

    kernel = get_kernel("rope")
    p = kernel.params(head_dim=4, heads=1, tokens=2)
    assert_only_cycles_fail(simulate_amaranth(one_cycle_late(kernel), p,
                                              kernel.cases(p, quick=True), tmp_path))
