"""cocotb testbench of the composed SwiftChannel pipeline (runs inside the simulator).

Driver :class:`~hwsim.sim.streams.StreamSource` on ``x`` (one input pixel per beat), monitor
:class:`~hwsim.sim.streams.StreamSink` on ``y`` (one up-conv pixel per beat); model
:func:`hwsim.golden.swiftchannel_pipeline.pipeline`; checker: every code ``==`` golden, and
without idle input or stalls the measured cycles ``==``
:func:`hwsim.golden.swiftchannel_pipeline.frame_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwsim.golden import swiftchannel_pipeline as spec
from hwsim.golden.lanes import pack_lanes, unpack_lanes
from hwsim.sim.plan import load_case, load_plan, write_result
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource, reset


@cocotb.test()
async def swiftchannel_pipeline_matches_golden(dut):
    plan, folder = load_plan()
    p = spec.PipelineParams(**plan["params"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.x__valid.value = 0
    dut.y__ready.value = 0
    await reset(dut, dut.clk)
    results, failures = [], []
    expected = spec.frame_cycles(p)
    for case in plan["cases"]:
        X = load_case(folder, case)["X"]
        rng = np.random.default_rng(case.get("seed", 0))
        src = StreamSource(dut, "x", rng, case.get("idle", 0.0))
        snk = StreamSink(dut, "y", rng, case.get("stall", 0.0), signed=False)
        src.load([pack_lanes(X[:, r, c], 8) for r in range(p.height) for c in range(p.width)])
        snk.open(p.pixels)
        t0 = time.perf_counter()
        total = await CycleLoop(dut.clk, [src], [snk]).run()
        wall = time.perf_counter() - t0
        got = np.array([unpack_lanes(v & ((1 << 8 * p.out_ch) - 1), 8, p.out_ch, signed=False)
                        for v in snk.values])
        want = spec.pipeline(X, p)
        cycles = snk.cycles[-1] - src.cycles[0] + 1
        timed = case.get("idle", 0.0) == 0 and case.get("stall", 0.0) == 0
        rec = {"name": case["name"], "cycles": cycles, "expected_cycles": expected,
               "sim_cycles": total, "wall_s": wall, "bit_exact": bool(np.array_equal(got, want)),
               "timed": timed, "cycles_match": cycles == expected}
        if not rec["bit_exact"]:
            bad = np.argwhere(got != want)[:5]
            failures.append(f"{case['name']}: codes differ at {bad.tolist()}")
        if timed and not rec["cycles_match"]:
            failures.append(f"{case['name']}: {cycles} cycles, formula says {expected}")
        results.append(rec)
    write_result(folder, {"cases": results, "failures": failures})
    assert not failures, "; ".join(failures)
