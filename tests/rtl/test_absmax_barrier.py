"""Fast tier: the Amaranth AbsmaxBarrier against the golden function."""

import numpy as np
import pytest

from hwsim.golden.vitallm import absmax_barrier as g
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.absmax_barrier import AbsmaxBarrier


def rtl_barrier(p, A, idle=0.0, stall=0.0, seed=0):
    dut = AbsmaxBarrier(p)
    A = np.atleast_2d(A)
    mask = (1 << p.in_width) - 1
    src = Source(dut.a, [int(v) & mask for v in A.ravel()], idle=idle)
    snk = Sink(dut.y, A.size, stall=stall)
    run_streams(dut, [src], [snk], seed=seed)
    w = p.out.width
    q = [((v & ((1 << w) - 1)) ^ (1 << (w - 1))) - (1 << (w - 1)) for v in snk.values]
    m = [v >> w for v in snk.values]
    return (np.array(q).reshape(A.shape), np.array(m).reshape(A.shape),
            snk.cycles[-1] - src.cycles[0] + 1)


@pytest.mark.parametrize("mul_style", ["dsp", "shift_add"])
@pytest.mark.parametrize("length, in_width", [(1, 2), (7, 12), (16, 20)])
def test_bit_exact_and_cycles(mul_style, length, in_width):
    p = g.AbsmaxBarrierParams(length=length, in_width=in_width, mul_style=mul_style)
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
