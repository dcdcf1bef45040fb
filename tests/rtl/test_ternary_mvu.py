"""Fast tier: the Amaranth TernaryMVU against the golden function in Amaranth's simulator."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import ternary_mvu as g
from hwsim.kernels import get_kernel
from hwsim.kernels import ternary_mvu as kt
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from quant.qtype import Overflow, QType, Rounding
from rtl.vitallm.ternary_mvu import TernaryMVU


def rtl_mvu(p, W, X, mult, shift, idle=0.0, stall=0.0, seed=0, dut=None):
    """Run W·x through the RTL; return (outputs, cycles first x → last y, weight-load cycles).

    ``mult``/``shift`` are one value or one per vector, driven with the vector's first ``x``
    beat (:func:`hwsim.kernels.ternary_mvu.side_values`: other beats drive other values).
    """
    dut = TernaryMVU(p) if dut is None else dut
    X = np.atleast_2d(X)
    xs = [pack_lanes(v[k * p.lanes:(k + 1) * p.lanes], p.act.width)
          for v in X for k in range(p.chunks)]
    side = [[(getattr(dut, name), v) for name, v in beat]
            for beat in kt.side_values(p, {"X": X, "mult": mult, "shift": shift})]
    w = Source(dut.w, g.weight_words(W, p.lanes), idle=idle)
    x = Source(dut.x, xs, idle=idle, side=side)
    y = Sink(dut.y, X.shape[0] * p.rows, stall=stall)
    run_streams(dut, [w, x], [y], seed=seed, settle=[(dut.mult, 0), (dut.shift, 0)])
    return (np.array(y.values).reshape(X.shape[0], p.rows), y.cycles[-1] - x.cycles[0] + 1,
            w.cycles[-1] - w.cycles[0] + 1)


CONFIGS = [(1, 1, 1), (1, 3, 5), (4, 8, 16), (5, 2, 5), (8, 4, 64), (16, 16, 16)]


@pytest.mark.parametrize("lanes, rows, cols", CONFIGS)
def test_random_bit_exact_and_cycles(lanes, rows, cols):
    p = g.TernaryMvuParams(lanes=lanes, rows=rows, cols=cols)
    kernel = get_kernel("ternary-mvu")
    for case in kernel.cases(p, seed=lanes * 100 + cols):
        a = case["arrays"]
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, cycles, wcycles = rtl_mvu(p, a["W"], a["X"], a["mult"], a["shift"], idle, stall,
                                       seed=case.get("seed", 0))
        want = kt.golden(p, a)
        assert np.array_equal(got, want), (case["name"], got, want)
        vectors = np.atleast_2d(a["X"]).shape[0]
        if idle == 0 and stall == 0:
            assert cycles == g.stream_cycles(p, vectors), case["name"]
            assert wcycles == g.weight_load_cycles(p)
        else:
            assert cycles >= g.stream_cycles(p, vectors)


@pytest.mark.parametrize("out", [QType(8, rounding=Rounding.HALF_UP),
                                 QType(8, rounding=Rounding.FLOOR, overflow=Overflow.WRAP),
                                 QType(8, rounding=Rounding.HALF_AWAY, narrow=True),
                                 QType(6, rounding=Rounding.TRUNC),
                                 QType(8, signed=False)], ids=str)
def test_output_formats(out):
    """The requantizer follows the output QType's rounding and overflow exactly."""
    p = g.TernaryMvuParams(lanes=4, rows=6, cols=8, out=out)
    rng = np.random.default_rng(9)
    W, X = rng.integers(-1, 2, (6, 8)), rng.integers(-128, 128, (3, 8))
    for mult, shift in [(3, 2), (1, 0), (40000, 19), (1, 63)]:
        got, _, _ = rtl_mvu(p, W, X, mult, shift)
        # the golden shift stops at 62; for these small products 63 rounds like 62
        want = g.ternary_mvu(W, X, mult, min(shift, 62), out=out)
        assert np.array_equal(got, want), (mult, shift, got, want)


def test_scale_sampled_per_vector():
    """mult/shift are sampled with each vector's first beat, so back-to-back vectors may differ."""
    p = g.TernaryMvuParams(lanes=2, rows=2, cols=2)
    dut = TernaryMVU(p)
    W = np.array([[1, 1], [1, -1]])
    X = np.array([[10, 3], [20, 5]])
    xs = [pack_lanes(v, 8) for v in X]
    y = Sink(dut.y, 4)

    from amaranth.sim import Simulator

    async def bench(ctx):
        for word in g.weight_words(W, 2):
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.w.payload, word)
            await ctx.tick().until(dut.w.ready)
        ctx.set(dut.w.valid, 0)
        ctx.set(dut.y.ready, 1)
        for (xw, mult) in zip(xs, (1, 2), strict=True):
            ctx.set(dut.mult, mult)
            ctx.set(dut.x.valid, 1)
            ctx.set(dut.x.payload.as_value(), xw)
            await ctx.tick().until(dut.x.ready)
            ctx.set(dut.x.valid, 0)
            ctx.set(dut.mult, 7)  # garbage after the beat: must not matter
        while len(y.values) < 4:
            if ctx.get(dut.y.valid):
                y.values.append(ctx.get(dut.y.payload))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert y.values == [13, 7, 50, 30]


def test_component_rejects_wrong_params():
    with pytest.raises(HwsimError, match="needs TernaryMvuParams"):
        TernaryMVU({"lanes": 4})


#: every parameter corner: lanes == cols (one chunk per row), lanes == 1, rows == 1, and both.
#: A stall can hold a vector's last row in the pipeline while the next vector loads only where
#: the output register then holds a valid row: one or three chunks per row (the 4-stage
#: pipeline), rows ≥ 2 or idle input; the shapes below include such ones at every corner.
CORNERS = [(4, 2, 4), (3, 5, 3), (1, 3, 3), (1, 2, 5), (2, 1, 4), (4, 1, 4), (1, 1, 1),
           (2, 4, 6)]


@pytest.mark.parametrize("lanes, rows, cols", CORNERS)
@pytest.mark.parametrize("idle, stall", [(0.0, 0.5), (0.0, 0.9), (0.3, 0.9)])
def test_per_vector_scales_under_backpressure(lanes, rows, cols, idle, stall):
    """Back-to-back vectors, each with its own M/S, with the output stalled: a stall that
    holds a vector's last row in the pipeline while the next vector (and its M/S) loads must
    not change that row's rescale."""
    p = g.TernaryMvuParams(lanes=lanes, rows=rows, cols=cols)
    rng = np.random.default_rng(lanes * 7 + rows * 3 + cols)
    for seed in range(3):
        W = rng.integers(-1, 2, (rows, cols))
        X = rng.integers(-128, 128, (6, cols))
        M, S = kt._scales_per_vector(X, W, p.mult_bits)
        assert len(set(zip(M.tolist(), S.tolist(), strict=True))) == len(X)
        a = {"W": W, "X": X, "mult": M, "shift": S}
        got, cycles, _ = rtl_mvu(p, W, X, M, S, idle=idle, stall=stall, seed=seed)
        want = kt.golden(p, a)
        assert np.array_equal(got, want), (seed, got, want)
        assert cycles >= g.stream_cycles(p, len(X))
    # and with no idle input and no back-pressure the formula holds with per-vector scales
    got, cycles, _ = rtl_mvu(p, W, X, M, S)
    assert np.array_equal(got, kt.golden(p, a))
    assert cycles == g.stream_cycles(p, len(X))


def test_side_signals_need_one_entry_per_payload():
    dut = TernaryMVU(g.TernaryMvuParams(lanes=2, rows=2, cols=2))
    with pytest.raises(HwsimError, match="side has 1 entries for 2 payloads"):
        Source(dut.x, [0, 1], side=[[(dut.mult, 1)]])
