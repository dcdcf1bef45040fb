"""cocotb testbench of the SwiftChannel SPAB gating unit (runs inside the simulator).

Model :func:`hwsim.golden.swiftchannel_gate.gate`; checker: ``==`` on every code, and without
idle input or stalls cycles ``==`` :func:`hwsim.golden.swiftchannel_gate.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwsim.golden import swiftchannel_gate as spec
from hwsim.golden.lanes import pack_lanes, unpack_lanes
from hwsim.sim.plan import load_case, load_plan, write_result
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource, reset


@cocotb.test()
async def swiftchannel_gate_matches_golden(dut):
    plan, folder = load_plan()
    p = spec.GateParams(**plan["params"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.x__valid.value = 0
    dut.y__ready.value = 0
    await reset(dut, dut.clk)
    results, failures = [], []
    L = p.lanes
    for case in plan["cases"]:
        d = load_case(folder, case)
        X, C = d["X"], d["C"]
        n = len(X) // L
        rng = np.random.default_rng(case.get("seed", 0))
        src = StreamSource(dut, "x", rng, case.get("idle", 0.0))
        snk = StreamSink(dut, "y", rng, case.get("stall", 0.0), signed=False)
        src.load([pack_lanes(X[i * L:(i + 1) * L], 8) | pack_lanes(C[i * L:(i + 1) * L], 8) << (8 * L)
                  for i in range(n)])
        snk.open(n)
        t0 = time.perf_counter()
        total = await CycleLoop(dut.clk, [src], [snk]).run()
        wall = time.perf_counter() - t0
        got = np.concatenate([unpack_lanes(v, 8, L, signed=False) for v in snk.values])
        want = spec.gate(X, C, p)
        cycles = snk.cycles[-1] - src.cycles[0] + 1
        timed = case.get("idle", 0.0) == 0 and case.get("stall", 0.0) == 0
        expected = spec.stream_cycles(p, n)
        rec = {"name": case["name"], "cycles": cycles, "expected_cycles": expected,
               "sim_cycles": total, "wall_s": wall, "bit_exact": bool(np.array_equal(got, want)),
               "timed": timed, "cycles_match": cycles == expected}
        if not rec["bit_exact"]:
            bad = np.flatnonzero(got != want)[:5]
            failures.append(f"{case['name']}: codes differ at {bad.tolist()}: rtl "
                            f"{got[bad].tolist()} golden {want[bad].tolist()}")
        if timed and not rec["cycles_match"]:
            failures.append(f"{case['name']}: {cycles} cycles, formula says {expected}")
        results.append(rec)
    write_result(folder, {"cases": results, "failures": failures})
    assert not failures, "; ".join(failures)
