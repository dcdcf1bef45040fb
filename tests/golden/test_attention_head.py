import math
from fractions import Fraction

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.common import int8_matmul as mm
from hwsim.golden.common import softmax_int as sm

P = ah.AttentionParams(head_dim=8, max_len=8, lanes=4, exp_lanes=2)


def _scale(p):
    return mm.fold_scale(0.05, 0.05, 1 / math.sqrt(p.head_dim), 1 / p.score.lsb)


def _rand(rng, T, L, d=8):
    return (rng.integers(-128, 128, (T, d)), rng.integers(-128, 128, (L, d)),
            rng.integers(-128, 128, (L, d)))


def test_trace_composes_the_golden_blocks():
    rng = np.random.default_rng(0)
    q, K, V = _rand(rng, 3, 8)
    M, S = _scale(P)
    t = ah.attention_trace(q, K, V, M, S, P)
    assert np.array_equal(t["acc"], mm.int8_matmul(q, K))
    assert np.array_equal(t["probs"], sm.softmax_int(t["scores"], P.softmax))
    assert np.array_equal(t["o_acc"], t["probs"] @ V)
    o, amax = ah.attention_head(q, K, V, M, S, P)
    assert np.array_equal(o, t["o"]) and np.array_equal(amax, np.abs(t["o_acc"]).max(-1))


def test_absmax_requant_is_exact_rounding_but_near_ties():
    rng = np.random.default_rng(1)
    acc = rng.integers(-(1 << 22), 1 << 22, (300, 64))
    acc[:5] //= 1000
    codes, amax = ah.absmax_requant(acc)
    exact = np.array([[round(Fraction(int(a) * 127, int(m))) for a in row]
                      for row, m in zip(acc, amax, strict=True)])
    assert np.abs(codes - exact).max() <= 1
    # a code differs only next to a rounding tie (within 127 · 2**-15 of it)
    real = acc * 127 / amax[:, None]
    off = codes != exact
    assert np.all(np.abs(np.abs(real[off] - np.floor(real[off])) - 0.5) <= 127 * 2.0 ** -15)
    assert np.all(np.abs(codes).max(-1) == 127)
    z, za = ah.absmax_requant(np.zeros((1, 4), int))
    assert np.all(z == 0) and za[0] == 0


def test_decode_and_causal_prefill_agree_with_the_kv_cache():
    rng = np.random.default_rng(2)
    M, S = _scale(P)
    q, K, V = _rand(rng, 6, 6)
    o_pre, a_pre = ah.KVCache(P).prefill(q, K, V, M, S, causal=True)
    cache = ah.KVCache(P)
    for t in range(6):
        o, a = cache.decode(q[t], K[t], V[t], M, S)
        assert np.array_equal(o[0], o_pre[t]) and a[0] == a_pre[t]
    ops = [op for t in range(6) for op in (("kv", K[t], V[t]), ("q", q[t]))]
    res = ah.run_ops(ops, M, S, P)
    assert all(np.array_equal(o, o_pre[t]) and a == a_pre[t] for t, (o, a) in enumerate(res))


def test_output_tracks_float_attention_of_the_scores():
    p = ah.AttentionParams(head_dim=64, max_len=128)
    rng = np.random.default_rng(3)
    s_q = s_k = 0.01
    q, K, V = _rand(rng, 4, 128, 64)
    M, S = mm.fold_scale(s_q, s_k, 1 / math.sqrt(64), 1 / p.score.lsb)
    t = ah.attention_trace(q, K, V, M, S, p)
    real = t["o"] * (t["amax"] / 127 * p.prob.lsb)[:, None]
    ref = sm.softmax_float(t["scores"], p.softmax) @ V
    # each probability is within the softmax bound, so a context value within bound · Σ|V|;
    # the output step adds half an output LSB (amax/127) and the reciprocal's 127·2**-15 LSB
    lsb = t["amax"][:, None] / 127 * p.prob.lsb
    bound = sm.max_abs_error_bound(p.softmax, 128) * np.abs(V).sum(0)[None, :] + lsb * 0.51
    assert np.all(np.abs(real - ref) <= bound)


def test_extreme_rows():
    M, S = _scale(P)
    for v in (-128, 127):
        q = np.full((1, 8), v)
        K = np.full((8, 8), v)
        V = np.tile(np.arange(-4, 4) * 16, (8, 1))
        t = ah.attention_trace(q, K, V, M, S, P)
        assert np.all(t["probs"] == t["probs"][0, 0])  # all scores equal: uniform
        assert np.array_equal(t["o"][0], np.round(np.arange(-4, 4) * 16 * 127 / 64))


def test_cycle_formulas():
    p = ah.AttentionParams()
    c = ah.query_cycles(p, 128)
    assert c == 4 + 512 + 4 + 32 + 3 + 19 + 512 + 4 + 19 + 4 + 2
    assert ah.ideal_cycles(p, 128) == 1024
    assert ah.decode_cycles(p, 128) == c + 4
    ops = [("kv", np.zeros(64, int), np.zeros(64, int)), ("q", np.zeros(64, int))] * 2
    assert ah.stream_cycles(p, ops) == 2 * 4 + ah.query_cycles(p, 1) + ah.query_cycles(p, 2)
    counts = ah.action_counts(p, 128)
    assert counts["qk_mac"] == counts["av_mac"] == 128 * 64 and counts["cycles"] == c


@pytest.mark.parametrize("bad, msg", [
    (lambda: ah.AttentionParams(lanes=5), "must divide"),
    (lambda: ah.AttentionParams(multiplier="wallace"), "multiplier"),
    (lambda: ah.AttentionParams(max_len=0), "at least 1"),
    (lambda: ah.AttentionParams(exp_lanes=300), "exp_lanes"),
    (lambda: ah.attention_head(np.zeros(8, int), np.zeros((9, 8), int), np.zeros((9, 8), int),
                               1, 0, P), "1 … 8 keys"),
    (lambda: ah.run_ops([("q", np.zeros(8, int))], 1, 0, P), "at least one cached"),
    (lambda: ah.run_ops([("kv", np.zeros(8, int), np.zeros(8, int))] * 9, 1, 0, P), "full"),
    (lambda: ah.run_ops([("flush",)], 1, 0, P), "unknown operation"),
    (lambda: ah.query_cycles(P, 9), "query length"),
])
def test_bad_input_is_one_clear_error(bad, msg):
    with pytest.raises(HwsimError, match=msg):
        bad()
