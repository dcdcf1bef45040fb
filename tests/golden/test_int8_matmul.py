import math

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import int8_matmul as mm
from quant.qtype import INT8, UINT8, QType, requantize


def test_matmul_is_exact_against_python_integers():
    rng = np.random.default_rng(0)
    a = rng.integers(-128, 128, (5, 64))
    b = rng.integers(-128, 128, (7, 64))
    got = mm.int8_matmul(a, b)
    want = [[sum(int(x) * int(y) for x, y in zip(ra, rb, strict=True)) for rb in b] for ra in a]
    assert got.dtype == np.int64
    assert np.array_equal(got, np.array(want))


def test_extreme_accumulator_fits_its_width():
    k = 64
    acc = mm.int8_matmul(np.full((1, k), -128), np.full((1, k), -128))
    assert int(acc[0, 0]) == k * 128 * 128
    w = mm.acc_width(k)
    assert -(1 << (w - 1)) <= int(acc[0, 0]) < (1 << (w - 1))
    assert mm.acc_width(128, UINT8, INT8) == (128 * 255 * 128).bit_length() + 1


def test_booth_digits_reconstruct_every_int8():
    b = np.arange(-128, 128)
    d = mm.booth_digits(b, 8)
    assert d.shape == (256, 4)
    assert d.min() >= -2 and d.max() <= 2
    assert np.array_equal((d * 4 ** np.arange(4)).sum(-1), b)


def test_booth_multiply_exhaustive_9bit_by_int8():
    a, b = np.meshgrid(np.arange(-256, 256), np.arange(-128, 128), indexing="ij")
    assert np.array_equal(mm.booth_multiply(a, b, 8), a * b)


def test_ternary_mode_is_one_digit():
    a = np.arange(-128, 128)
    for w in (-1, 0, 1):
        assert np.array_equal(mm.booth_multiply(a, np.full_like(a, w), ternary=True), a * w)
    with pytest.raises(HwsimError, match="ternary"):
        mm.booth_multiply(a, np.full_like(a, 2), ternary=True)


def test_fold_scale_within_one_lsb_of_float():
    rng = np.random.default_rng(1)
    s_q, s_k, d, s_out = 0.02, 0.03, 64, 2.0 ** -4
    M, S = mm.fold_scale(s_q, s_k, 1 / math.sqrt(d), 1 / s_out)
    acc = mm.int8_matmul(rng.integers(-128, 128, (20, d)), rng.integers(-128, 128, (30, d)))
    got = requantize(acc, M, S, INT8)
    want = np.clip(np.round(acc * s_q * s_k / math.sqrt(d) / s_out), -128, 127)
    assert np.abs(got - want).max() <= 1
    assert np.array_equal(mm.int8_matmul_requant(
        rng.integers(-128, 128, (2, d)) * 0, rng.integers(-128, 128, (3, d)), M, S), np.zeros((2, 3)))


@pytest.mark.parametrize("bad, msg", [
    (lambda: mm.int8_matmul(np.zeros((2, 3)), np.zeros((2, 3))), "integers"),
    (lambda: mm.int8_matmul(np.zeros((2, 3), int), np.zeros((2, 4), int)), "disagree on k"),
    (lambda: mm.int8_matmul(np.full((1, 2), 200), np.zeros((1, 2), int)), "outside int8"),
    (lambda: mm.fold_scale(0.1, -1.0), "positive finite"),
    (lambda: mm.Int8MatmulParams(lanes=3, k=64), "must divide"),
    (lambda: mm.Int8MatmulParams(b=QType(8, signed=False)), "signed"),
    (lambda: mm.booth_digits([200], 8), "Booth operand"),
])
def test_bad_input_is_one_clear_error(bad, msg):
    with pytest.raises(HwsimError, match=msg):
        bad()


def test_action_counts_scale_with_work():
    c = mm.action_counts(1, 128, 64, 16)
    assert c["mac"] == 128 * 64 and c["cycles"] == 128 * 4
    assert c["booth_partial_products"] == 4 * c["mac"]
