"""Fast tier: the Amaranth LayerNorm against the golden function in Amaranth's simulator."""

import dataclasses

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import layernorm_int as g
from hwsim.golden.common.lanes import unpack_lanes
from hwsim.kernels import get_kernel
from hwsim.kernels.layernorm import golden, layernorm_cli_params, words
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.common.layernorm import LayerNorm


def rtl_layernorm(p, X, idle=0.0, stall=0.0, seed=0):
    """Run vectors ``X`` (vectors, n) through the RTL; return (codes (vectors, n), x cycles,
    y cycles)."""
    dut = LayerNorm(p)
    x = Source(dut.x, words(X, p.lanes), idle=idle)
    y = Sink(dut.y, len(x.payloads), stall=stall)
    run_streams(dut, [x], [y], seed=seed)
    codes = np.array([unpack_lanes(v, 8, p.lanes, p.out.signed) for v in y.values])
    return codes.reshape(-1, p.n), x.cycles, y.cycles


VARIANTS = [
    dict(n=8, lanes=2),
    dict(n=6, lanes=1, in_signed=False, out_signed=False, in_scale=0.02, out_scale=0.03,
         out_zero=100, eps=1e-3, gain_seed=3),
    dict(n=12, lanes=12, out_zero=-5, gain_seed=5),        # one beat per vector
    dict(n=1, lanes=1, eps=0.0),                      # σ = 0: the offset alone
    dict(n=32, lanes=4, in_scale=0.2, out_scale=1 / 64, eps=0.5, gain_seed=9),  # ε dominates
]


@pytest.mark.parametrize("variant", range(len(VARIANTS)))
def test_every_case_bit_exact_and_cycles(variant):
    p = layernorm_cli_params(**VARIANTS[variant])
    for case in get_kernel("layernorm").cases(p, seed=variant):
        X = np.atleast_2d(case["arrays"]["X"])
        idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
        got, xc, yc = rtl_layernorm(p, X, idle, stall, seed=case.get("seed", 0))
        assert np.array_equal(got, golden(p, case["arrays"])), case["name"]
        cycles = yc[-1] - xc[0] + 1
        if idle == 0 and stall == 0:
            assert cycles == g.stream_cycles(p, X.shape[0]), case["name"]
            # each vector's first beat is taken the cycle after the previous last output
            C = p.chunks
            for v in range(1, X.shape[0]):
                assert xc[v * C] == yc[v * C - 1] + 1
            assert yc[-1] - xc[-1] == g.tail_cycles(p)
        else:
            assert cycles >= g.stream_cycles(p, X.shape[0])


def test_narrow_output_and_wide_gains():
    """A narrow int8 output never writes −128; gains at the ends of their width."""
    base = layernorm_cli_params(n=8, lanes=4, out_scale=1 / 128, gain_seed=1)
    top = (1 << (base.gamma_bits - 1)) - 1
    p = dataclasses.replace(base, out_narrow=True,
                            gamma=tuple(top if i % 2 else -top - 1 for i in range(8)))
    X = np.random.default_rng(2).integers(-128, 128, (4, 8))
    got, _, _ = rtl_layernorm(p, X, stall=0.3, seed=4)
    assert np.array_equal(got, g.layernorm_int(X, p))
    assert got.min() == -127


def test_shared_isqrt_component_is_exact():
    """The digit-by-digit root the norms share: floor(sqrt(v)) after ``S`` cycles."""
    from amaranth.sim import Simulator

    from rtl.common.isqrt import ISqrt
    dut = ISqrt(21)
    values = [0, 1, 2, 3, 4, 15, 16, 17, (1 << 21) - 1, 123456, 999999]
    got = []

    async def tb(ctx):
        for v in values:
            ctx.set(dut.start, 1)
            ctx.set(dut.value, v)
            await ctx.tick()
            ctx.set(dut.start, 0)
            for _ in range(dut.steps - 1):
                assert not ctx.get(dut.last)
                await ctx.tick()
            assert ctx.get(dut.last)
            got.append(ctx.get(dut.root_next))
            await ctx.tick()
            assert ctx.get(dut.done) and ctx.get(dut.root) == got[-1]

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got == [int(np.floor(np.sqrt(v))) for v in values]


def test_refuses_other_params():
    with pytest.raises(HwsimError, match="LayerNormParams"):
        LayerNorm({"n": 8})
