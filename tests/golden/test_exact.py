"""The golden model's fast paths return exactly what their integer definitions return: float
GEMMs only inside their proven bounds, vectorized bit lengths, roots, reciprocals, rounding
shifts and requantizers against Python integers, at each bound and just past it."""

import math

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import exact
from quant.qtype import (
    INT8,
    Overflow,
    QType,
    Rounding,
    _fit_int,
    _round_shift_int,
    requantize,
    round_shift,
)

RNG = np.random.default_rng(2026)


def _int64_ref(a, b):
    return np.matmul(np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))


@pytest.mark.parametrize(("k", "a_peak", "b_peak", "path"), [
    (131071, 128, 1, "float32"),          # 131071·128 < 2**24: int8 × ternary in float32
    (131072, 128, 1, "float64"),          # == 2**24: not below the bound
    (1023, 128, 128, "float32"),
    (1024, 128, 128, "float64"),
    ((1 << 39) - 1, 128, 128, "float64"),
    (1 << 39, 128, 128, "int64"),
    (3, 1 << 31, 1 << 20, "float64"),
    (4, 1 << 31, 1 << 20, "int64"),
])
def test_path_is_chosen_by_the_bound(k, a_peak, b_peak, path):
    assert exact.matmul_path(k, a_peak, b_peak) == path
    with exact.force_int64():
        assert exact.matmul_path(k, a_peak, b_peak) == "int64"


@pytest.mark.parametrize("k", [131071, 131072])
def test_extreme_codes_at_the_float32_bound(k):
    # every product at the peak and of one sign: the largest sum the bound allows
    x = np.full((2, k), -128, dtype=np.int64)
    x[1, ::2] = 127
    w = np.ones((k, 3), dtype=np.int64)
    w[:, 1] = -1
    w[::3, 2] = 0
    got = exact.matmul_codes(x, w, 128, 1)
    assert got.dtype == np.int64
    assert np.array_equal(got, _int64_ref(x, w))
    assert got[0, 0] == -128 * k


def test_just_past_the_float32_bound_the_fast_path_is_not_taken():
    # |sum| = 2**24 + 1 is not a float32: the float32 GEMM cannot return it, matmul_codes must
    k = 131073
    x = np.full((1, k), -128, dtype=np.int64)
    x[0, -1] = -1
    w = np.ones((k, 1), dtype=np.int64)
    want = int(_int64_ref(x, w)[0, 0])
    assert want == -(1 << 24) - 1
    assert exact.matmul_path(k, 128, 1) != "float32"
    assert int(exact.matmul_codes(x, w, 128, 1)[0, 0]) == want
    f32 = int((x.astype(np.float32) @ w.astype(np.float32))[0, 0])
    assert f32 != want                             # the bound is needed


def test_just_past_the_float64_bound_the_fast_path_is_not_taken():
    a = np.array([[1 << 31, 1 << 31, 1 << 31, 1 << 31, 1]], dtype=np.int64)
    b = np.array([[1 << 20], [1 << 20], [1 << 20], [1 << 20], [1]], dtype=np.int64)
    want = (1 << 53) + 1
    assert int(_int64_ref(a, b)[0, 0]) == want
    assert exact.matmul_path(5, 1 << 31, 1 << 20) == "int64"
    assert int(exact.matmul_codes(a, b, 1 << 31, 1 << 20)[0, 0]) == want
    assert int((a.astype(np.float64) @ b.astype(np.float64))[0, 0]) != want
    # three terms stay below 2**53: the float64 path, exact
    a3, b3 = a[:, :3], b[:3]
    assert exact.matmul_path(3, 1 << 31, 1 << 20) == "float64"
    assert np.array_equal(exact.matmul_codes(a3, b3, 1 << 31, 1 << 20), _int64_ref(a3, b3))


@pytest.mark.parametrize(("shape_a", "shape_b", "a_peak", "b_peak"), [
    ((7, 64), (64, 5), 128, 1),
    ((3, 9, 300), (300, 11), 128, 128),
    ((2, 3, 6, 40), (2, 3, 40, 8), 255, 128),     # batched heads (A·V)
    ((5, 20), (20, 4), 1 << 30, 1 << 30),          # int64 path
    ((4, 3000), (3000, 7), 128, 128),              # float32 slices of 1 023 terms
    ((2, 5, 2500), (2500, 3), 128, 1 << 12),       # too short for slices: float64
])
def test_random_codes_equal_the_int64_product(shape_a, shape_b, a_peak, b_peak):
    a = RNG.integers(-a_peak, a_peak + 1, shape_a)
    b = RNG.integers(-b_peak, b_peak + 1, shape_b)
    want = _int64_ref(a, b)
    assert np.array_equal(exact.matmul_codes(a, b, a_peak, b_peak), want)
    with exact.force_int64():
        assert np.array_equal(exact.matmul_codes(a, b, a_peak, b_peak), want)
    op = exact.ConstOperand(b, b_peak)
    assert np.array_equal(exact.matmul_codes(a, op, a_peak, 0), want)
    assert np.array_equal(exact.matmul_codes(a, op, a_peak, 0), want)    # cached forms


def test_sliced_float32_products_at_extreme_codes():
    k = 5000                                       # 4 full slices of 1 023 and one of 908
    assert exact.split_length(128, 128) == 1023 and exact.split_length(1 << 12, 128) == 0
    a = np.full((2, k), -128, dtype=np.int64)
    a[1, 1::2] = 127
    b = np.full((k, 2), -128, dtype=np.int64)
    b[::3, 1] = 127
    got = exact.matmul_codes(a, b, 128, 128)
    assert np.array_equal(got, _int64_ref(a, b)) and got[0, 0] == 128 * 128 * k


def test_codes_outside_their_peak_are_refused():
    with pytest.raises(HwsimError, match="declared peak"):
        exact.matmul_codes(np.array([[200]]), np.array([[1]]), 128, 1)
    with pytest.raises(HwsimError, match="declared peak"):
        exact.ConstOperand(np.array([[2]]), 1)
    with pytest.raises(HwsimError, match="integer codes"):
        exact.matmul_codes(np.array([[0.5]]), np.array([[1]]), 128, 1)


EDGE = np.array([0, 1, 2, 3, (1 << 53) - 1, 1 << 53, (1 << 53) + 1, (1 << 62) - 1, 1 << 62,
                 (1 << 63) - 1, 3037000499 ** 2, 3037000499 ** 2 - 1, 3037000500 ** 2 - 1 - (1 << 40)],
                dtype=np.int64)


def _values():
    return np.concatenate([EDGE, RNG.integers(0, 1 << 63, 20000, dtype=np.int64),
                           RNG.integers(0, 1 << 20, 2000), 1 << np.arange(63, dtype=np.int64)])


def test_bit_length_and_isqrt_equal_python():
    v = _values()
    assert [int(b) for b in exact.bit_length(v)] == [int(x).bit_length() for x in v]
    assert [int(r) for r in exact.isqrt(v)] == [math.isqrt(int(x)) for x in v]
    with pytest.raises(HwsimError):
        exact.isqrt(np.array([-1]))


@pytest.mark.parametrize("recip_bits", [4, 16, 19, 30])
def test_reciprocal_equals_python(recip_bits):
    v = _values()[:5000]
    r, k = exact.reciprocal(v, recip_bits)
    for ri, ki, s in zip(r, k, v, strict=True):
        s = int(s)
        kk = max(s.bit_length() - 1, 0) + recip_bits
        assert int(ki) == kk and int(ri) == ((1 << kk) // s if s else 0)


@pytest.mark.parametrize("rounding", list(Rounding))
def test_round_shift_float_and_integer_paths_equal_python(rounding):
    # below 2**53 the float64 path, at and above it the int64 path; scalar and per-row shifts
    for peak in (1 << 62, (1 << 53) + 5, 1 << 53, (1 << 53) - 1, 1 << 30, 300):
        x = RNG.integers(-peak, peak, (60, 30))
        x[0, :3] = [peak - 1, -peak, 0]
        for shift in (0, 1, 2, 17, 52, 62, RNG.integers(0, 63, (60, 1)),
                      RNG.integers(3, 6, (60, 1)), RNG.integers(0, 63, (60, 30))):
            got = round_shift(x, shift, rounding)
            s = np.broadcast_to(shift, x.shape)
            want = [_round_shift_int(int(v), int(k), rounding)
                    for v, k in zip(x.ravel(), s.ravel(), strict=True)]
            assert [int(g) for g in got.ravel()] == want


@pytest.mark.parametrize("rounding", list(Rounding))
@pytest.mark.parametrize("overflow", list(Overflow))
def test_requantize_scalar_and_per_head_equal_python(rounding, overflow):
    out = QType(8, rounding=rounding, overflow=overflow)
    for peak in (1 << 40, 1 << 29, 1000):
        acc = RNG.integers(-peak, peak, (6, 3, 9))
        for M, S in ((1, 0), (3, 1), ((1 << 23) - 1, 30), ((1 << 24) + 5, 40), (12345, 62)):
            got = requantize(acc, M, S, out)
            assert [int(g) for g in got.ravel()] == [
                _fit_int(_round_shift_int(int(a) * M, S, rounding), out) for a in acc.ravel()]
        Ms = np.array([5, (1 << 24) - 3, 1 << 40], dtype=object)[:, None]
        Ss = np.array([3, 33, 60])[:, None]
        got = requantize(acc, Ms, Ss, out)
        for h in range(3):
            assert np.array_equal(got[:, h], requantize(acc[:, h], int(Ms[h, 0]), int(Ss[h, 0]),
                                                        out))


def test_requantize_refuses_bad_multipliers():
    with pytest.raises(HwsimError):
        requantize(np.array([1]), np.array([-1], dtype=object), np.array([0]), INT8)
    with pytest.raises(HwsimError):
        requantize(np.array([1]), np.array([1], dtype=object), np.array([63]), INT8)
