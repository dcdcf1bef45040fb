"""cocotb testbench of the ternary MVU (runs inside the simulator; see :mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``w`` and ``x``,
:class:`~hwsim.sim.streams.StreamSink` on ``y``. Model: :func:`hwsim.golden.ternary_mvu.ternary_mvu`.
Checker: every output code ``==`` the golden code, and with no idle input and no back-pressure
the measured cycles ``==`` :func:`hwsim.golden.ternary_mvu.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwsim.golden import ternary_mvu as spec
from hwsim.golden.lanes import pack_lanes
from hwsim.sim.plan import decode_params, load_case, load_plan, write_result
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource, reset


class TernaryMvuBench:
    """Wires driver, monitor, model and checker for one DUT."""

    def __init__(self, dut, params: spec.TernaryMvuParams, rng, idle: float, stall: float):
        self.dut, self.p = dut, params
        self.w = StreamSource(dut, "w", rng, idle)
        self.x = StreamSource(dut, "x", rng, idle)
        self.y = StreamSink(dut, "y", rng, stall, signed=params.out.signed)

    async def run_case(self, W, X, mult: int, shift: int) -> dict:
        p = self.p
        self.dut.mult.value = int(mult)
        self.dut.shift.value = int(shift)
        X = np.atleast_2d(X)
        self.w.load(spec.weight_words(W, p.lanes))
        self.x.load([pack_lanes(v[k * p.lanes:(k + 1) * p.lanes], p.act.width)
                     for v in X for k in range(p.chunks)])
        self.y.open(X.shape[0] * p.rows)
        t0 = time.perf_counter()
        total = await CycleLoop(self.dut.clk, [self.w, self.x], [self.y]).run()
        wall = time.perf_counter() - t0
        return {
            "outputs": self.y.values,
            "output_cycles": [c - self.x.cycles[0] for c in self.y.cycles],
            "cycles": self.y.cycles[-1] - self.x.cycles[0] + 1,
            "weight_load_cycles": self.w.cycles[-1] - self.w.cycles[0] + 1,
            "sim_cycles": total,
            "wall_s": wall,
        }


@cocotb.test()
async def ternary_mvu_matches_golden(dut):
    plan, folder = load_plan()
    p = decode_params(spec.TernaryMvuParams, plan["params"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.w__valid.value = 0
    dut.x__valid.value = 0
    dut.y__ready.value = 0
    await reset(dut, dut.clk)

    results, failures = [], []
    for case in plan["cases"]:
        data = load_case(folder, case)
        rng = np.random.default_rng(case.get("seed", 0))
        bench = TernaryMvuBench(dut, p, rng, case.get("idle", 0.0), case.get("stall", 0.0))
        got = await bench.run_case(data["W"], data["X"], int(data["mult"]), int(data["shift"]))
        want = spec.ternary_mvu(data["W"], data["X"], int(data["mult"]), int(data["shift"]),
                                p.out, p.act).ravel()
        out = np.asarray(got["outputs"], dtype=np.int64)
        vectors = np.atleast_2d(data["X"]).shape[0]
        expected_cycles = spec.stream_cycles(p, vectors)
        record = {"name": case["name"], "vectors": vectors, "cycles": got["cycles"],
                  "expected_cycles": expected_cycles, "sim_cycles": got["sim_cycles"],
                  "wall_s": got["wall_s"], "bit_exact": bool(np.array_equal(out, want)),
                  "weight_load_cycles": got["weight_load_cycles"],
                  "outputs": out.tolist(), "output_cycles": got["output_cycles"]}
        if not record["bit_exact"]:
            bad = np.flatnonzero(out != want)[:5]
            failures.append(f"{case['name']}: outputs differ at {bad.tolist()}: "
                            f"rtl {out[bad].tolist()} golden {want[bad].tolist()}")
        timed = case.get("idle", 0.0) == 0 and case.get("stall", 0.0) == 0
        if timed and got["cycles"] != expected_cycles:
            failures.append(f"{case['name']}: {got['cycles']} cycles, formula says "
                            f"{expected_cycles}")
        if timed and got["weight_load_cycles"] != spec.weight_load_cycles(p):
            failures.append(f"{case['name']}: weight load took {got['weight_load_cycles']} "
                            f"cycles, formula says {spec.weight_load_cycles(p)}")
        record["timed"] = timed
        record["cycles_match"] = got["cycles"] == expected_cycles
        results.append(record)
    write_result(folder, {"cases": results, "failures": failures})
    assert not failures, "; ".join(failures)
