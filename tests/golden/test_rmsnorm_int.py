import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import rmsnorm_int as rn
from quant.qtype import QType


@pytest.mark.parametrize("p", [rn.RmsNormParams(), rn.RmsNormParams(
    n=48, lanes=8, x=QType(16), out=QType(8, frac=4), rms_frac=4)])
def test_within_one_lsb_of_float(p):
    rng = np.random.default_rng(p.n)
    worst = 0
    for scale in (1, 7, 300):
        x = rng.integers(p.x.min_code, p.x.max_code + 1, (200, p.n)) // scale
        g = rng.integers(-128, 128, p.n)
        for eps in (0, 5, 4000):
            got = rn.rmsnorm_int(x, g, eps, p)
            ref = rn.rmsnorm_float(x, g, eps, p)
            inside = np.abs(ref) < p.out.max_code
            worst = max(worst, np.abs(got - ref)[inside].max())
            assert np.all(np.abs(got[~inside]) >= p.out.max_code - 1)
    assert worst <= 1.0


def test_isqrt_exact_and_zero_row():
    v = np.array([0, 1, 2, 3, 4, 99, 100, 2**40 + 5])
    assert np.array_equal(rn.isqrt(v), [int(np.floor(np.sqrt(float(a)))) for a in v[:-1]]
                          + [2**20])
    p = rn.RmsNormParams()
    assert np.all(rn.rmsnorm_int(np.zeros(64, int), np.ones(64, int), 0, p) == 0)


def test_bad_input_is_one_clear_error():
    p = rn.RmsNormParams()
    with pytest.raises(HwsimError, match="rows of 64"):
        rn.rmsnorm_int(np.zeros(32, int), np.zeros(64, int), 0, p)
    with pytest.raises(HwsimError, match="eps_code"):
        rn.rmsnorm_int(np.zeros(64, int), np.zeros(64, int), -1, p)
    with pytest.raises(HwsimError, match="must divide"):
        rn.RmsNormParams(n=60, lanes=16)
    assert rn.latency_cycles(p) > 2 * p.n // p.lanes


def _python_rmsnorm(x, g, eps, p):
    """The five steps of the module docstring in Python integers (any width)."""
    import math

    from quant.qtype import _fit_int, _round_shift_int
    out = []
    for row in np.atleast_2d(x):
        ss = sum(int(v) ** 2 for v in row)
        q = math.isqrt((ss << (2 * p.rms_frac)) // p.n + eps)
        k = max(q.bit_length() - 1, 0) + p.recip_bits
        r = (1 << k) // q if q else 0
        sh = k - p.recip_bits + p.shift_base
        out.append([_fit_int(_round_shift_int(int(a) * int(b) * r, sh, p.out.rounding), p.out)
                    for a, b in zip(row, g, strict=True)])
    return np.array(out, dtype=np.int64)


@pytest.mark.parametrize("jit_on", [True, False])
def test_rows_past_int64_are_exact(jit_on):
    """32-bit input rows (Σx²·2**2G passes 2**63) and ε codes past 2**62 are computed in exact
    integers, not wrapped: the RTL's full-width datapath."""
    import contextlib

    from hwsim.golden.common import jit
    from hwsim.golden.vitallm import layer_codes as lc

    p = lc.norm_params(128, 16, 16)
    rng = np.random.default_rng(3)
    g = rng.integers(-(1 << 18), 1 << 18, 128)
    x = rng.integers(-(1 << 31), 1 << 31, (6, 128)) >> np.arange(0, 30, 5)[:, None]
    x[0, 0] = -(1 << 31)
    ctx = contextlib.nullcontext() if jit_on else jit.disabled()
    with ctx:
        for eps in (0, 5, (1 << 61) + 3, (1 << p.eps_width) - 1):
            assert np.array_equal(rn.rmsnorm_int(x, g, eps, p), _python_rmsnorm(x, g, eps, p))
        col = rng.integers(0, 1 << 40, 6)
        got = rn.rmsnorm_int(x, g, col, p)
        assert np.array_equal(got, np.concatenate([_python_rmsnorm(x[i:i + 1], g, int(c), p)
                                                   for i, c in enumerate(col)]))


@pytest.mark.parametrize("jit_on", [True, False])
def test_wide_gains_are_exact(jit_on):
    """Gains wide enough that x · γ · r passes int64 take the exact path, not a wrapped one."""
    import contextlib

    from hwsim.golden.common import jit

    p = rn.RmsNormParams(n=16, lanes=4, x=QType(16), gamma=QType(44, frac=40), out=QType(16, frac=8))
    rng = np.random.default_rng(5)
    g = rng.integers(-(1 << 43), 1 << 43, 16)
    x = rng.integers(-(1 << 15), 1 << 15, (5, 16))
    with contextlib.nullcontext() if jit_on else jit.disabled():
        assert np.array_equal(rn.rmsnorm_int(x, g, 9, p), _python_rmsnorm(x, g, 9, p))
