import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from hwsim.errors import HwsimError
from hwsim.golden.common.int8_matmul import booth_multiply as golden_booth
from rtl.common.booth import booth_multiply, const_multiply, multiply


def _run_comb(m, inputs, outputs, vectors):
    """Drive ``inputs`` with each vector, read ``outputs`` after settling."""
    got = []

    async def bench(ctx):
        for vec in vectors:
            for sig, v in zip(inputs, vec, strict=True):
                ctx.set(sig, int(v))
            await ctx.delay(1e-9)
            got.append([ctx.get(o) for o in outputs])

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got, dtype=np.int64)


@pytest.mark.parametrize("style", ["booth", "dsp"])
def test_every_9bit_by_int8_product(style):
    # 256 multipliers side by side, one per int8 b; every 9-bit a in turn: 131 072 products
    m = Module()
    a = Signal(signed(9))
    outs = [Signal(signed(17), name=f"p{b + 128}") for b in range(-128, 128)]
    for b, o in zip(range(-128, 128), outs, strict=True):
        bs = Signal(signed(8), name=f"b{b + 128}", init=b)
        m.d.comb += o.eq(multiply(a, bs, style))
    got = _run_comb(m, [a], outs, [(v,) for v in range(-256, 256)])
    A, B = np.meshgrid(np.arange(-256, 256), np.arange(-128, 128), indexing="ij")
    assert np.array_equal(got, A * B)
    assert np.array_equal(got, golden_booth(A, B, 8))


def test_ternary_mode_on_i2s_codes():
    m = Module()
    a, ternary = Signal(signed(8)), Signal()
    outs = []
    for code in range(4):
        b = Signal(unsigned(2), name=f"code{code}", init=code)
        o = Signal(signed(12), name=f"t{code}")
        m.d.comb += o.eq(booth_multiply(a, b, ternary=ternary))
        outs.append(o)
    got = _run_comb(m, [a, ternary], outs, [(v, 1) for v in range(-128, 128)])
    A = np.arange(-128, 128)[:, None]
    assert np.array_equal(got, A * np.array([-1, 0, 1, 0])[None, :])
    # ternary low: the same unit multiplies by the (unsigned) code itself
    got = _run_comb(m, [a, ternary], outs, [(v, 0) for v in range(-128, 128)])
    assert np.array_equal(got, A * np.arange(4)[None, :])


@pytest.mark.parametrize("style", ["booth", "dsp"])
def test_wide_unsigned_operands(style):
    rng = np.random.default_rng(0)
    m = Module()
    a, b = Signal(signed(24)), Signal(unsigned(17))
    o = Signal(signed(42))
    c = Signal(signed(42))
    m.d.comb += [o.eq(multiply(a, b, style)), c.eq(const_multiply(a, 94548))]
    av = [-(1 << 23), (1 << 23) - 1, 0, -1, *rng.integers(-(1 << 23), 1 << 23, 60)]
    bv = [(1 << 17) - 1, 1 << 16, 0, 1, *rng.integers(0, 1 << 17, 60)]
    got = _run_comb(m, [a, b], [o, c], list(zip(av, bv, strict=True)))
    assert np.array_equal(got[:, 0], np.array(av) * np.array(bv))
    assert np.array_equal(got[:, 1], np.array(av) * 94548)


def test_unknown_style_is_one_clear_error():
    with pytest.raises(HwsimError, match="multiplier style"):
        multiply(Signal(8), Signal(8), "wallace")
