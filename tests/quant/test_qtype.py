"""QType, quantize/dequantize and integer-only requantization against float64 references."""

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.errors import HwsimError
from quant.qtype import (
    INT8,
    UINT8,
    Overflow,
    QType,
    Rounding,
    dequantize,
    quantize,
    quantize_multiplier,
    quantize_multipliers_shared,
    requantize,
    round_shift,
)

qtypes = st.builds(
    QType,
    width=st.integers(2, 32),
    frac=st.integers(-4, 12),
    signed=st.booleans(),
    rounding=st.sampled_from(list(Rounding)),
    overflow=st.sampled_from(list(Overflow)),
)


def ref_round(x: Fraction, mode: Rounding) -> int:
    """Exact rational rounding: the reference every integer path is checked against."""
    fl = x.numerator // x.denominator
    rem = x - fl
    if mode is Rounding.FLOOR:
        return fl
    if mode is Rounding.TRUNC:
        return fl + (1 if (x < 0 and rem) else 0)
    if rem > Fraction(1, 2):
        return fl + 1
    if rem < Fraction(1, 2):
        return fl
    return {Rounding.HALF_UP: fl + 1, Rounding.HALF_AWAY: fl + (1 if x > 0 else 0),
            Rounding.HALF_EVEN: fl + (fl & 1)}[mode]


def ref_fit(v: int, qt: QType) -> int:
    if qt.overflow is Overflow.SATURATE:
        return min(max(v, qt.min_code), qt.max_code)
    v &= (1 << qt.width) - 1
    return v - (1 << qt.width) if qt.signed and v >> (qt.width - 1) else v


def test_ranges():
    assert (INT8.min_code, INT8.max_code) == (-128, 127)
    assert (UINT8.min_code, UINT8.max_code) == (0, 255)
    assert QType(8, narrow=True).min_code == -127
    assert QType(4, frac=2).max_value == 7 * 0.25
    assert str(QType(16, frac=8)) == "int16.8"


@pytest.mark.parametrize("kwargs, message", [
    ({"width": 0}, "width must be 1 … 64"),
    ({"width": 65}, "width must be 1 … 64"),
    ({"width": 8.0}, "width must be an integer"),
    ({"width": 8, "rounding": "floor"}, "rounding must be a Rounding"),
    ({"width": 1, "narrow": True}, "narrow signed QType needs at least 2 bits"),
])
def test_impossible_qtypes(kwargs, message):
    with pytest.raises(HwsimError, match=message):
        QType(**kwargs)


def test_round_trip_dict():
    qt = QType(12, 3, False, Rounding.FLOOR, Overflow.WRAP)
    assert QType.from_dict(qt.to_dict()) == qt
    with pytest.raises(HwsimError, match="not a QType"):
        QType.from_dict({"frac": 2})


@settings(max_examples=300, deadline=None)
@given(qt=qtypes, x=st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False),
                             min_size=1, max_size=8))
def test_quantize_matches_exact_reference(qt, x):
    """Float64 quantization == exact rational rounding for every normal float64 input.

    (Subnormal inputs are excluded: ``x / 2**-frac`` can underflow to ±0 in float64, e.g.
    floor(−5e−324 / 2) is −1 exactly but −0 in float arithmetic.)"""
    got = quantize(x, qt)
    want = [ref_fit(ref_round(Fraction(v) / Fraction(qt.lsb), qt.rounding), qt) for v in x]
    assert got.tolist() == want


@settings(max_examples=200, deadline=None)
@given(qt=qtypes, data=st.data())
def test_dequantize_inverts_quantize_on_codes(qt, data):
    codes = data.draw(st.lists(st.integers(qt.min_code, qt.max_code), min_size=1, max_size=8))
    assert quantize(dequantize(codes, qt), qt).tolist() == codes


@settings(max_examples=400, deadline=None)
@given(x=st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=8),
       s=st.integers(0, 62), mode=st.sampled_from(list(Rounding)))
def test_round_shift_exact(x, s, mode):
    want = [ref_round(Fraction(v, 2**s), mode) for v in x]
    assert round_shift(np.array(x, dtype=np.int64), s, mode).tolist() == want


@settings(max_examples=300, deadline=None)
@given(acc=st.lists(st.integers(-(2**31), 2**31 - 1), min_size=1, max_size=8),
       real=st.floats(1e-6, 4.0), out=qtypes)
def test_requantize_against_float64(acc, real, out):
    """Integer-only requantization == exact rounding of acc·M/2**S (and ≈ float64 acc·real)."""
    m, s = quantize_multiplier(real, bits=16)
    got = requantize(np.array(acc), m, s, out)
    exact = [ref_fit(ref_round(Fraction(a * m, 2**s), out.rounding), out) for a in acc]
    assert got.tolist() == exact
    # M·2**-S approximates the real scale to 2**-15 relative (16-bit normalized multiplier)
    assert abs(m / 2**s - real) <= real * 2**-15 + 2**-62


def test_requantize_wide_accumulators_exact():
    """Products past 2**62 take the exact Python-integer path."""
    acc = np.array([2**55 + 12345, -(2**55) - 1, 7])
    got = requantize(acc, 2**20 + 1, 62, INT8)
    want = [ref_fit(ref_round(Fraction(int(a) * (2**20 + 1), 2**62), Rounding.HALF_EVEN), INT8)
            for a in acc]
    assert got.tolist() == want


@pytest.mark.parametrize("real, bits, message", [
    (0.0, 16, "positive finite"),
    (float("nan"), 16, "positive finite"),
    (1e30, 16, "too large"),
    (1e-30, 16, "underflows"),
    (0.5, 1, "2 … 62 bits"),
])
def test_quantize_multiplier_rejects(real, bits, message):
    with pytest.raises(HwsimError, match=message):
        quantize_multiplier(real, bits)


@given(st.floats(1e-6, 1e3), st.floats(0.01, 1.0))
def test_shared_shift_multipliers(big, ratio):
    (m0, m1), s = quantize_multipliers_shared([big, big * ratio], bits=16, max_shift=40)
    assert (m0, s) == quantize_multiplier(big, 16, 40)  # the larger factor is normalized
    assert 0 < m1 <= m0 < 1 << 16 and m1 == round(big * ratio * 2**s)
    with pytest.raises(HwsimError, match="too far apart"):
        quantize_multipliers_shared([1.0, 1e-9], bits=16, max_shift=40)


def test_quantize_rejects_non_finite():
    with pytest.raises(HwsimError, match="non-finite"):
        quantize([1.0, np.inf], INT8)


def test_check_names_the_bad_code():
    with pytest.raises(HwsimError, match="hold 200, outside int8"):
        INT8.check([1, 200], "codes")
