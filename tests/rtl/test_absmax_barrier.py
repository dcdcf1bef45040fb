"""Fast tier: the Amaranth AbsmaxBarrier against the golden function."""

import numpy as np
import pytest

from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.vitallm import absmax_barrier as g
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.absmax_barrier import AbsmaxBarrier


def rtl_barrier(p, A, idle=0.0, stall=0.0, seed=0):
    dut = AbsmaxBarrier(p)
    A = np.atleast_2d(A)
    src = Source(dut.a, [pack_lanes(beat, p.in_width) for beat in A.reshape(-1, p.lanes)],
                 idle=idle)
    snk = Sink(dut.y, A.size // p.lanes, stall=stall)
    run_streams(dut, [src], [snk], seed=seed)
    qw = p.out.width * p.lanes
    q = [unpack_lanes(v & ((1 << qw) - 1), p.out.width, p.lanes) for v in snk.values]
    m = [[v >> qw] * p.lanes for v in snk.values]
    return (np.concatenate(q).reshape(A.shape), np.array(m).reshape(A.shape),
            snk.cycles[-1] - src.cycles[0] + 1)


@pytest.mark.parametrize("mul_style", ["dsp", "shift_add"])
@pytest.mark.parametrize("length, in_width, lanes", [(1, 2, 1), (7, 12, 1), (16, 20, 1),
                                                     (12, 24, 4)])
def test_bit_exact_and_cycles(mul_style, length, in_width, lanes):
    p = g.AbsmaxBarrierParams(length=length, in_width=in_width, lanes=lanes, mul_style=mul_style)
    for case in get_kernel("absmax-barrier").cases(p, seed=length):
        A = case["arrays"]["A"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        q, m, cycles = rtl_barrier(p, A, idle, stall, seed=case.get("seed", 0))
        gq, gm = g.absmax_barrier(A, p)
        assert np.array_equal(q, gq.reshape(q.shape)), case["name"]
        assert np.all(m == np.asarray(gm).reshape(-1, 1)), case["name"]
        tokens = np.atleast_2d(A).shape[0]
        if idle == 0 and stall == 0:
            assert cycles == g.stream_cycles(p, tokens), case["name"]


def test_wide_accumulators_take_the_exact_path():
    """47-bit accumulators: products pass 2**62, the golden switches to Python integers."""
    p = g.AbsmaxBarrierParams(length=4, in_width=47)
    A = np.array([[(1 << 46) - 1, -(1 << 45) - 3, 12345, -1]])
    q, m, _ = rtl_barrier(p, A)
    gq, gm = g.absmax_barrier(A, p)
    assert np.array_equal(q, gq) and q[0, 0] == 127 and int(m[0, 0]) == int(gm[0])
