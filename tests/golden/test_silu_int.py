"""The integer SiLU of the BitNet FFN (``silu(g)·u``, 1bitLLM form): table, error bound, gate
requantizer and product, against float64 and Python-integer references."""

import math

import numpy as np
import pytest

from hwsim.golden.vitallm import layer_codes as lc

F = lc.SILU_FRAC
LSB = 2.0 ** -F


def silu64(x):
    with np.errstate(over="ignore"):      # exp(−x) → inf for x ≪ 0: silu → −0, as it should
        return x / (1.0 + np.exp(-x))


def test_table_is_silu_of_the_negative_half_rounded():
    t = lc.silu_table()
    assert t.shape == (1 << lc.SILU_LUT_BITS,) and t.dtype == np.int64
    assert (t.min(), t.max(), t[0]) == (-36, 0, 0)
    k = np.arange(t.size)
    assert np.array_equal(t, np.floor(silu64(-k * LSB) / LSB + 0.5).astype(np.int64))
    with pytest.raises(ValueError):
        t[0] = 1                                  # shared and read-only


def test_error_at_most_half_lsb_exhaustively():
    """Every code of the table's domain on both signs and 8× beyond it (|x| < 64 real), and the
    saturation ends of ``GATE``: ``|silu_int(n) · 2**-F − silu(n · 2**-F)| ≤ ½ LSB``."""
    n = np.arange(-(1 << lc.SILU_LUT_BITS + 3), 1 << lc.SILU_LUT_BITS + 3)
    n = np.concatenate([n, [lc.GATE.min_code, lc.GATE.max_code]])
    err = np.abs(lc.silu_int(n) * LSB - silu64(n * LSB)) / LSB
    assert err.max() <= 0.5
    assert err.max() > 0.49               # the bound is the table's rounding, and it is tight
    # beyond the table: exactly x on the positive side, 0 on the negative side
    big = np.array([1 << lc.SILU_LUT_BITS, 5000, lc.GATE.max_code])
    assert np.array_equal(lc.silu_int(big), big) and not lc.silu_int(-big).any()


def test_gate_requantizer_and_product_equal_python_integers():
    rng = np.random.default_rng(0)
    g = rng.integers(-(1 << 14), 1 << 14, (3, 40))
    u = rng.integers(-(1 << 14), 1 << 14, (3, 40))
    amax = rng.integers(1, 1 << 23, 3)
    mult = (12345678, 49)
    gx = lc.silu_gate(g, amax, mult)

    def ref_gate(v, a):                   # round half even of v·a·M / 2**S, saturated
        q, r = divmod(int(v) * int(a) * mult[0], 1 << mult[1])
        q += r * 2 > 1 << mult[1] or (r * 2 == 1 << mult[1] and q % 2)
        return min(max(q, lc.GATE.min_code), lc.GATE.max_code)

    want = [[ref_gate(v, amax[t]) for v in g[t]] for t in range(3)]
    assert np.array_equal(gx, want)
    assert np.abs(gx).max() > 1 << lc.SILU_LUT_BITS and (gx < 0).any()
    prod = lc.silu_mul(g, u, amax, mult)
    silu_ref = [[math.floor(v * LSB / (1 + math.exp(-v * LSB)) / LSB + 0.5) for v in row]
                for row in want]
    assert np.array_equal(prod, np.array(silu_ref) * u)
    # a huge gate saturates at GATE's 24 bits
    assert lc.silu_gate([[1 << 30]], [1 << 22], (1, 0))[0, 0] == lc.GATE.max_code


def test_eps_powers():
    assert (lc.FFN_SUB_EPS_POWER, lc.SILU_SUB_EPS_POWER) == (6, 2)
