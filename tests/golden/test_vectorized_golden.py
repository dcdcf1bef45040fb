"""The vectorized golden forms equal their one-row / one-head definitions code for code:
every attention head (and a batch of sequences) at once, the integer softmax, the integer
RMSNorm with one ε code per row, the per-row ε codes, the per-head requantizer."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.common import exact, jit
from hwsim.golden.common import softmax_int as sm
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import rmsnorm_int as rn
from quant.qtype import INT8, Overflow, QType, Rounding, _fit_int, _round_shift_int, requantize

RNG = np.random.default_rng(7)


def _per_head(q, K, V, mults, p, causal):
    T, H, _d = q.shape
    KV = K.shape[1]
    o, amax = np.empty_like(q), np.empty((T, H), dtype=np.int64)
    for h in range(H):
        o[:, h], amax[:, h] = ah.attention_head(q[:, h], K[:, h // (H // KV)],
                                                V[:, h // (H // KV)], *mults[h], p, causal)
    return o, amax


@pytest.mark.parametrize(("T", "L", "H", "KV", "causal"), [
    (5, 5, 4, 2, True), (5, 9, 4, 2, True), (1, 12, 4, 4, True), (6, 6, 2, 1, False),
    (128, 128, 4, 2, True),                # long enough for the causal blocks
    (70, 100, 2, 2, True),
])
def test_attention_heads_equal_each_head(T, L, H, KV, causal):
    p = ah.AttentionParams(head_dim=16, lanes=8, max_len=128)
    q = RNG.integers(-128, 128, (T, H, 16))
    K = RNG.integers(-128, 128, (L, KV, 16))
    V = RNG.integers(-128, 128, (L, KV, 16))
    mults = [(int(RNG.integers(1 << 14, 1 << 16)), int(RNG.integers(14, 18))) for _ in range(H)]
    o, amax = ah.attention_heads(q, K, V, mults, p, causal)
    ro, ramax = _per_head(q, K, V, mults, p, causal)
    assert np.array_equal(o, ro) and np.array_equal(amax, ramax)
    with exact.force_int64():                    # the integer route through every step
        io, iamax = ah.attention_heads(q, K, V, mults, p, causal)
    assert np.array_equal(io, o) and np.array_equal(iamax, amax)
    # a batch of sequences: each equals running it alone
    qb = np.stack([q, np.flip(q, 0), q // 2])
    Kb, Vb = np.stack([K, K, -K - 1]), np.stack([V, -V - 1, V])
    ob, ab = ah.attention_heads(qb, Kb, Vb, mults, p, causal)
    for b in range(3):
        ro, ramax = _per_head(qb[b], Kb[b], Vb[b], mults, p, causal)
        assert np.array_equal(ob[b], ro) and np.array_equal(ab[b], ramax)


def test_attention_heads_extreme_codes_and_bad_shapes():
    p = ah.AttentionParams(head_dim=16, lanes=8, max_len=64)
    q = np.full((64, 2, 16), -128)
    K = np.full((64, 1, 16), -128)
    V = np.tile(np.array([127, -128])[:, None], (32, 16))[:, None, :]
    mults = [((1 << 16) - 1, 10), (1, 0)]
    o, amax = ah.attention_heads(q, K, V, mults, p, causal=True)
    ro, ramax = _per_head(q, K, V, mults, p, True)
    assert np.array_equal(o, ro) and np.array_equal(amax, ramax)
    with pytest.raises(HwsimError, match="do not divide"):
        ah.attention_heads(np.zeros((2, 3, 16), int), np.zeros((2, 2, 16), int),
                           np.zeros((2, 2, 16), int), [(1, 0)] * 3, p)
    with pytest.raises(HwsimError, match="score multipliers"):
        ah.attention_heads(np.zeros((2, 2, 16), int), np.zeros((2, 1, 16), int),
                           np.zeros((2, 1, 16), int), [(1, 0)], p)


def _softmax_ref(x, p, mask):
    """One row at a time in Python integers, from the module's own exponential."""
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape[:-1]):
        row, m = x[i], mask[i]
        mx = int(row[m].max())
        e = [int(v) for v in sm.exp2_neg(np.where(m, mx - row, 0), p)]
        e = [v if keep else 0 for v, keep in zip(e, m, strict=True)]
        s = sum(e)
        k = s.bit_length() - 1 + p.recip_bits
        r = (1 << k) // s
        out[i] = [_fit_int(_round_shift_int(v * r, k - p.prob.frac, p.prob.rounding), p.prob)
                  for v in e]
    return out


@pytest.mark.parametrize("p", [
    sm.SoftmaxParams(),
    sm.SoftmaxParams(score=QType(8, frac=3), prob=QType(8, frac=8, signed=False)),
    sm.SoftmaxParams(score=QType(12, frac=6), prob=QType(16, frac=15, signed=False,
                                                         rounding=Rounding.HALF_UP)),
    sm.SoftmaxParams(exp_frac=30, recip_bits=30, prob=QType(16, frac=14, signed=False)),
    sm.SoftmaxParams(prob=QType(8, signed=False, frac=8, rounding=Rounding.FLOOR)),
    sm.SoftmaxParams(prob=QType(7, signed=False, frac=8, overflow=Overflow.WRAP)),
])
def test_softmax_int_equals_a_row_by_row_reference(p):
    """Compiled rows (hwsim.golden.common.jit) and numpy definitions alike."""
    x = RNG.integers(p.score.min_code, p.score.max_code + 1, (3, 7, 40))
    x[0, 0] = p.score.min_code
    x[0, 1] = p.score.max_code
    x[0, 2, ::2] = p.score.min_code
    mask = RNG.random(x.shape) < 0.7
    mask[..., 0] = True
    mask[1, 3] = False
    mask[1, 3, 39] = True                               # a row of one score
    ref = _softmax_ref(x, p, mask)
    assert np.array_equal(sm.softmax_int(x, p, mask), ref)
    with jit.disabled():
        assert np.array_equal(sm.softmax_int(x, p, mask), ref)
        full = sm.softmax_int(x, p)
    assert np.array_equal(sm.softmax_int(x, p), full)


def test_rmsnorm_with_one_eps_code_per_row_equals_row_calls():
    p = lc.norm_params(64, 16, 12)
    x = RNG.integers(-(1 << 21), 1 << 21, (40, 64))
    x[3] = 0
    g = RNG.integers(-(1 << 18), 1 << 18, 64)
    eps = RNG.integers(0, 1 << 40, 40)
    eps[3] = 0
    got = rn.rmsnorm_int(x, g, eps, p)
    for t in range(40):
        assert np.array_equal(got[t], rn.rmsnorm_int(x[t:t + 1], g, int(eps[t]), p)[0])
    with pytest.raises(HwsimError, match="eps_code"):
        rn.rmsnorm_int(x, g, eps[:5], p)
    with pytest.raises(HwsimError, match="eps_code"):
        rn.rmsnorm_int(x, g, -eps, p)


@pytest.mark.parametrize("power", [0, 2, 6])
@pytest.mark.parametrize("E", [0, 5, 12345678901234567890123, (1 << 200) + 7])
def test_norm_eps_codes_equal_eps_code_per_row(power, E):
    norm = lc.NormCodes(gamma=np.ones(4, int), p=lc.norm_params(4, 4, 10), eps=E, eps_power=power)
    shifts = RNG.integers(0, 20, 300)
    amax = RNG.integers(0, 1 << 23, 300)
    amax[:5], shifts[:3] = 0, 0
    got = lc.norm_eps_codes(norm, shifts, amax)
    assert [int(c) for c in got] == [lc.eps_code(E, int(s), int(a), power)
                                     for s, a in zip(shifts, amax, strict=True)]


def test_requantize_heads_and_shift_rows_equal_per_item():
    x = RNG.integers(-(1 << 30), 1 << 30, (5, 3, 8))
    mults = [(int(RNG.integers(1, 1 << 24)), int(RNG.integers(20, 40))) for _ in range(3)]
    got = lc.requantize_heads(x, mults, INT8)
    for h, (M, S) in enumerate(mults):
        assert np.array_equal(got[:, h], requantize(x[:, h], M, S, INT8))
    rows = RNG.integers(-(1 << 40), 1 << 40, (20, 6))
    rows[:3] //= 1 << 30                                    # rows that fit: shift 0
    xs, shifts = lc.shift_rows(rows)
    for t in range(20):
        s = max(0, int(np.abs(rows[t]).max()).bit_length() - lc.NORM_IN_BITS)
        assert shifts[t] == s
        assert [int(v) for v in xs[t]] == [_round_shift_int(int(v), s, Rounding.HALF_EVEN)
                                           for v in rows[t]]


def test_absmax_requant_takes_exact_float_accumulators():
    acc = RNG.integers(-(1 << 24), 1 << 24, (6, 9, 32))
    acc[0, 0] = 0
    for out in (INT8, QType(8, rounding=Rounding.HALF_UP)):
        want = ah.absmax_requant(acc, out, 16)
        got = ah.absmax_requant(acc.astype(np.float32), out, 16)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    with pytest.raises(HwsimError, match="below 2"):
        ah.absmax_requant(np.array([[2.0 ** 60]]), INT8, 16)
