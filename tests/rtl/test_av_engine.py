"""AvEngine: the attention head's component on its own (Amaranth simulator, codes == golden)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from hwsim.golden.common import softmax_int as sm
from rtl.common.av_engine import AvEngine

P = spec.AttentionParams(head_dim=8, max_len=7, lanes=4, exp_lanes=3)


def _sim(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_av_engine_context_and_absmax():
    p, L = P, 6
    C, LN, E, ew, aw = p.chunks, p.lanes, p.exp_lanes, p.softmax.exp_width, p.av_acc_width
    rng = np.random.default_rng(3)
    scores, V = rng.integers(-128, 128, L), rng.integers(-128, 128, (L, p.head_dim))
    exps = sm.exp2_neg(scores.max() - scores, p.softmax)
    r, k = sm.reciprocal(exps.sum(), p.recip_bits)
    exp_words = [sum(int(exps[t]) << (ew * (t % E)) for t in range(w * E, min(L, w * E + E)))
                 for w in range(-(-L // E))]
    v_words = {t * C + g: V[t, g * LN:(g + 1) * LN] for t in range(L) for g in range(C)}
    issues = [(g, t) for g in range(C) for t in range(L)]
    dut = AvEngine(p)
    got = {}

    async def bench(ctx):
        ctx.set(dut.r, int(r))
        ctx.set(dut.k, int(k))
        ctx.set(dut.norm, 1)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.norm, 0)
        ctx.set(dut.start, 0)
        cycle, v_addr = 0, 0
        while not ctx.get(dut.done):
            if cycle < len(issues):
                g, t = issues[cycle]
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, t == 0)
                ctx.set(dut.last, t == L - 1)
                ctx.set(dut.end, (g, t) == issues[-1])
                ctx.set(dut.lane, t % E)
                ctx.set(dut.group, g)
                ctx.set(dut.v_issue, t * C + g)
                next_word = exp_words[t // E]
            else:
                ctx.set(dut.valid, 0)
            v_addr_now = ctx.get(dut.v_addr)
            await ctx.tick()
            cycle += 1
            ctx.set(dut.exp_word, next_word)           # the exponential memory: one cycle late
            v_addr = v_addr_now                        # the V memory: one cycle late
            prob = ctx.get(dut.prob) if ctx.get(dut.active) else 0
            ctx.set(dut.products, [int(prob * x) for x in v_words.get(v_addr, [0] * LN)])
        await ctx.tick()
        got["amax"], got["cycles"] = ctx.get(dut.amax), cycle
        rows = []
        ctx.set(dut.rd_en, 1)
        for g in range(C):
            ctx.set(dut.rd_addr, g)
            await ctx.tick()
            data = ctx.get(dut.rd_data)
            rows += [((data >> (aw * l)) & ((1 << aw) - 1)) for l in range(LN)]
        got["acc"] = [x - (1 << aw) if x >> (aw - 1) else x for x in rows]

    _sim(dut, bench)
    want = sm.softmax_int(scores, p.softmax) @ V
    assert got["acc"] == want.tolist()
    assert got["amax"] == int(np.abs(want).max())
    assert got["cycles"] == len(issues) + 3    # the last group buffered 4 cycles after its issue


def test_rejects_other_params():
    with pytest.raises(HwsimError, match="AvEngine needs AttentionParams"):
        AvEngine(object())
