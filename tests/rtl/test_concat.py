"""Fast tier: the Amaranth Concat against the golden function in Amaranth's simulator."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import concat as g
from hwsim.golden.common.lanes import unpack_lanes
from hwsim.kernels import get_kernel
from hwsim.kernels.concat import golden
from hwsim.kernels.eltwise import words
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from hwsim.sim.tb_concat import taken_order
from rtl.common.concat import Concat


def rtl_concat(p, A, B, idle_a=0.0, idle_b=0.0, stall=0.0, seed=0):
    """Run code arrays ``(beats, lanes)`` through the RTL; return (codes ``(beats, lanes)``,
    a cycles, b cycles, y cycles)."""
    dut = Concat(p)
    a = Source(dut.a, words(A, p.lanes), idle=idle_a)
    b = Source(dut.b, words(B, p.lanes), idle=idle_b)
    y = Sink(dut.y, len(a.payloads) + len(b.payloads), stall=stall)
    run_streams(dut, [a, b], [y], seed=seed, together=True)
    codes = np.array([unpack_lanes(v, 8, p.lanes, p.signed) for v in y.values])
    return codes, a.cycles, b.cycles, y.cycles


VARIANTS = [dict(lanes=1, len_a=1, len_b=1), dict(lanes=1, len_a=3, len_b=5),
            dict(lanes=2, len_a=6, len_b=2, signed=False), dict(lanes=2, len_a=2, len_b=8),
            dict(lanes=3, len_a=3, len_b=3, signed=False)]


@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_every_case_bit_exact_and_cycles(variant):
    p = g.ConcatParams(**VARIANTS[variant])
    for case in get_kernel("concat").cases(p, seed=variant):
        arr = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, ac, bc, yc = rtl_concat(p, arr["A"], arr["B"], idle, idle, stall,
                                     seed=case.get("seed", 0))
        assert np.array_equal(got.reshape(golden(p, arr).shape), golden(p, arr)), case["name"]
        order = taken_order(p, ac, bc)
        assert order == sorted(order)  # a's beats of a vector, then b's, vector after vector
        vectors = len(ac) // p.beats_a
        if idle == 0 and stall == 0:
            assert yc[-1] - ac[0] + 1 == g.stream_cycles(p, vectors), case["name"]
            assert [y - x for x, y in zip(order, yc, strict=True)] == \
                [g.latency_cycles(p)] * len(yc)
        else:
            assert all(y - x >= g.latency_cycles(p) for x, y in zip(order, yc, strict=True))


@pytest.mark.parametrize("idle_a, idle_b", [(0.0, 0.8), (0.8, 0.0)])
def test_one_input_sparse_under_backpressure(idle_a, idle_b):
    """One stream arrives far more sparsely than the other, 60 % output stalls: every code is
    the golden one, in order."""
    p = g.ConcatParams(lanes=1, len_a=3, len_b=2)
    rng = np.random.default_rng(3)
    A, B = rng.integers(-128, 128, (30, 1)), rng.integers(-128, 128, (20, 1))
    got, _, _, yc = rtl_concat(p, A, B, idle_a, idle_b, stall=0.6, seed=5)
    assert np.array_equal(got.reshape(10, 5), golden(p, {"A": A, "B": B}))
    assert len(yc) == 50 and yc == sorted(yc) and len(set(yc)) == 50


def test_b_waits_for_a():
    """``b`` always valid, ``a`` mostly idle: ``b`` is taken only after the vector's ``a``."""
    p = g.ConcatParams(lanes=1, len_a=2, len_b=1)
    A, B = np.array([[1], [2], [3], [4]]), np.array([[10], [20]])
    got, ac, bc, _ = rtl_concat(p, A, B, idle_a=0.9, idle_b=0.0, seed=1)
    assert got.ravel().tolist() == [1, 2, 10, 3, 4, 20]
    assert bc[0] > ac[1] and bc[1] > ac[3]


def test_ports_follow_the_params():
    import gc

    dut = Concat(g.ConcatParams(lanes=2, len_a=2, len_b=4, signed=False))
    dut._MustUse__silence = True  # only its ports are looked at
    assert len(dut.a.payload.as_value()) == 16 and len(dut.y.payload.as_value()) == 16
    assert not dut.b.payload[0].shape().signed
    with pytest.raises(HwsimError, match="needs ConcatParams"):
        Concat(object())
    del dut
    gc.collect()
