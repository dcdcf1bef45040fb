"""Fast tier: the Amaranth LutAct against the golden function in Amaranth's simulator."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import lut_act as g
from hwsim.kernels import get_kernel
from hwsim.kernels import lut_act as kt
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.lut_act import LutAct


def rtl_lut(p, a, idle=0.0, stall=0.0, seed=0):
    """Run a case's ``X`` (beats, lanes) through the RTL; return (codes in beat order, cycles
    first x beat → last y beat, the sink)."""
    dut = LutAct(p)
    words = kt.x_words(p, a)
    x = Source(dut.x, words, idle=idle)
    y = Sink(dut.y, len(words), stall=stall)
    run_streams(dut, [x], [y], seed=seed)
    return np.array(kt.y_codes(p, y.values)), y.cycles[-1] - x.cycles[0] + 1, x, y


def _random_table(rng, out_signed):
    lo, hi = (-128, 127) if out_signed else (0, 255)
    return tuple(int(v) for v in rng.integers(lo, hi + 1, 256))


#: lanes 1, an odd count, a wide beat; all four signedness pairs
CONFIGS = [(1, True, True), (3, False, False), (4, True, False), (8, False, True)]


@pytest.mark.parametrize("lanes, in_signed, out_signed", CONFIGS)
def test_every_case_bit_exact_and_cycles(lanes, in_signed, out_signed):
    """A random table (no structure to hide an addressing error) through every case."""
    rng = np.random.default_rng(lanes)
    p = g.LutActParams(lanes=lanes, in_signed=in_signed, out_signed=out_signed,
                       table=_random_table(rng, out_signed))
    for case in get_kernel("lut-act").cases(p, seed=lanes):
        a = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, cycles, _, _ = rtl_lut(p, a, idle, stall, seed=case.get("seed", 0))
        want = kt.golden(p, a)
        assert np.array_equal(got, want), case["name"]
        beats = len(kt.x_words(p, a))
        if idle == 0 and stall == 0:
            assert cycles == g.stream_cycles(p, beats), case["name"]
        else:
            assert cycles > g.stream_cycles(p, beats), case["name"]


def test_every_code_reaches_its_entry():
    """All 256 codes on each lane of a 4-lane unit, the table the identity shifted by one
    code: a wrong address (missing top-bit inversion, lanes swapped) changes the result."""
    table = (*range(-127, 128), -128)  # code c → c + 1 (wrapping)
    p = g.LutActParams(lanes=4, table=table)
    codes = np.arange(-128, 128)
    X = np.stack([np.roll(codes, 64 * k) for k in range(4)], axis=1)  # (256, 4)
    got, cycles, _, _ = rtl_lut(p, {"X": X})
    assert got.reshape(256, 4).tolist() == ((X + 129) % 256 - 128).tolist()
    assert cycles == 257


def test_back_pressure_holds_the_beat_and_one_beat_per_cycle():
    """Under random stalls no beat is lost or repeated; each y beat comes at least the
    latency after its x beat; without stalls one x beat is taken per cycle."""
    rng = np.random.default_rng(2)
    p = g.LutActParams(lanes=2, out_signed=False, table=_random_table(rng, False))
    X = rng.integers(-128, 128, (40, 2))
    got, _, x, y = rtl_lut(p, {"X": X}, idle=0.2, stall=0.6, seed=4)
    assert np.array_equal(got, g.lut_act(X, p).ravel())
    assert all(yc - xc >= g.latency_cycles(p) for xc, yc in zip(x.cycles, y.cycles, strict=True))
    _, _, x, y = rtl_lut(p, {"X": X})
    assert x.cycles == list(range(x.cycles[0], x.cycles[0] + 40))
    assert [c - xc for c, xc in zip(y.cycles, x.cycles, strict=True)] == [g.latency_cycles(p)] * 40


def test_ports_follow_the_params():
    """``x``/``y`` are streams of ``lanes`` 8-bit codes with the params' signedness (the
    components are read for their ports only, never elaborated)."""
    import gc
    import warnings

    from amaranth.hdl import Shape

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* created but never used")
        for lanes, ins, outs in CONFIGS:
            dut = LutAct(g.LutActParams(lanes=lanes, in_signed=ins, out_signed=outs,
                                        table=(0,) * 256))
            for port, signed in ((dut.x, ins), (dut.y, outs)):
                layout = port.payload.shape()
                assert layout.length == lanes
                assert Shape.cast(layout.elem_shape) == Shape(8, signed)
            assert set(dut.signature.members) == {"x", "y"}
            del dut
        gc.collect()


def test_component_rejects_wrong_params():
    with pytest.raises(HwsimError, match="needs LutActParams"):
        LutAct({"lanes": 4})


def test_the_cycle_check_catches_a_slower_rtl(tmp_path):
    """The kernel's testbench rejects the unit one cycle late on cycles alone."""
    from hwsim.sim.amaranth_tb import simulate_amaranth
    from hwsim.sim.checker import one_cycle_late
    from tests.sim._report_checks import assert_only_cycles_fail

    kernel = get_kernel("lut-act")
    p = kernel.params(lanes=2, function="tanh", out_signed=True, out_scale=0.01)
    assert_only_cycles_fail(simulate_amaranth(one_cycle_late(kernel), p,
                                              kernel.cases(p, quick=True), tmp_path))
