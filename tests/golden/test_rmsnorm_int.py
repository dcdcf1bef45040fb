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
