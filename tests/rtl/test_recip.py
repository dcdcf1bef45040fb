import numpy as np
from amaranth.sim import Simulator

from hwsim.golden.common.softmax_int import reciprocal
from rtl.common.recip import Reciprocal


def test_reciprocal_equals_golden_with_stated_latency():
    W, RB = 23, 16
    dut = Reciprocal(W, RB)
    rng = np.random.default_rng(0)
    values = [0, 1, 2, 3, 1 << 15, (1 << 15) + 1, (1 << W) - 1, 1 << (W - 1),
              *rng.integers(1, 1 << W, 40)]
    got = []

    async def bench(ctx):
        for v in values:
            ctx.set(dut.value, int(v))
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            ctx.set(dut.value, 0)
            waited = 1
            while not ctx.get(dut.done):
                await ctx.tick()
                waited += 1
            got.append((ctx.get(dut.r), ctx.get(dut.k), waited))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    r, k = reciprocal(np.array(values), RB)
    assert [g[0] for g in got] == r.tolist()
    assert [g[1] for g in got] == k.tolist()
    assert {g[2] for g in got} == {RB + 2}
