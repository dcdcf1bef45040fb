"""Fast tier: the Amaranth Eltwise against the golden function in Amaranth's simulator."""

import dataclasses

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import eltwise as g
from hwsim.golden.common.lanes import unpack_lanes
from hwsim.kernels import get_kernel
from hwsim.kernels.eltwise import words
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.eltwise import Eltwise


def rtl_eltwise(p, A, B, idle_a=0.0, idle_b=0.0, stall=0.0, seed=0):
    """Run code arrays ``(beats, lanes)`` through the RTL; return (codes, a cycles, b cycles,
    y cycles)."""
    dut = Eltwise(p)
    a = Source(dut.a, words(A, p.lanes), idle=idle_a)
    b = Source(dut.b, words(B, p.lanes), idle=idle_b)
    y = Sink(dut.y, len(a.payloads), stall=stall)
    run_streams(dut, [a, b], [y], seed=seed, together=True)
    codes = np.array([unpack_lanes(v, 8, p.lanes, p.out.signed) for v in y.values])
    return codes, a.cycles, b.cycles, y.cycles


VARIANTS = [
    dict(),
    dict(op="mul", a_signed=False, a_zero=7, b_zero=-3, out_signed=False, out_zero=5,
         mult=1 << 18, shift=24, relu=True),
    dataclasses.asdict(g.params_for("add", 0.05, 0, 0.03, 3, 0.07, -2, b_signed=False,
                                    relu=True)),
    dict(op="mul", mult=(1 << 24) - 1, shift=62, out_narrow=True),  # rounds almost all to 0
    dict(op="mul", mult=1, shift=0, out_narrow=True, out_zero=-9),  # saturates both ways
    dict(op="add", a_mult=(1 << 24) - 1, b_mult=0, shift=24, a_zero=-128, b_zero=127),
]


@pytest.mark.parametrize("lanes", [1, 3, 8])
@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_every_case_bit_exact_and_cycles(lanes, variant):
    p = g.EltwiseParams(**{**VARIANTS[variant], "lanes": lanes})
    for case in get_kernel("eltwise").cases(p, seed=lanes * 10 + variant):
        arr = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, ac, bc, yc = rtl_eltwise(p, arr["A"], arr["B"], idle, idle, stall,
                                      seed=case.get("seed", 0))
        assert np.array_equal(got, g.eltwise(arr["A"], arr["B"], p)), case["name"]
        assert ac == bc  # beats taken in pairs
        beats = len(ac)
        if idle == 0 and stall == 0:
            assert yc[-1] - ac[0] + 1 == g.stream_cycles(p, beats), case["name"]
            assert [y - x for x, y in zip(ac, yc, strict=True)] == [g.latency_cycles(p)] * beats
        else:
            assert all(y - x >= g.latency_cycles(p) for x, y in zip(ac, yc, strict=True))


@pytest.mark.parametrize("idle_a, idle_b", [(0.0, 0.8), (0.8, 0.0), (0.5, 0.2)])
def test_unequal_arrival_and_backpressure(idle_a, idle_b):
    """One stream arrives far more sparsely than the other: beats still pair one to one, in
    order, and under 60 % back-pressure every code is the golden one."""
    p = g.EltwiseParams(lanes=2, op="mul", mult=3, shift=2, b_zero=4)
    rng = np.random.default_rng(3)
    A, B = rng.integers(-128, 128, (40, 2)), rng.integers(-128, 128, (40, 2))
    got, ac, bc, yc = rtl_eltwise(p, A, B, idle_a, idle_b, stall=0.6, seed=5)
    assert np.array_equal(got, g.eltwise(A, B, p))
    assert ac == bc and len(yc) == 40
    assert yc == sorted(yc) and len(set(yc)) == 40


def test_a_beat_waits_for_its_partner():
    """``a`` always valid, ``b`` mostly idle: ``a`` is taken only in the cycles ``b`` is too
    (a lone ``a`` transfer would make the two transfer lists differ)."""
    p = g.EltwiseParams(lanes=1)
    A, B = np.array([[1], [2], [3]]), np.array([[10], [20], [30]])
    got, ac, bc, _ = rtl_eltwise(p, A, B, idle_a=0.0, idle_b=0.9, seed=1)
    assert got.ravel().tolist() == [11, 22, 33]
    assert ac == bc and ac[-1] > 2 * len(ac)  # b's idle cycles spread the pairs out


def test_ports_follow_the_params():
    import gc

    dut = Eltwise(g.EltwiseParams(lanes=3, a_signed=False, out_signed=False))
    assert len(dut.a.payload.as_value()) == 24
    assert not dut.a.payload[0].shape().signed and dut.b.payload[0].shape().signed
    assert not dut.y.payload[0].shape().signed
    with pytest.raises(HwsimError, match="needs EltwiseParams"):
        Eltwise(object())
    del dut
    gc.collect()
