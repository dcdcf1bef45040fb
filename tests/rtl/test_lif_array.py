"""Amaranth LIFArray against the golden LIF array (fast tier, Amaranth's simulator)."""

import numpy as np
import pytest

from hwsim.golden.common.lanes import unpack_lanes
from hwsim.golden.snn import lif_array as spec
from hwsim.kernels.lif_array import dvs_steps, ev_words
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.snn.lif_array import LIFArray


def rtl_lif(p, w, steps, idle=0.0, stall=0.0, seed=0):
    dut = LIFArray(p)
    src_w = Source(dut.w, spec.weight_words(w, p))
    src_e = Source(dut.ev, ev_words(steps, p), idle=idle)
    sink = Sink(dut.out, len(steps) * p.chunks, stall=stall)
    run_streams(dut, [src_w, src_e], [sink], seed=seed)
    spikes = [[(v >> l) & 1 for l in range(p.lanes)] for v in sink.values]
    mems = [unpack_lanes(v >> p.lanes, p.mem.width, p.lanes) for v in sink.values]
    cycles = sink.cycles[-1] - src_e.cycles[0] + 1
    return (np.array(spikes).reshape(len(steps), -1), np.array(mems).reshape(len(steps), -1),
            cycles)


PARAMS = [
    spec.LifParams(),
    spec.LifParams(neurons=3, inputs=16, lanes=1, threshold=100),
    spec.LifParams(neurons=8, inputs=16, lanes=8, weight_bits=4, threshold=6, leak_mode="shift",
                   reset="zero", refractory=2),
    spec.LifParams(neurons=8, inputs=64, lanes=2, mem_bits=10, threshold=300,
                   leak_rounding="half_even"),
]


@pytest.mark.parametrize("p", PARAMS, ids=lambda p: f"n{p.neurons}l{p.lanes}w{p.weight_bits}")
def test_rtl_equals_golden_and_cycles_equal_formula(p):
    rng = np.random.default_rng(p.neurons)
    w = rng.integers(p.weight.min_code, p.weight.max_code + 1, (p.neurons, p.inputs))
    steps = [rng.integers(0, p.inputs, rng.integers(0, 9)) for _ in range(8)]
    steps.append(np.arange(p.inputs))  # one dense step: saturation for the narrow membrane
    want_s, want_v = spec.lif_array(w, steps, p)
    s, v, cycles = rtl_lif(p, w, steps)
    assert np.array_equal(s, want_s) and np.array_equal(v, want_v)
    assert cycles == spec.stream_cycles(p, [len(x) for x in steps])
    assert want_s.sum() > 0


def test_rtl_on_real_dvs_events_with_backpressure():
    p = spec.LifParams(neurons=16, inputs=64, lanes=4, threshold=40)
    rng = np.random.default_rng(7)
    w = rng.integers(-128, 128, (16, 64))
    steps = dvs_steps(p, 10, seed=3)
    assert sum(len(s) for s in steps) > 20
    want_s, want_v = spec.lif_array(w, steps, p)
    s, v, cycles = rtl_lif(p, w, steps, idle=0.3, stall=0.4, seed=1)
    assert np.array_equal(s, want_s) and np.array_equal(v, want_v)
    assert cycles > spec.stream_cycles(p, [len(x) for x in steps])
    assert want_s.sum() > 0
