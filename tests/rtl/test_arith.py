"""rtl.common.arith equals quant.qtype bit for bit, for every rounding and overflow mode."""

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from quant.qtype import Overflow, QType, Rounding, round_shift
from rtl.common import round_shift as rtl_round_shift
from rtl.common import saturate, shift_add_multiply


def _comb_eval(build, inputs):
    """Evaluate a combinational circuit for a list of input tuples; return the outputs."""
    m = Module()
    ins, out = build(m)
    results = []

    async def bench(ctx):
        for values in inputs:
            for sig, v in zip(ins, values, strict=True):
                ctx.set(sig, int(v))
            results.append(ctx.get(out))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return results


@pytest.mark.parametrize("rounding", list(Rounding))
def test_round_shift_matches_golden(rounding):
    rng = np.random.default_rng(list(Rounding).index(rounding))
    values = np.concatenate([rng.integers(-(2**19), 2**19, 300), [-(2**19), 2**19 - 1, -1, 0, 1]])
    shifts = rng.integers(0, 64, values.size)  # includes shifts past the value's width
    shifts[:8] = [0, 1, 2, 19, 20, 21, 40, 63]

    def build(m):
        v, s, o = Signal(signed(20)), Signal(unsigned(6)), Signal(signed(22))
        m.d.comb += o.eq(rtl_round_shift(v, s, rounding))
        return (v, s), o

    got = _comb_eval(build, list(zip(values, shifts, strict=True)))
    # The golden shift stops at 62; for 20-bit values a shift of 63 rounds exactly like 62.
    want = [int(round_shift(np.array([v]), min(int(s), 62), rounding)[0])
            for v, s in zip(values, shifts, strict=True)]
    assert got == want


@pytest.mark.parametrize("qt", [QType(8), QType(8, overflow=Overflow.WRAP), QType(6, signed=False),
                                QType(5, signed=False, overflow=Overflow.WRAP),
                                QType(8, narrow=True)], ids=str)
def test_saturate_matches_golden(qt):
    values = [*list(range(-600, 600, 7)), -128, 127, 255, 256, -129]

    def build(m):
        v = Signal(signed(12))
        o = Signal(signed(qt.width) if qt.signed else unsigned(qt.width))
        m.d.comb += o.eq(saturate(v, qt))
        return (v,), o

    assert _comb_eval(build, [(v,) for v in values]) == qt.fit(values).tolist()


def test_shift_add_multiply_is_a_multiplier():
    rng = np.random.default_rng(5)
    a = rng.integers(-(2**15), 2**15, 200)
    b = rng.integers(0, 2**12, 200)

    def build(m):
        x, y, o = Signal(signed(16)), Signal(unsigned(12)), Signal(signed(29))
        m.d.comb += o.eq(shift_add_multiply(x, y))
        return (x, y), o

    assert _comb_eval(build, list(zip(a, b, strict=True))) == (a * b).tolist()


def test_norm_shift_matches_shift_rows():
    """The peak → shift of a norm input row equals the golden ``shift_rows``'s shift."""
    from hwsim.golden.vitallm import layer_codes as lc
    from rtl.common import norm_shift

    rng = np.random.default_rng(7)
    peaks = np.concatenate([[0, 1, (1 << 22) - 1, 1 << 22, (1 << 23) - 1, 1 << 23, (1 << 30) - 1],
                            rng.integers(0, 1 << 30, 200)])

    def build(m):
        p, o = Signal(unsigned(30)), Signal(unsigned(4))
        m.d.comb += o.eq(norm_shift(p, lc.NORM_IN_BITS))
        return [p], o

    got = _comb_eval(build, [(v,) for v in peaks])
    want = lc.shift_rows(peaks[:, None])[1]
    assert np.array_equal(np.array(got), want)
