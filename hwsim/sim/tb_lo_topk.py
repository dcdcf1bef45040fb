"""cocotb testbench of the leading-one surrogate + comparison-free top-K selector.

Drivers on ``q`` (one beat) and ``k`` (``M`` beats); monitor on ``sel`` (the ``M``-bit mask);
model :func:`hwsim.golden.vitallm.lo_topk.topk_radix` of :func:`hwsim.golden.vitallm.lo_topk.lo_scores`;
checker :func:`hwsim.sim.checker.check_plan` (mask bits ``==``, cycles ``==`` formula).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import lo_topk as spec
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.LoTopKParams, a: dict, rng, idle, stall) -> dict:
    dut.length.value = p.tokens          # every query sees the M key rows the golden scores
    qs = StreamSource(dut, "q", rng, idle)
    ks = StreamSource(dut, "k", rng, idle)
    out = StreamSink(dut, "sel", rng, stall, signed=False)
    Q = np.atleast_2d(a["Q"])
    masks, cycles, total, t0 = [], 0, 0, time.perf_counter()
    for q in Q:  # one query after another against the same keys
        qs.load([pack_lanes(q, 8)])
        ks.load([pack_lanes(row, 8) for row in a["K"]])
        out.open(1)
        total += await CycleLoop(dut.clk, [qs, ks], [out]).run()
        masks += [(out.values[0] >> j) & 1 for j in range(p.tokens)]
        cycles += out.cycles[0] - qs.cycles[0] + 1
    return {"outputs": masks, "cycles": cycles, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


def golden(p: spec.LoTopKParams, a: dict):
    return np.concatenate([spec.topk_radix(spec.lo_scores(q, a["K"]), p.keep, p.score_width)
                           for q in np.atleast_2d(a["Q"])]).astype(np.int64)


def expected_cycles(p: spec.LoTopKParams, a: dict) -> int:
    return np.atleast_2d(a["Q"]).shape[0] * spec.latency_cycles(p)


@cocotb.test()
async def lo_topk_matches_golden(dut):
    await check_plan(dut, spec.LoTopKParams, run_case, golden, expected_cycles,
                     inputs=("q", "k"), outputs=("sel",))
