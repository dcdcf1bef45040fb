"""The attention head's phase components on their own (Amaranth simulator, codes == golden)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwsim.golden.common import attention_head as spec
from hwsim.golden.common import int8_matmul as mm
from hwsim.golden.common import softmax_int as sm
from rtl.common.av_engine import AvEngine
from rtl.common.qk_engine import QkEngine
from rtl.common.requant_out import OutRequant
from rtl.common.softmax import SoftmaxExp

P = spec.AttentionParams(head_dim=8, max_len=7, lanes=4, exp_lanes=3)


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
