"""Golden element-wise unit against exact rational references."""

from fractions import Fraction

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import eltwise as g


def _round_half_even(x: Fraction) -> int:
    return round(x)  # Python's round of a Fraction is half even


def _exact(p: g.EltwiseParams, a: int, b: int, factors) -> int:
    """``y`` from the real factors ``factors`` (Fractions): add ``fa·(a−za) + fb·(b−zb)``,
    mul ``f·(a−za)(b−zb)``, rounded half even, zero point, saturation, ReLU."""
    da, db = a - p.a_zero, b - p.b_zero
    v = factors[0] * da + factors[1] * db if p.op == "add" else factors[0] * da * db
    y = min(max(_round_half_even(v) + p.out_zero, p.out.min_code), p.out.max_code)
    return max(y, p.out_zero) if p.relu else y


def _all_pairs(p):
    a, b = np.meshgrid(np.arange(p.a.min_code, p.a.max_code + 1),
                       np.arange(p.b.min_code, p.b.max_code + 1), indexing="ij")
    return a.ravel(), b.ravel()


PARAMS = [
    g.EltwiseParams(),  # a + b
    g.EltwiseParams(op="add", a_zero=-5, b_signed=False, b_zero=200, out_signed=False,
                    out_zero=17, a_mult=3, b_mult=5, shift=3, relu=True),
    g.EltwiseParams(op="mul", a_signed=False, a_zero=9, b_zero=-1, mult=12345, shift=21),
    g.EltwiseParams(op="mul", mult=1, shift=0, out_narrow=True),
    g.EltwiseParams(op="add", a_mult=1, b_mult=1, shift=1),  # every odd sum is a tie
]


@pytest.mark.parametrize("index", range(len(PARAMS)))
def test_integer_formula_equals_the_rational_one_on_every_code_pair(index):
    """``==`` against ``round_half_even(M · 2**-S · …)`` in exact rationals, all 65536
    pairs (ties included: shift 1 with unit multipliers makes every odd sum a tie)."""
    p = PARAMS[index]
    a, b = _all_pairs(p)
    got = g.eltwise(a, b, p)
    f = [Fraction(m, 1 << p.shift) for m in ((p.a_mult, p.b_mult) if p.op == "add"
                                              else (p.mult,))]
    want = [_exact(p, int(x), int(y), f) for x, y in zip(a, b, strict=True)]
    assert got.tolist() == want
    assert got.min() >= p.out.min_code and got.max() <= p.out.max_code


SCALES = [("add", 0.05, 0, 0.03, 3, 0.07, -2), ("add", 0.011, -7, 0.013, 0, 0.02, 0),
          ("mul", 0.05, 0, 0.03, 3, 0.01, -2), ("mul", 0.004, 128, 0.021, 0, 0.0005, 0)]


@pytest.mark.parametrize("scales", SCALES)
def test_folded_scales_within_one_lsb_of_the_real_formula(scales):
    """``params_for`` against the real-valued quantized op in exact rationals of the float
    scales, on every code pair. With ``v`` the real value before rounding and ``v'`` the
    integer one, ``|v − v'| ≤ ε = Σ max|code − z| · |r − M·2**-S|`` (< 1e-3 with 24-bit
    multipliers), so the codes differ by at most ``floor(ε) + 1`` = 1 LSB, and only where ``v``
    lies within ``ε`` of a rounding boundary (a half-integer)."""
    op, sa, za, sb, zb, sy, zy = scales
    p = g.params_for(op, sa, za, sb, zb, sy, zy, a_signed=za < 128)
    a, b = _all_pairs(p)
    got = g.eltwise(a, b, p)
    fa, fb, fy = Fraction(sa), Fraction(sb), Fraction(sy)
    real = [fa / fy, fb / fy] if op == "add" else [fa * fb / fy]
    folded = g.real_factors(p)
    if op == "add":
        eps = p.a_peak * abs(float(real[0]) - folded[0]) \
            + p.b_peak * abs(float(real[1]) - folded[1])
    else:
        eps = p.a_peak * p.b_peak * abs(float(real[0]) - folded[0])
    assert eps < 1e-3
    bad = 0
    for x, y, code in zip(a.tolist(), b.tolist(), got.tolist(), strict=True):
        want = _exact(p, x, y, real)
        if code != want:
            bad += 1
            assert abs(code - want) <= int(eps) + 1
            da, db = x - p.a_zero, y - p.b_zero
            v = real[0] * da + real[1] * db if op == "add" else real[0] * da * db
            assert abs(v - (v.__floor__() + Fraction(1, 2))) <= eps, (x, y, float(v))
    assert bad < len(got) // 20


def test_params_validation():
    with pytest.raises(HwsimError, match="op must be one of"):
        g.EltwiseParams(op="sub")
    with pytest.raises(HwsimError, match="a_zero must be an integer -128"):
        g.EltwiseParams(a_zero=128)
    with pytest.raises(HwsimError, match="out_zero must be an integer 0"):
        g.EltwiseParams(out_signed=False, out_zero=-1)
    with pytest.raises(HwsimError, match="a_mult must be an integer 0"):
        g.EltwiseParams(a_mult=1 << g.MULT_BITS)
    with pytest.raises(HwsimError, match="shift must be an integer 0 … 62"):
        g.EltwiseParams(shift=63)
    with pytest.raises(HwsimError, match="mul needs a multiplier"):
        g.EltwiseParams(op="mul")
    with pytest.raises(HwsimError, match="lanes must be"):
        g.EltwiseParams(lanes=0)
    with pytest.raises(HwsimError, match="outside int8 range"):
        g.eltwise(np.array([128]), np.array([0]), g.EltwiseParams())
    with pytest.raises(HwsimError, match="positive finite"):
        g.params_for("add", 0.0, 0, 1.0, 0, 1.0, 0)


def test_shapes_broadcast_and_the_cycle_formulas():
    p = g.EltwiseParams(lanes=4, op="mul", mult=1, shift=0)
    x = np.arange(-6, 6).reshape(3, 4)
    assert g.eltwise(x, np.array([[2]]), p).tolist() == (x * 2).tolist()
    assert g.latency_cycles(p) == g.PIPELINE_DEPTH == 3
    assert [g.stream_cycles(p, n) for n in (1, 2, 10)] == [4, 5, 13]
    add = g.action_counts(g.EltwiseParams(lanes=2), 3)
    mul = g.action_counts(p, 3)
    assert add["requant_mul"] == 12 and "int8_mul" not in add and add["cycles"] == 6
    assert mul["int8_mul"] == 12 and mul["requant_mul"] == 12 and mul["out_bits"] == 96


def test_t_width_holds_the_extreme_products():
    for p in PARAMS:
        a, b = _all_pairs(p)
        da, db = a - p.a_zero, b - p.b_zero
        t = da * p.a_mult + db * p.b_mult if p.op == "add" else da * db * p.mult
        assert -(1 << (p.t_width - 1)) <= t.min() and t.max() < (1 << (p.t_width - 1))
