"""The integer LayerNorm against the float64 LayerNorm of the same codes.

Stated bound (:mod:`hwsim.golden.common.layernorm_int`): before the final rounding the integer
result is within ``ε = error_bound(p, max|γ/s_y|)`` output LSBs of the float64 value, so every
non-saturated output code is within ``⌊ε⌋ + 1`` LSB of the float64 value rounded half even
(and within ``ε + 1/2`` of the float64 value itself)."""

import dataclasses

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import layernorm_int as g
from hwsim.golden.common.isqrt import isqrt

CONFIGS = [  # n, in_signed, out_signed, s_x, s_y, z_y, eps, gamma spread
    (16, True, True, 0.05, 0.03, 0, 1e-5, 1.5),
    (64, True, True, 0.02, 1 / 32, -3, 1e-5, 1.0),
    (24, False, False, 0.1, 0.05, 128, 1e-3, 2.0),
    (256, True, True, 0.01, 0.02, 5, 1e-5, 1.5),
    (48, False, True, 0.3, 1 / 16, 0, 0.5, 3.0),  # ε comparable to the variance
    (1, True, True, 0.1, 0.1, 0, 1e-5, 1.0),
]


def _vectors(rng, p, count):
    lo, hi, n = p.inp.min_code, p.inp.max_code, p.n
    X = rng.integers(lo, hi + 1, (count, n))
    X[0] = lo                                                 # constant
    X[1] = np.where(np.arange(n) == 0, hi, lo)                # one apart
    X[2] = np.where(np.arange(n) % 2 == 1, hi, lo)            # the largest variance
    X[3] = rng.integers(lo, lo + 2, n)                        # tiny spread
    X[4] = hi - rng.integers(0, 4, n)                         # tiny spread at the top
    X[5:20] = np.clip(rng.normal((lo + hi) / 2, 3, (15, n)).round(), lo, hi)
    return X


@pytest.mark.parametrize("cfg", range(len(CONFIGS)))
def test_within_stated_bound_of_float64(cfg):
    n, sg_in, sg_out, sx, sy, zy, eps, spread = CONFIGS[cfg]
    rng = np.random.default_rng(cfg)
    gamma = rng.uniform(-spread, spread, n)
    beta = rng.uniform(-1, 1, n)
    p = g.params_for(gamma, beta, eps, sx, sy, zy, in_signed=sg_in, out_signed=sg_out)
    X = _vectors(rng, p, 400)
    y = g.layernorm_int(X, p)
    ref = g.layernorm_float(X, gamma, beta, eps, sx, sy, zy)
    inside = (ref > p.out.min_code - 0.5) & (ref < p.out.max_code + 0.5)
    bound = g.error_bound(p, float(np.max(np.abs(gamma))) / sy)
    assert bound < 1.0  # these parameters: at most 1 LSB from the rounded float result
    assert np.max(np.abs(y - ref)[inside]) <= bound + 0.5
    assert np.max(np.abs(y - np.round(ref))[inside]) <= np.floor(bound) + 1
    # saturated elements sit at the end of the range the float value passed
    assert np.all(y[ref >= p.out.max_code + 0.5] == p.out.max_code)
    assert np.all(y[ref <= p.out.min_code - 0.5] == p.out.min_code)
    assert p.out.min_code <= y.min() and y.max() <= p.out.max_code


def test_exact_integer_steps():
    """The formula of the docstring, computed with Python integers for one vector."""
    p = g.params_for(np.linspace(-1, 1, 8), np.linspace(0.5, -0.5, 8), 1e-4, 0.05, 0.04, 3)
    x = [5, -7, 100, -128, 0, 3, 3, 127]
    n, s1, s2 = 8, sum(x), sum(v * v for v in x)
    v = ((n * s2 - s1 * s1) << (2 * p.sqrt_frac)) + p.eps_code
    q = int(isqrt(v))
    k = q.bit_length() - 1 + p.recip_bits
    r, u = (1 << k) // q, k - p.sqrt_frac
    want = []
    for i, xi in enumerate(x):
        t = (n * xi - s1) * p.gamma[i] * r + (p.beta[i] << u)
        fl, rem, half = t >> (u + p.frac), t & ((1 << (u + p.frac)) - 1), 1 << (u + p.frac - 1)
        code = fl + (rem > half or (rem == half and fl & 1))
        want.append(max(-128, min(127, code)))
    assert g.layernorm_int(np.array(x), p).tolist() == want


def test_offset_invariance_and_zero_variance():
    """Shifting every code by the same amount changes nothing (the zero point cancels); a
    constant vector with ε = 0 gives the offsets ``B`` alone."""
    p = g.params_for(np.ones(6), np.linspace(-1, 1, 6), 0.0, 0.1, 0.05, 0, in_signed=False)
    x = np.array([10, 20, 30, 40, 50, 60])
    assert np.array_equal(g.layernorm_int(x, p), g.layernorm_int(x + 100, p))
    flat = g.layernorm_int(np.full(6, 77), p)
    assert np.array_equal(flat, np.round(np.linspace(-1, 1, 6) / 0.05).clip(-128, 127))


def test_cycle_formulas():
    p = g.params_for(np.ones(16), np.zeros(16), 1e-5, 0.05, 0.05, lanes=4)
    assert g.latency_cycles(p) == 2 * 4 + 1 + p.sqrt_steps + p.recip_bits + 4
    assert g.stream_cycles(p, 3) == 3 * g.interval_cycles(p)
    assert g.tail_cycles(p) == g.latency_cycles(p) - 4
    assert g.action_counts(p, 2)["isqrt"] == 2


def test_refuses_bad_params():
    p = g.params_for(np.ones(4), np.zeros(4), 1e-5, 0.05, 0.05)
    with pytest.raises(HwsimError, match="lanes"):
        dataclasses.replace(p, lanes=3)
    with pytest.raises(HwsimError, match="gamma"):
        dataclasses.replace(p, gamma=(1, 2, 3))
    with pytest.raises(HwsimError, match="beta"):
        dataclasses.replace(p, beta=(1 << 40,) * 4)
    with pytest.raises(HwsimError, match="eps_code"):
        dataclasses.replace(p, eps_code=-1)
    with pytest.raises(HwsimError, match="datapath"):
        dataclasses.replace(p, eps_code=1 << 70)
    with pytest.raises(HwsimError, match="vectors of 4"):
        g.layernorm_int(np.zeros(5, int), p)
    with pytest.raises(HwsimError):
        g.layernorm_int(np.array([0, 0, 0, 300]), p)
