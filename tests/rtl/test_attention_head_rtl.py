import math

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from hwsim.golden.common.int8_matmul import fold_scale
from hwsim.kernels import attention_head as kah
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.attention_head import AttentionHead

SMALL = dict(head_dim=8, max_len=8, lanes=4, exp_lanes=3)


def _run(p, ops, M, S, idle=0.0, stall=0.0, seed=0):
    dut = AttentionHead(p)
    src = Source(dut.inp, spec.op_words(ops, p), idle=idle)
    nq = sum(op[0] == "q" for op in ops)
    snk = Sink(dut.out, nq * p.chunks, stall=stall)
    run_streams(dut, [src], [snk], seed=seed,
                settle=[(dut.score_mult, M), (dut.score_shift, S)])
    return spec.out_results(snk.values, p), snk.cycles[-1] - src.cycles[0] + 1


def _check(p, ops, M, S, **kw):
    got, cycles = _run(p, ops, M, S, **kw)
    want = spec.run_ops(ops, M, S, p)
    assert len(got) == len(want)
    for n, (g, w) in enumerate(zip(got, want, strict=True)):
        assert np.array_equal(g[0], w[0]) and g[1] == w[1], (n, g, w)
    return got, cycles


def _causal(rng, n, d):
    Q, K, V = (rng.integers(-128, 128, (n, d)) for _ in range(3))
    return [("clear",), *[op for t in range(n) for op in (("kv", K[t], V[t]), ("q", Q[t]))]]


M0, S0 = fold_scale(0.01, 0.01, 1 / math.sqrt(8), 16)


@pytest.mark.parametrize("style", ["dsp", "booth"])
def test_causal_prefill_every_length_and_decode(style):
    p = spec.AttentionParams(**SMALL, multiplier=style)
    rng = np.random.default_rng(1)
    ops = _causal(rng, 8, 8)
    ops += [("clear",), *_causal(rng, 3, 8)[1:]]  # a clear, then a new sequence
    _, cycles = _check(p, ops, M0, S0)
    assert cycles == spec.stream_cycles(p, ops)


def test_both_multiplier_styles_give_identical_codes():
    rng = np.random.default_rng(2)
    ops = _causal(rng, 5, 8)
    runs = [_run(spec.AttentionParams(**SMALL, multiplier=s), ops, M0, S0) for s in ("dsp", "booth")]
    assert all(np.array_equal(a[0], b[0]) and a[1] == b[1]
               for a, b in zip(runs[0][0], runs[1][0], strict=True))
    assert runs[0][1] == runs[1][1]


def test_extreme_rows():
    p = spec.AttentionParams(**SMALL)
    rng = np.random.default_rng(3)
    K, V = rng.integers(-128, 128, (8, 8)), rng.integers(-128, 128, (8, 8))
    q = rng.integers(-128, 128, 8)
    Kd = K // 16
    Kd[5] = q
    ops = [("clear",), *[("kv", K[t], V[t]) for t in range(8)], ("q", np.zeros(8, int)),  # equal
           ("clear",), *[("kv", Kd[t], V[t]) for t in range(8)], ("q", q)]              # dominant
    for v in (-128, 127):
        full = np.full(8, v)
        ops += [("clear",), *[("kv", full, full) for _ in range(8)], ("q", full)]
    M, S = fold_scale(0.05, 0.05, 1 / math.sqrt(8), 16)
    got, cycles = _check(p, ops, M, S)
    assert cycles == spec.stream_cycles(p, ops)
    assert np.all(np.abs(got[2][0]) == 127) and np.all(np.abs(got[3][0]) == 127)


def test_idle_input_and_back_pressure():
    p = spec.AttentionParams(**SMALL, multiplier="booth")
    rng = np.random.default_rng(4)
    ops = _causal(rng, 4, 8)
    _, cycles = _check(p, ops, M0, S0, idle=0.3, stall=0.5, seed=9)
    assert cycles > spec.stream_cycles(p, ops)


@pytest.mark.parametrize("shape", [
    dict(head_dim=4, max_len=3, lanes=4, exp_lanes=1),   # one chunk per row, one exp unit
    dict(head_dim=8, max_len=4, lanes=2, exp_lanes=4),   # all scores in one exp word
])
def test_other_shapes(shape):
    p = spec.AttentionParams(**shape)
    rng = np.random.default_rng(5)
    ops = _causal(rng, p.max_len, p.head_dim)
    M, S = fold_scale(0.01, 0.01, 1 / math.sqrt(p.head_dim), 16)
    _, cycles = _check(p, ops, M, S)
    assert cycles == spec.stream_cycles(p, ops)


def test_component_needs_its_params():
    with pytest.raises(HwsimError, match="AttentionParams"):
        AttentionHead(dict(SMALL))


def test_query_on_empty_cache_answers_zeros_and_full_cache_drops_kv():
    p = spec.AttentionParams(**SMALL)
    rng = np.random.default_rng(6)
    q = rng.integers(-128, 128, 8)
    K, V = rng.integers(-128, 128, (9, 8)), rng.integers(-128, 128, (9, 8))
    C = p.chunks
    q_beats = spec.op_words([("kv", q, q), ("q", q)], p)[C:]
    ops = [("clear",), *[("kv", K[t], V[t]) for t in range(8)], ("q", q)]
    ninth = spec.op_words([("kv", K[8], V[8])], p)
    # a query before any kv (the golden model rejects it; the RTL must not hang), a full
    # cache, a 9th token that must be dropped, the same query again
    words = [spec.OP_CLEAR, *q_beats, *spec.op_words(ops, p), *ninth, *q_beats]
    dut = AttentionHead(p)
    src = Source(dut.inp, words)
    snk = Sink(dut.out, 3 * C)
    run_streams(dut, [src], [snk], settle=[(dut.score_mult, M0), (dut.score_shift, S0)])
    got = spec.out_results(snk.values, p)
    assert np.all(got[0][0] == 0) and got[0][1] == 0
    want = spec.run_ops(ops, M0, S0, p)[0]
    for g in got[1:]:
        assert np.array_equal(g[0], want[0]) and g[1] == want[1]


#: lanes == head_dim (one beat per row), lanes == 1, max_len == 1 (a clear before every query)
CORNERS = [dict(head_dim=4, max_len=4, lanes=4, exp_lanes=2),
           dict(head_dim=3, max_len=3, lanes=1, exp_lanes=1),
           dict(head_dim=4, max_len=1, lanes=2, exp_lanes=1)]


@pytest.mark.parametrize("shape", CORNERS, ids=lambda d: "-".join(map(str, d.values())))
@pytest.mark.parametrize("idle, stall", [(0.0, 0.0), (0.0, 0.5), (0.3, 0.9)])
def test_per_query_scales_under_backpressure(shape, idle, stall):
    """Queries back to back, each with its own score scale driven with its beats, with idle
    input and the output stalled: every query uses its own scale; with neither, the formula."""
    p = spec.AttentionParams(**shape)
    for seed in range(2):
        case = next(c for c in kah.cases(p, seed=seed) if c["name"] == "per_query")
        a = case["arrays"]
        assert len(set(kah.query_scales(a))) == 4
        dut = AttentionHead(p)
        side = [[(getattr(dut, name), v) for name, v in beat] for beat in kah.side_values(a, p)]
        src = Source(dut.inp, spec.op_words(kah.arrays_to_ops(a), p), idle=idle, side=side)
        snk = Sink(dut.out, 4 * p.chunks, stall=stall)
        run_streams(dut, [src], [snk], seed=seed)
        got, want = spec.out_results(snk.values, p), kah.golden(p, a)
        assert len(got) == len(want) == 4
        for n, (g, w) in enumerate(zip(got, want, strict=True)):
            assert np.array_equal(g[0], w[0]) and g[1] == w[1], (seed, n, g, w)
        if p.max_len > 1:  # (the softmax of a single score is 1 whatever its scale)
            one = kah.golden(p, {**a, "mult": a["mult"][0], "shift": a["shift"][0]})
            assert any(not np.array_equal(g[0], w[0]) for g, w in zip(got, one, strict=True))
        cycles = snk.cycles[-1] - src.cycles[0] + 1
        if idle == stall == 0:
            assert cycles == spec.stream_cycles(p, kah.arrays_to_ops(a))
