"""OutRequant: the attention head's component on its own (Amaranth simulator, codes == golden)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from hwsim.golden.common import softmax_int as sm
from rtl.common.requant_out import OutRequant

P = spec.AttentionParams(head_dim=8, max_len=7, lanes=4, exp_lanes=3)


def _sim(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("amax_zero", [False, True])
def test_out_requant_equals_absmax_requant(amax_zero):
    p = P
    rng = np.random.default_rng(2)
    aw, C, LN = p.av_acc_width, p.chunks, p.lanes
    acc = np.zeros(p.head_dim, dtype=np.int64) if amax_zero else \
        rng.integers(-(1 << (aw - 2)), 1 << (aw - 2), p.head_dim)
    want, amax = spec.absmax_requant(acc, p.out, p.recip_bits)
    r, k = sm.reciprocal(amax, p.recip_bits)
    buf = [sum((int(acc[g * LN + l]) & ((1 << aw) - 1)) << (aw * l) for l in range(LN))
           for g in range(C)]
    dut = OutRequant(p)
    beats = []

    async def bench(ctx):
        ctx.set(dut.amax, int(amax))
        ctx.set(dut.r, int(r))
        ctx.set(dut.k, int(k))
        ctx.set(dut.start, 1)
        ctx.set(dut.out.ready, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        for cycle in range(1, 3 + C + 2):
            addr, en = ctx.get(dut.rd_addr), ctx.get(dut.rd_en)
            if ctx.get(dut.out.valid):
                beats.append((cycle, [ctx.get(dut.out.payload.o[l]) for l in range(LN)],
                              ctx.get(dut.out.payload.amax), ctx.get(dut.done)))
            await ctx.tick()
            if en:
                ctx.set(dut.rd_data, buf[addr])

    _sim(dut, bench)
    assert [b[1] for b in beats] == want.reshape(C, LN).tolist()
    assert {b[2] for b in beats} == {int(amax)}
    assert [b[0] for b in beats] == list(range(3, 3 + C))   # first beat 3 cycles after start
    assert [b[3] for b in beats] == [0] * (C - 1) + [1]


def test_rejects_other_params():
    with pytest.raises(HwsimError, match="OutRequant needs AttentionParams"):
        OutRequant(object())
