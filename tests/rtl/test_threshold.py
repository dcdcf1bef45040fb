"""Fast tier: the Amaranth Threshold unit against the golden function in Amaranth's simulator."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import threshold as g
from hwsim.kernels import get_kernel
from hwsim.kernels import threshold as kt
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.threshold import Threshold


def rtl_threshold(p, a, idle=0.0, stall=0.0, seed=0):
    """Run a case's ``X`` through the RTL; return (codes, cycles first x → last y, x, y)."""
    dut = Threshold(p)
    words = kt.x_words(p, a)
    x = Source(dut.x, words, idle=idle)
    y = Sink(dut.y, len(words), stall=stall)
    run_streams(dut, [x], [y], seed=seed)
    return np.array(kt.y_codes(p, y.values)), y.cycles[-1] - x.cycles[0] + 1, x, y


def _random_params(rng, lanes, in_bits, out_signed, m):
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    bps = set()
    while len(bps) < m:
        bps.add(int(rng.integers(lo, hi + 1)))
    bps = sorted(bps)
    clo, chi = (-128, 127) if out_signed else (0, 255)
    codes = rng.integers(clo, chi + 1, m + 1)  # no structure to hide an index error
    return g.ThresholdParams(lanes=lanes, in_bits=in_bits, out_signed=out_signed,
                             breakpoints=tuple(int(b) for b in bps),
                             codes=tuple(int(c) for c in codes))


#: lanes, in_bits, out_signed, breakpoints
CONFIGS = [(1, 32, True, 40), (3, 12, False, 17), (2, 8, True, 0), (1, 20, False, 255)]


@pytest.mark.parametrize("lanes, in_bits, out_signed, m", CONFIGS)
def test_every_case_bit_exact_and_cycles(lanes, in_bits, out_signed, m):
    rng = np.random.default_rng(lanes + m)
    p = _random_params(rng, lanes, in_bits, out_signed, m)
    for case in get_kernel("threshold").cases(p, seed=lanes, quick=m > 100):
        a = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, cycles, _, _ = rtl_threshold(p, a, idle, stall, seed=case.get("seed", 0))
        assert np.array_equal(got, kt.golden(p, a)), case["name"]
        beats = len(kt.x_words(p, a))
        if idle == 0 and stall == 0:
            assert cycles == g.stream_cycles(p, beats), case["name"]
        else:
            assert cycles > g.stream_cycles(p, beats), case["name"]


def test_function_table_and_latency_per_beat():
    """A SiLU table on 16-bit inputs: each y beat exactly the latency after its x beat."""
    p = g.table_for("silu", 3e-4, 0.02, 0, True, in_bits=16, lanes=2)
    rng = np.random.default_rng(3)
    X = np.clip(rng.choice(np.asarray(p.breakpoints), (30, 2)) + rng.integers(-1, 2, (30, 2)),
                -2 ** 15, 2 ** 15 - 1)
    got, cycles, x, y = rtl_threshold(p, {"X": X})
    assert np.array_equal(got, g.threshold(X, p).ravel())
    assert [c - xc for c, xc in zip(y.cycles, x.cycles, strict=True)] == [3] * 30
    assert cycles == 33


def test_ports_follow_the_params():
    p = g.ThresholdParams(lanes=3, in_bits=24, out_signed=False, breakpoints=(0,), codes=(0, 9))
    dut = Threshold(p)
    dut._MustUse__silence = True  # never elaborated
    assert dut.x.payload.shape().size == 72 and dut.y.payload.shape().size == 24


def test_wrong_params_type_raises():
    with pytest.raises(HwsimError, match="ThresholdParams"):
        Threshold(object())
