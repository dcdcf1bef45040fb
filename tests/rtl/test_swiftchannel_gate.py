"""Fast tier: the SPAB gating unit in Amaranth's simulator == golden, cycles == formula."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.swiftchannel import gate as spec
from hwsim.golden.swiftchannel import network as sc
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.swiftchannel.gate import SwiftChannelGate


def params(lanes=4, **kw):
    M, S = sc.lut_multiplier(0.037)
    mx, mc, s = sc.skip_multipliers(0.083, 0.041, 0.02)
    base = dict(lanes=lanes, z_x=120, z_c=131, lut_mult=M, lut_shift=S, sum_mult_x=mx,
                sum_mult_c=mc, sum_shift=s, z_out=127)
    return spec.GateParams(**{**base, **kw})


def rtl_gate(p, x, c, idle=0.0, stall=0.0, seed=0):
    dut = SwiftChannelGate(p)
    n = len(x) // p.lanes
    beats = [pack_lanes(x[i * p.lanes:(i + 1) * p.lanes], 8)
             | pack_lanes(c[i * p.lanes:(i + 1) * p.lanes], 8) << (8 * p.lanes) for i in range(n)]
    src = Source(dut.x, beats, idle=idle)
    snk = Sink(dut.y, n, stall=stall)
    run_streams(dut, [src], [snk], seed=seed)
    out = np.concatenate([unpack_lanes(v, 8, p.lanes, signed=False) for v in snk.values])
    return out, snk.cycles[-1] - src.cycles[0] + 1


@pytest.mark.parametrize("kw", [{}, {"sum_mult_x": 65535, "sum_mult_c": 1, "sum_shift": 15},
                                {"sum_mult_x": 3, "sum_mult_c": 1, "sum_shift": 0},
                                {"sum_mult_x": 40000, "sum_mult_c": 65535, "sum_shift": 40,
                                 "z_out": 0}])
def test_gate_all_code_pairs_sampled(kw):
    p = params(**kw)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, 64 * p.lanes)
    c = rng.integers(0, 256, 64 * p.lanes)
    x[:2], c[:2] = (0, 255), (0, 255)  # the LUT clamps at both ends
    got, cycles = rtl_gate(p, x, c)
    assert np.array_equal(got, spec.gate(x, c, p))
    assert cycles == spec.stream_cycles(p, 64)


def test_gate_backpressure():
    p = params(lanes=2)
    rng = np.random.default_rng(1)
    x, c = rng.integers(0, 256, 40), rng.integers(0, 256, 40)
    got, _ = rtl_gate(p, x, c, idle=0.3, stall=0.4, seed=5)
    assert np.array_equal(got, spec.gate(x, c, p))


def test_bad_gate_params():
    with pytest.raises(HwsimError, match="z_x"):
        params(z_x=300)
    with pytest.raises(HwsimError, match="lanes"):
        params(lanes=0)
