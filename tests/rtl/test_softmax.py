"""SoftmaxExp: the attention head's component on its own (Amaranth simulator, codes == golden)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from hwsim.golden.common import softmax_int as sm
from rtl.common.softmax import SoftmaxExp

P = spec.AttentionParams(head_dim=8, max_len=7, lanes=4, exp_lanes=3)


def _sim(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_softmax_exp_equals_golden_exponentials_and_sum():
    p, L, E = P, 5, P.exp_lanes
    rng = np.random.default_rng(1)
    scores = rng.integers(-128, 128, L)
    words = [sum((int(scores[t]) & 0xFF) << (8 * (t - w * E)) for t in range(w * E, min(L, w * E + E)))
             for w in range(-(-L // E))]
    dut = SoftmaxExp(p)
    got = {}

    async def bench(ctx):
        ctx.set(dut.row_max, int(scores.max()))
        ctx.set(dut.length, L)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        issued, done_at, cycle = 0, None, 0
        while done_at is None:
            addr = ctx.get(dut.s_addr)
            issue = issued < len(words)
            ctx.set(dut.issue, issue)
            if issue:
                issued += 1
                assert ctx.get(dut.last) == (issued == len(words))
            await ctx.tick()
            cycle += 1
            ctx.set(dut.issue, 0)
            ctx.set(dut.s_data, words[addr] if addr < len(words) else 0)
            if ctx.get(dut.done):
                done_at = cycle
        await ctx.tick()
        got["sum"], got["done"] = ctx.get(dut.sum), done_at
        exps = []
        for w in range(len(words)):
            ctx.set(dut.rd_addr, w)
            await ctx.tick()
            exps.append(ctx.get(dut.rd_data))
        ew = p.softmax.exp_width
        got["exp"] = [(exps[t // E] >> (ew * (t % E))) & ((1 << ew) - 1) for t in range(L)]

    _sim(dut, bench)
    want = sm.exp2_neg(scores.max() - scores, p.softmax)
    assert got["exp"] == want.tolist()
    assert got["sum"] == int(want.sum())
    assert got["done"] == len(words) + 2  # the last word stored 3 cycles after its issue


def test_rejects_other_params():
    with pytest.raises(HwsimError, match="SoftmaxExp needs AttentionParams"):
        SoftmaxExp(object())
