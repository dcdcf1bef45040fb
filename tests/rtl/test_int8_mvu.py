"""Fast tier: the Amaranth Int8MVU against the golden function in Amaranth's simulator."""

import numpy as np
import pytest
from amaranth.hdl import unsigned

from hwsim.errors import HwsimError
from hwsim.golden.common import int8_mvu as g
from hwsim.kernels import get_kernel
from hwsim.kernels import int8_mvu as kt
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.int8_mvu import Int8MVU


def rtl_mvu(p, a, idle=0.0, stall=0.0, seed=0, baked=False):
    """Run a case's arrays (``W``, ``X``, ``mult``, ``shift``, ``B`` where ``p.bias``) through
    the RTL; return (outputs (vectors, rows), cycles first x beat → last y beat). ``baked``:
    per-row scales given to the constructor instead of streamed on ``s``."""
    dut = Int8MVU(p, **({"row_mult": a["mult"], "row_shift": a["shift"]} if baked else {}))
    X = np.atleast_2d(a["X"])
    side = [[(getattr(dut, name), v) for name, v in beat] for beat in kt.side_values(p, a)]
    sources = [Source(dut.w, g.weight_words(a["W"], p.lanes), idle=idle)]
    if p.bias:
        sources.append(Source(dut.b, g.bias_words(a["B"]), idle=idle))
    if p.per_row_scale and not baked:
        sources.append(Source(dut.s, g.scale_words(p, a["mult"], a["shift"]), idle=idle))
    x = Source(dut.x, kt.x_words(p, a), idle=idle, side=side)
    y = Sink(dut.y, X.shape[0] * p.rows, stall=stall)
    settle = [] if p.per_row_scale else [(dut.mult, 0), (dut.shift, 0)]
    run_streams(dut, [*sources, x], [y], seed=seed, settle=settle)
    return np.array(y.values).reshape(X.shape[0], p.rows), y.cycles[-1] - x.cycles[0] + 1


#: lanes == 1, lanes == cols (one chunk per row), rows == 1, both, and ordinary shapes
CONFIGS = [(1, 3, 5), (8, 4, 8), (1, 1, 1), (4, 1, 4), (4, 8, 16), (3, 2, 9)]
VARIANTS = [dict(), dict(act_signed=False, out_signed=False, relu=True, zero_point=3, bias=True),
            dict(zero_point=-7, relu=True), dict(out_signed=False, zero_point=128, bias=True),
            dict(per_row_scale=True, bias=True, zero_point=-7, relu=True),
            dict(per_row_scale=True, act_signed=False, out_signed=False, zero_point=9)]


@pytest.mark.parametrize("lanes, rows, cols", CONFIGS)
@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_every_case_bit_exact_and_cycles(lanes, rows, cols, variant):
    p = g.Int8MvuParams(lanes=lanes, rows=rows, cols=cols, **VARIANTS[variant])
    for case in get_kernel("int8-mvu").cases(p, seed=lanes * 100 + cols + variant):
        a = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, cycles = rtl_mvu(p, a, idle, stall, seed=case.get("seed", 0))
        want = kt.golden(p, a)
        assert np.array_equal(got, want), (case["name"], got, want)
        vectors = np.atleast_2d(a["X"]).shape[0]
        if idle == 0 and stall == 0:
            assert cycles == g.stream_cycles(p, vectors), case["name"]
        else:
            assert cycles >= g.stream_cycles(p, vectors)


@pytest.mark.parametrize("rounding", ["half_even", "half_up", "half_away", "floor", "trunc"])
def test_roundings_and_shifts(rounding):
    """The requantizer rounds as the output format says, for small, large and zero shifts."""
    p = g.Int8MvuParams(lanes=4, rows=6, cols=8, rounding=rounding, zero_point=2)
    rng = np.random.default_rng(9)
    W, X = rng.integers(-128, 128, (6, 8)), rng.integers(-128, 128, (3, 8))
    for mult, shift in [(3, 2), (1, 0), (40000, 19), (65535, 62), (5, 9)]:
        a = {"W": W, "X": X, "mult": mult, "shift": shift}
        got, _ = rtl_mvu(p, a)
        assert np.array_equal(got, kt.golden(p, a)), (mult, shift)


def test_saturation_relu_and_bias_extremes():
    """int32 bias extremes on the longest accumulation: saturation both ways, ReLU at the
    zero point."""
    p = g.Int8MvuParams(lanes=2, rows=4, cols=4, bias=True, relu=True, zero_point=-3)
    a = {"W": np.array([[-128] * 4, [127] * 4, [0] * 4, [1, -1, 1, -1]]),
         "X": np.array([[-128] * 4, [127, -128, 0, 1]]),
         "B": np.array([(1 << 31) - 1, -(1 << 31), -1, 0]), "mult": 1, "shift": 0}
    got, _ = rtl_mvu(p, a)
    want = kt.golden(p, a)
    assert np.array_equal(got, want)
    assert want.tolist() == [[127, -3, -3, -3], [127, -3, -3, 127]]


@pytest.mark.parametrize("lanes, rows, cols", [(2, 5, 6), (4, 1, 4)])
def test_baked_row_scales_equal_streamed_ones(lanes, rows, cols):
    """Per-row scales given at elaboration (as a compiled design bakes them) give the codes
    and cycles of the same scales loaded through ``s``; each row has its own scale."""
    p = g.Int8MvuParams(lanes=lanes, rows=rows, cols=cols, bias=True, per_row_scale=True)
    a = get_kernel("int8-mvu").cases(p, seed=5)[0]["arrays"]
    assert len(set(zip(a["mult"], a["shift"], strict=True))) == min(rows, 6)
    got, cycles = rtl_mvu(p, a, baked=True)
    assert np.array_equal(got, kt.golden(p, a))
    assert cycles == g.stream_cycles(p, np.atleast_2d(a["X"]).shape[0])
    assert np.array_equal(got, rtl_mvu(p, a)[0])


def test_row_scale_contents_are_checked():
    p = g.Int8MvuParams(lanes=2, rows=2, cols=2, per_row_scale=True, mult_bits=4)
    with pytest.raises(HwsimError, match="multiplier outside"):
        Int8MVU(p, row_mult=[3, 16], row_shift=[0, 0])
    with pytest.raises(HwsimError, match="give both"):
        Int8MVU(p, row_mult=[3, 4])
    with pytest.raises(HwsimError, match="give both"):
        Int8MVU(g.Int8MvuParams(lanes=2, rows=2, cols=2), row_mult=[1, 1], row_shift=[0, 0])


def test_ports_follow_the_params():
    """A ``b`` stream only with a bias; ``x`` lanes unsigned for uint8 activations (the
    components are read for their ports only, never elaborated)."""
    import gc
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".* created but never used")
        plain = Int8MVU(g.Int8MvuParams(lanes=2, rows=2, cols=2))
        mvu = Int8MVU(g.Int8MvuParams(lanes=2, rows=2, cols=2, bias=True, act_signed=False))
        rows = Int8MVU(g.Int8MvuParams(lanes=2, rows=3, cols=2, per_row_scale=True,
                                       mult_bits=20))
        assert not hasattr(plain, "b") and not hasattr(plain, "s")
        assert mvu.b.payload.shape().signed and not mvu.x.payload[0].shape().signed
        assert not hasattr(rows, "mult") and not hasattr(rows, "shift")
        assert rows.s.payload.shape() == unsigned(26)
        del plain, mvu, rows
        gc.collect()


def test_component_rejects_wrong_params():
    with pytest.raises(HwsimError, match="needs Int8MvuParams"):
        Int8MVU({"lanes": 4})


def test_the_cycle_check_catches_a_slower_rtl(tmp_path):
    """The kernel's testbench rejects the MVU one cycle late on cycles alone."""
    from hwsim.sim.amaranth_tb import simulate_amaranth
    from hwsim.sim.checker import one_cycle_late
    from tests.sim._report_checks import assert_only_cycles_fail

    kernel = get_kernel("int8-mvu")
    p = kernel.params(lanes=2, rows=2, cols=4, bias=True)
    assert_only_cycles_fail(simulate_amaranth(one_cycle_late(kernel), p,
                                              kernel.cases(p, quick=True), tmp_path))
