"""QkEngine: the attention head's component on its own (Amaranth simulator, codes == golden)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from hwsim.golden.common import int8_matmul as mm
from rtl.common.qk_engine import QkEngine


def _sim(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("style", ["dsp", "booth"])
def test_qk_engine_scores_and_row_max(style):
    p = spec.AttentionParams(head_dim=8, max_len=7, lanes=4, exp_lanes=3, multiplier=style)
    rng = np.random.default_rng(0)
    L, C, E = 7, p.chunks, p.exp_lanes
    q, K = rng.integers(-128, 128, p.head_dim), rng.integers(-128, 128, (L, p.head_dim))
    M, S = mm.fold_scale(0.02, 0.02, 0.35, 16)
    dut = QkEngine(p)
    got = {}

    async def bench(ctx):
        ctx.set(dut.mult, M)
        ctx.set(dut.shift, S)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for t in range(L):
            for c in range(C):
                sl = slice(c * p.lanes, (c + 1) * p.lanes)
                ctx.set(dut.products, [int(x) for x in q[sl] * K[t, sl]])
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, c == 0)
                ctx.set(dut.last, c == C - 1)
                ctx.set(dut.end, (c == C - 1) & (t == L - 1))
                await ctx.tick()
        ctx.set(dut.valid, 0)
        waited = 1
        while not ctx.get(dut.done):
            await ctx.tick()
            waited += 1
        await ctx.tick()
        got["wait"], got["max"] = waited, ctx.get(dut.row_max)
        words = []
        for w in range(-(-L // E)):
            ctx.set(dut.rd_addr, w)
            await ctx.tick()
            words.append(ctx.get(dut.rd_data))
        got["scores"] = [(words[t // E] >> (8 * (t % E))) & 0xFF for t in range(L)]

    _sim(dut, bench)
    want = spec.score_codes(q, K, M, S, p)[0]
    assert [s - 256 if s > 127 else s for s in got["scores"]] == want.tolist()
    assert got["max"] == want.max()
    assert got["wait"] == 3  # the last score is stored 3 cycles after its products


def test_rejects_other_params():
    with pytest.raises(HwsimError, match="QkEngine needs AttentionParams"):
        QkEngine(object())
