"""cocotb testbench of the LIF neuron array (runs inside the simulator; see :mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``w`` and ``ev``,
:class:`~hwsim.sim.streams.StreamSink` on ``out``. Model: :func:`hwsim.golden.snn.lif_array.lif_array`.
Checker: every spike and membrane code ``==`` golden, and with no idle input and no
back-pressure the measured cycles ``==`` :func:`hwsim.golden.snn.lif_array.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwsim.golden.common.lanes import unpack_lanes
from hwsim.golden.snn import lif_array as spec
from hwsim.kernels.lif_array import ev_words, split_steps
from hwsim.sim.plan import decode_params, load_case, load_plan, write_result
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource, reset


def decode_out(values, p: spec.LifParams, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Output beats → (steps, neurons) spikes and membranes."""
    spikes, mems = [], []
    for v in values:
        v = int(v) & ((1 << (p.lanes * (1 + p.mem.width))) - 1)
        spikes.append([(v >> l) & 1 for l in range(p.lanes)])
        mems.append(unpack_lanes(v >> p.lanes, p.mem.width, p.lanes))
    return (np.array(spikes, np.int64).reshape(steps, p.neurons),
            np.array(mems, np.int64).reshape(steps, p.neurons))


class LifArrayBench:
    """Wires driver, monitor, model and checker for one DUT."""

    def __init__(self, dut, params: spec.LifParams, rng, idle: float, stall: float):
        self.dut, self.p = dut, params
        self.w = StreamSource(dut, "w", rng, idle)
        self.ev = StreamSource(dut, "ev", rng, idle)
        self.out = StreamSink(dut, "out", rng, stall, signed=False)

    async def run_case(self, W, steps) -> dict:
        p = self.p
        self.w.load(spec.weight_words(W, p))
        self.ev.load(ev_words(steps, p))
        self.out.open(len(steps) * p.chunks)
        t0 = time.perf_counter()
        total = await CycleLoop(self.dut.clk, [self.w, self.ev], [self.out]).run()
        return {"outputs": self.out.values,
                "cycles": self.out.cycles[-1] - self.ev.cycles[0] + 1,
                "weight_load_cycles": self.w.cycles[-1] - self.w.cycles[0] + 1,
                "sim_cycles": total, "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def lif_array_matches_golden(dut):
    plan, folder = load_plan()
    p = decode_params(spec.LifParams, plan["params"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.w__valid.value = 0
    dut.ev__valid.value = 0
    dut.out__ready.value = 0
    results, failures = [], []
    for case in plan["cases"]:
        await reset(dut, dut.clk)  # every case starts from zero membranes, like the golden
        data = load_case(folder, case)
        steps = split_steps(data)
        rng = np.random.default_rng(case.get("seed", 0))
        bench = LifArrayBench(dut, p, rng, case.get("idle", 0.0), case.get("stall", 0.0))
        got = await bench.run_case(data["W"], steps)
        spikes, mems = decode_out(got["outputs"], p, len(steps))
        want_s, want_v = spec.lif_array(data["W"], steps, p)
        expected = spec.stream_cycles(p, [len(s) for s in steps])
        exact = bool(np.array_equal(spikes, want_s) and np.array_equal(mems, want_v))
        record = {"name": case["name"], "steps": len(steps),
                  "events": int(sum(len(s) for s in steps)), "spikes": int(want_s.sum()),
                  "cycles": got["cycles"], "expected_cycles": expected,
                  "sim_cycles": got["sim_cycles"], "wall_s": got["wall_s"], "bit_exact": exact,
                  "weight_load_cycles": got["weight_load_cycles"]}
        if not exact:
            bad = np.argwhere((spikes != want_s) | (mems != want_v))[:5]
            failures.append(f"{case['name']}: differ at (step, neuron) {bad.tolist()}: rtl "
                            f"{[int(mems[tuple(b)]) for b in bad]} golden "
                            f"{[int(want_v[tuple(b)]) for b in bad]}")
        timed = case.get("idle", 0.0) == 0 and case.get("stall", 0.0) == 0
        if timed and got["cycles"] != expected:
            failures.append(f"{case['name']}: {got['cycles']} cycles, formula says {expected}")
        if timed and got["weight_load_cycles"] != spec.weight_load_cycles(p):
            failures.append(f"{case['name']}: weight load took {got['weight_load_cycles']} "
                            f"cycles, formula says {spec.weight_load_cycles(p)}")
        record["timed"] = timed
        record["cycles_match"] = got["cycles"] == expected
        results.append(record)
    write_result(folder, {"cases": results, "failures": failures})
    assert not failures, "; ".join(failures)
