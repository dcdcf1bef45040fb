import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import softmax_int as sm
from quant.qtype import QType, Rounding

P = sm.SoftmaxParams()


def _err(x, p=P, mask=None):
    return np.abs(sm.softmax_int(x, p, mask) * p.prob.lsb - sm.softmax_float(x, p, mask))


def test_every_two_element_row_of_the_int8_range_is_within_the_bound():
    a, b = np.meshgrid(np.arange(-128, 128), np.arange(-128, 128))
    x = np.stack([a.ravel(), b.ravel()], axis=-1)  # all 65 536 rows
    assert _err(x).max() <= sm.max_abs_error_bound(P, 2)


@pytest.mark.parametrize("length", [1, 3, 16, 64, 128, 256])
def test_random_rows_within_the_bound(length):
    rng = np.random.default_rng(length)
    x = rng.integers(-128, 128, (400, length))
    narrow = x // 16  # concentrated rows: many comparable probabilities
    for rows in (x, narrow):
        assert _err(rows).max() <= sm.max_abs_error_bound(P, length)


def test_adversarial_rows_one_max_and_every_offset():
    # one row maximum at 127, the others all at 127 − δ, for every δ and several lengths
    for length in (2, 5, 64, 255):
        deltas = np.arange(256)
        x = np.full((256, length), 127) - deltas[:, None]
        x[:, 0] = 127
        assert _err(x).max() <= sm.max_abs_error_bound(P, length)


def test_extreme_rows():
    L = 128
    eq = sm.softmax_int(np.full((3, L), [[-128], [0], [127]]))
    assert np.all(eq == eq[0, 0]) and eq[0, 0] == 2  # 256/128 = 2 codes each
    one = np.full(L, -128)
    one[17] = 127
    p = sm.softmax_int(one)
    assert p[17] == 255 and np.all(np.delete(p, 17) == 0)  # saturates at the largest code
    assert sm.softmax_int(np.array([5]))[0] == P.prob.max_code


def test_masked_entries_take_no_part():
    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, (50, 20))
    mask = rng.random((50, 20)) < 0.6
    mask[:, 0] = True
    got = sm.softmax_int(x, P, mask)
    assert np.all(got[~mask] == 0)
    for r in range(50):
        assert np.array_equal(got[r, mask[r]], sm.softmax_int(x[r, mask[r]]))
    assert _err(x, P, mask).max() <= sm.max_abs_error_bound(P, 20)


def test_exp_matches_float_exponential():
    d = np.arange(256)
    e = sm.exp2_neg(d, P)
    assert e[0] == 1 << P.exp_frac and np.all(np.diff(e) <= 0)
    ref = np.exp(-d * P.score.lsb) * (1 << P.exp_frac)
    assert np.all(np.abs(e - ref) <= ref * (2 ** 2.1e-3 - 1) + 1)
    assert np.array_equal(sm.exp_lut(P)[:2], [32768, round(32768 * 2 ** (-1 / 256))])


def test_reciprocal_is_normalized_floor():
    s = np.array([1, 2, 3, 32768, 32769, 4194303, 4194304])
    r, k = sm.reciprocal(s, 16)
    assert np.array_equal(r, [(1 << int(kk)) // int(v) for v, kk in zip(s, k, strict=True)])
    assert np.all((r >= 1 << 15) & (r <= 1 << 16))
    assert sm.reciprocal(np.array([0]), 16)[0][0] == 0


@pytest.mark.parametrize("p", [
    sm.SoftmaxParams(score=QType(8, frac=3), lut_bits=6),
    sm.SoftmaxParams(prob=QType(8, frac=7, signed=False, rounding=Rounding.FLOOR)),
    sm.SoftmaxParams(score=QType(8, frac=5), prob=QType(16, frac=15, signed=False)),
])
def test_other_precisions_keep_their_bound(p):
    rng = np.random.default_rng(7)
    for L in (2, 40):
        x = rng.integers(-128, 128, (500, L))
        assert _err(x, p).max() <= sm.max_abs_error_bound(p, L)


@pytest.mark.parametrize("bad, msg", [
    (lambda: sm.softmax_int(np.array([200])), "outside"),
    (lambda: sm.softmax_int(np.zeros((2, 3), int), mask=np.zeros((2, 3), bool)), "unmasked"),
    (lambda: sm.softmax_int(np.zeros((2, 3), int), mask=np.ones((3, 2), bool)), "mask shape"),
    (lambda: sm.SoftmaxParams(prob=QType(8)), "unsigned"),
    (lambda: sm.SoftmaxParams(lut_bits=0), "lut_bits"),
    (lambda: sm.max_abs_error_bound(P, 0), "length"),
])
def test_bad_input_is_one_clear_error(bad, msg):
    with pytest.raises(HwsimError, match=msg):
        bad()
