import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import unpack_lanes
from hwsim.golden.vitallm import rmsnorm_int as spec
from hwsim.kernels import rmsnorm_int as kr
from hwsim.kernels.rmsnorm_int import in_words
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from quant.qtype import QType
from rtl.vitallm.rmsnorm_int import RmsNorm


def _run(p, X, g, eps, idle=0.0, stall=0.0, seed=3):
    """``eps`` is one code or one per vector, driven with that vector's last beat."""
    dut = RmsNorm(p)
    side = [[(getattr(dut, name), v) for name, v in beat]
            for beat in kr.side_values(p, {"X": X, "eps": eps})]
    src = Source(dut.inp, in_words(X, g, p), idle=idle, side=side)
    snk = Sink(dut.y, len(X) * p.chunks, stall=stall)
    run_streams(dut, [src], [snk], seed=seed)
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


#: lanes == n (one beat per vector), lanes == 1, n == lanes == 1, and a middle shape
CORNERS = [(8, 8), (6, 1), (1, 1), (12, 4)]


@pytest.mark.parametrize("n, lanes", CORNERS)
@pytest.mark.parametrize("idle, stall", [(0.0, 0.0), (0.0, 0.5), (0.3, 0.9)])
def test_per_vector_eps_under_backpressure(n, lanes, idle, stall):
    """Back-to-back vectors, each with its own ε, with idle input and the output stalled: each
    vector is normalized with its own ε, and with no stalls every vector takes the formula."""
    p = spec.RmsNormParams(n=n, lanes=lanes)
    rng = np.random.default_rng(n * 10 + lanes)
    for seed in range(2):
        X = rng.integers(-128, 128, (5, n))
        g = rng.integers(-128, 128, n)
        eps = kr._eps_per_vector(X, p)
        assert len(set(eps.tolist())) == len(X)
        want = kr.golden(p, {"X": X, "g": g, "eps": eps})
        # ε matters: every vector normalized with its neighbour's ε differs somewhere
        assert not np.array_equal(want, kr.golden(p, {"X": X, "g": g, "eps": np.roll(eps, 1)}))
        got, cycles = _run(p, X, g, eps, idle=idle, stall=stall, seed=seed)
        assert np.array_equal(got, want), (seed, got, want)
        if idle == stall == 0:
            assert cycles == [spec.latency_cycles(p)] * len(X)


def test_bad_parameters():
    with pytest.raises(HwsimError, match="RmsNormParams"):
        RmsNorm({"n": 8})
    with pytest.raises(HwsimError, match="multiplier"):
        spec.RmsNormParams(multiplier="array")
    with pytest.raises(HwsimError, match="does not fit"):
        spec.rmsnorm_int(np.zeros(64, int), np.zeros(64, int), 1 << 40)
