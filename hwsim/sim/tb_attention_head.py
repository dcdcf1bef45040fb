"""cocotb testbench of the attention head (runs inside the simulator; see :mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``inp`` (the operation stream of
:func:`hwsim.golden.common.attention_head.op_words`), :class:`~hwsim.sim.streams.StreamSink` on ``out``.
Model: :func:`hwsim.golden.common.attention_head.run_ops`, query by query (a case's ``mult``/``shift``
are one score scale or one per query, driven with that query's beats). Checker: every output code and every
``amax`` ``==`` golden, and with no idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.attention_head.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np
from cocotb.clock import Clock

from hwsim.golden.common import attention_head as spec
from hwsim.kernels.attention_head import arrays_to_ops, golden, side_values
from hwsim.sim.plan import decode_params, load_case, load_plan, write_result
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource, reset


class AttentionHeadBench:
    """Wires driver, monitor, model and checker for one DUT."""

    def __init__(self, dut, params: spec.AttentionParams, rng, idle: float, stall: float):
        self.dut, self.p = dut, params
        self.inp = StreamSource(dut, "inp", rng, idle)
        self.out = StreamSink(dut, "out", rng, stall, signed=False)

    async def run_case(self, ops, data: dict) -> dict:
        self.inp.load(spec.op_words(ops, self.p),
                      side=[tuple((getattr(self.dut, name), v) for name, v in beat)
                            for beat in side_values(data, self.p)])
        nq = sum(op[0] == "q" for op in ops)
        self.out.open(nq * self.p.chunks)
        t0 = time.perf_counter()
        total = await CycleLoop(self.dut.clk, [self.inp], [self.out]).run()
        wall = time.perf_counter() - t0
        # per query: from its first q beat to its last output beat; a decode step: from the
        # first beat of the kv operation just before the last query
        C = self.p.chunks
        first, beat = [], 0
        for op in ops:
            first.append(beat)
            beat += 1 if op[0] == "clear" else C
        queries = [n for n, op in enumerate(ops) if op[0] == "q"]
        ends = [self.out.cycles[(k + 1) * C - 1] for k in range(len(queries))]
        per_query = [end - self.inp.cycles[first[n]] + 1
                     for n, end in zip(queries, ends, strict=True)]
        last = queries[-1]
        decode = (ends[-1] - self.inp.cycles[first[last - 1]] + 1
                  if last and ops[last - 1][0] == "kv" else None)
        return {"outputs": spec.out_results(self.out.values, self.p),
                "cycles": self.out.cycles[-1] - self.inp.cycles[0] + 1,
                "query_cycles": per_query, "decode_cycles": decode,
                "sim_cycles": total, "wall_s": wall}


@cocotb.test()
async def attention_head_matches_golden(dut):
    plan, folder = load_plan()
    p = decode_params(spec.AttentionParams, plan["params"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.inp__valid.value = 0
    dut.out__ready.value = 0
    await reset(dut, dut.clk)

    results, failures = [], []
    for case in plan["cases"]:
        data = load_case(folder, case)
        ops = arrays_to_ops(data)
        rng = np.random.default_rng(case.get("seed", 0))
        bench = AttentionHeadBench(dut, p, rng, case.get("idle", 0.0), case.get("stall", 0.0))
        got = await bench.run_case(ops, data)
        want = golden(p, data)
        exact = len(got["outputs"]) == len(want) and all(
            np.array_equal(g[0], w[0]) and g[1] == w[1]
            for g, w in zip(got["outputs"], want, strict=True))
        expected = spec.stream_cycles(p, ops)
        lengths = spec.query_lengths(ops, p)
        expected_q = [spec.query_cycles(p, n) for n in lengths]
        timed = case.get("idle", 0.0) == 0 and case.get("stall", 0.0) == 0
        record = {"name": case["name"], "queries": len(want), "cycles": got["cycles"],
                  "expected_cycles": expected, "sim_cycles": got["sim_cycles"],
                  "wall_s": got["wall_s"], "bit_exact": exact, "timed": timed,
                  "query_lengths": lengths, "query_cycles": got["query_cycles"],
                  "expected_query_cycles": expected_q, "decode_cycles": got["decode_cycles"],
                  "cycles_match": got["cycles"] == expected
                  and got["query_cycles"] == expected_q}
        if not exact:
            bad = next(n for n, (g, w) in enumerate(zip(got["outputs"], want, strict=False))
                       if not (np.array_equal(g[0], w[0]) and g[1] == w[1]))
            failures.append(f"{case['name']}: query {bad} differs: rtl "
                            f"{got['outputs'][bad][0].tolist()} amax {got['outputs'][bad][1]}, "
                            f"golden {want[bad][0].tolist()} amax {want[bad][1]}")
        if timed and got["cycles"] != expected:
            failures.append(f"{case['name']}: {got['cycles']} cycles, formula says {expected}")
        if timed and got["query_cycles"] != expected_q:
            bad = next(n for n, (a, b) in enumerate(zip(got["query_cycles"], expected_q,
                                                        strict=True)) if a != b)
            failures.append(f"{case['name']}: query {bad} (length {lengths[bad]}) took "
                            f"{got['query_cycles'][bad]} cycles, formula says {expected_q[bad]}")
        results.append(record)
    write_result(folder, {"cases": results, "failures": failures})
    assert not failures, "; ".join(failures)
