"""cocotb testbench of the integer RMSNorm (runs inside the simulator; see :mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``inp``,
:class:`~hwsim.sim.streams.StreamSink` on ``y``. Model: :func:`hwsim.golden.vitallm.rmsnorm_int.rmsnorm_int`,
vector by vector (a case's ``eps`` is one value or one per vector, driven with its last beat).
Checker: every code ``==`` golden; with no idle input and no back-pressure each vector's cycles
(first input beat to last output beat) ``==`` :func:`hwsim.golden.vitallm.rmsnorm_int.latency_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwsim.golden.common.lanes import unpack_lanes
from hwsim.golden.vitallm import rmsnorm_int as spec
from hwsim.kernels.rmsnorm_int import golden, in_words, side_values
from hwsim.sim.plan import decode_params, load_case, load_plan, write_result
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource, reset


@cocotb.test()
async def rmsnorm_matches_golden(dut):
    plan, folder = load_plan()
    p = decode_params(spec.RmsNormParams, plan["params"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.inp__valid.value = 0
    dut.y__ready.value = 0
    await reset(dut, dut.clk)
    C = p.chunks
    results, failures = [], []
    for case in plan["cases"]:
        data = load_case(folder, case)
        X = np.atleast_2d(data["X"])
        rng = np.random.default_rng(case.get("seed", 0))
        src = StreamSource(dut, "inp", rng, case.get("idle", 0.0))
        snk = StreamSink(dut, "y", rng, case.get("stall", 0.0), signed=False)
        src.load(in_words(X, data["g"], p),
                 side=[tuple((getattr(dut, name), v) for name, v in beat)
                       for beat in side_values(p, data)])
        snk.open(X.shape[0] * C)
        t0 = time.perf_counter()
        total = await CycleLoop(dut.clk, [src], [snk]).run()
        wall = time.perf_counter() - t0
        got = np.concatenate([unpack_lanes(w, p.out.width, p.lanes) for w in snk.values])
        want = golden(p, data).ravel()
        per_vec = [snk.cycles[(v + 1) * C - 1] - src.cycles[v * C] + 1 for v in range(len(X))]
        timed = case.get("idle", 0.0) == 0 and case.get("stall", 0.0) == 0
        expected = spec.latency_cycles(p)
        rec = {"name": case["name"], "vectors": len(X), "cycles": per_vec[0],
               "expected_cycles": expected, "sim_cycles": total, "wall_s": wall,
               "bit_exact": bool(np.array_equal(got, want)), "timed": timed,
               "cycles_match": all(c == expected for c in per_vec)}
        if not rec["bit_exact"]:
            bad = np.flatnonzero(got != want)[:5]
            failures.append(f"{case['name']}: codes differ at {bad.tolist()}: rtl "
                            f"{got[bad].tolist()} golden {want[bad].tolist()}")
        if timed and not rec["cycles_match"]:
            failures.append(f"{case['name']}: {per_vec} cycles, formula says {expected}")
        results.append(rec)
    write_result(folder, {"cases": results, "failures": failures})
    assert not failures, "; ".join(failures)
