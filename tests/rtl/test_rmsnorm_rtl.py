import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden import rmsnorm_int as spec
from hwsim.golden.lanes import unpack_lanes
from hwsim.kernels.rmsnorm_int import in_words
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from quant.qtype import QType
from rtl.rmsnorm_int import RmsNorm


def _run(p, X, g, eps, idle=0.0, stall=0.0):
    dut = RmsNorm(p)
    src = Source(dut.inp, in_words(X, g, p), idle=idle)
    snk = Sink(dut.y, len(X) * p.chunks, stall=stall)
    run_streams(dut, [src], [snk], seed=3, settle=[(dut.eps, eps)])
    got = np.concatenate([unpack_lanes(w, p.out.width, p.lanes) for w in snk.values])
    cycles = [snk.cycles[(v + 1) * p.chunks - 1] - src.cycles[v * p.chunks] + 1
              for v in range(len(X))]
    return got.reshape(len(X), p.n), cycles


@pytest.mark.parametrize("style", ["dsp", "booth"])
def test_rmsnorm_bit_exact_and_cycles(style):
    p = spec.RmsNormParams(n=12, lanes=4, multiplier=style)
    rng = np.random.default_rng(0)
    X = rng.integers(-128, 128, (4, 12))
    X[1] //= 50
    X[2] = 0
    X[3] = -128
    g = rng.integers(-128, 128, 12)
    got, cycles = _run(p, X, g, 37)
    assert np.array_equal(got, spec.rmsnorm_int(X, g, 37, p))
    assert cycles == [spec.latency_cycles(p)] * 4


def test_rmsnorm_wide_input_under_back_pressure():
    p = spec.RmsNormParams(n=8, lanes=8, x=QType(16), rms_frac=6)
    rng = np.random.default_rng(1)
    X = rng.integers(-(1 << 15), 1 << 15, (2, 8))
    g = rng.integers(-128, 128, 8)
    got, _ = _run(p, X, g, 0, idle=0.3, stall=0.5)
    assert np.array_equal(got, spec.rmsnorm_int(X, g, 0, p))


def test_bad_parameters():
    with pytest.raises(HwsimError, match="RmsNormParams"):
        RmsNorm({"n": 8})
    with pytest.raises(HwsimError, match="multiplier"):
        spec.RmsNormParams(multiplier="array")
    with pytest.raises(HwsimError, match="does not fit"):
        spec.rmsnorm_int(np.zeros(64, int), np.zeros(64, int), 1 << 40)
