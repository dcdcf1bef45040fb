"""The wide ε divider alone in Amaranth's simulator: ``code == eps_code(E, shift, amax, 6)``
and ``done`` exactly ``latency_cycles`` after ``start``, on random and edge operands (amax 0,
1 and max; shift 0 and max; codes at and just below the saturation at 2**62; E of 161 bits as
the trained BitNet-tiny's FFN SubLN)."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.golden.vitallm import eps_divider as g
from hwsim.golden.vitallm import layer_codes as lc
from rtl.vitallm.eps_divider import EpsDivider


def run_divider(p: g.EpsDividerParams, rows: list[tuple[int, int, int]]):
    """``(codes, cycles from start to done)`` of each ``(E, shift, amax)``, rows back to back
    (the next start in the cycle done rises)."""
    dut = EpsDivider(p)
    out: list[tuple[int, int]] = []

    async def bench(ctx):
        for E, shift, amax in rows:
            ctx.set(dut.e, E)
            ctx.set(dut.amax, amax)
            ctx.set(dut.shift, shift)
            ctx.set(dut.start, 1)
            await ctx.tick()
            ctx.set(dut.start, 0)
            cycles = 1
            while not ctx.get(dut.done):
                await ctx.tick()
                cycles += 1
            out.append((ctx.get(dut.code), cycles))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out


def edge_rows(p: g.EpsDividerParams, rng) -> list[tuple[int, int, int]]:
    amax_max, s_max = (1 << p.amax_width) - 1, p.max_shift
    E_max = (1 << p.e_width) - 1
    rows = [(E_max, s, a) for a in (0, 1, amax_max) for s in (0, s_max)]
    rows += [(0, 0, 1), (0, s_max, amax_max), (1, 0, 1)]
    for a, s in ((1, 0), (3, 2), (amax_max, s_max), (12345, 7)):
        D = a ** p.power << 2 * s
        for q in (lc.EPS_CAP, lc.EPS_CAP - 1):           # codes at and just below the cap
            for E in (q * D - D // 2, q * D - D // 2 - 1, q * D + D // 2 - 1):
                if 0 <= E <= E_max:
                    rows.append((E, s, a))
    for _ in range(24):
        bits = int(rng.integers(1, p.e_width + 1))
        E = int.from_bytes(rng.bytes(64), "little") % (1 << bits)
        rows.append((E, int(rng.integers(0, s_max + 1)),
                     int(rng.integers(0, amax_max + 1)) >> int(rng.integers(0, p.amax_width))))
    return rows


@pytest.mark.parametrize("e_width, amax_width, max_shift", [(161, 24, 22), (40, 5, 3)])
def test_divider_equals_eps_code(e_width, amax_width, max_shift):
    p = g.EpsDividerParams(e_width=e_width, amax_width=amax_width, max_shift=max_shift)
    rows = edge_rows(p, np.random.default_rng(e_width))
    got = run_divider(p, rows)
    want = [g.eps_divide(E, s, a, p) for E, s, a in rows]
    assert [c for c, _ in got] == want
    assert {n for _, n in got} == {g.latency_cycles(p)} == {69}
    assert lc.EPS_CAP in want and any(0 < w < lc.EPS_CAP for w in want)


def test_power_one_and_bad_operands():
    p = g.EpsDividerParams(e_width=70, amax_width=8, max_shift=4, power=1)
    rows = [(5 << 60, 4, 200), ((1 << 70) - 1, 0, 1), (12, 1, 0)]
    got = run_divider(p, rows)
    assert [c for c, _ in got] == [lc.eps_code(E, s, a, 1) for E, s, a in rows]
    assert got[0][1] == g.latency_cycles(p) == 64
    with pytest.raises(HwsimError, match="shift must be 0 … 4"):
        g.eps_divide(1, 5, 1, p)
    with pytest.raises(HwsimError, match="amax must be"):
        g.eps_divide(1, 0, 256, p)
    with pytest.raises(HwsimError, match="E must be"):
        g.eps_divide(1 << 70, 0, 1, p)
    with pytest.raises(HwsimError, match="amax_width"):
        g.EpsDividerParams(amax_width=25)
    with pytest.raises(HwsimError, match="needs EpsDividerParams"):
        EpsDivider(dl.DecoderLayerParams())
