"""cocotb testbench of the absmax re-quantization barrier.

Driver on ``a``, monitor on ``y`` (``q`` and ``absmax`` fields unpacked); model
:func:`hwsim.golden.vitallm.absmax_barrier.absmax_barrier`; checker :func:`hwsim.sim.checker.check_plan`
(codes and per-token absmax ``==`` golden, cycles ``==`` formula).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.vitallm import absmax_barrier as spec
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


def unpack(word: int, p: spec.AbsmaxBarrierParams) -> tuple[int, int]:
    """A ``y`` payload → (q, absmax); ``q`` in the low ``out.width`` bits."""
    w = p.out.width
    q = word & ((1 << w) - 1)
    return q - (1 << w) if q >> (w - 1) else q, word >> w


async def run_case(dut, p: spec.AbsmaxBarrierParams, a: dict, rng, idle, stall) -> dict:
    src = StreamSource(dut, "a", rng, idle)
    snk = StreamSink(dut, "y", rng, stall, signed=False)
    A = np.atleast_2d(a["A"])
    src.load(A.ravel().tolist())
    snk.open(A.size)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [src], [snk]).run()
    pairs = [unpack(v, p) for v in snk.values]
    # interleave: codes first, then each token's absmax — one flat integer list to compare
    codes = [q for q, _ in pairs]
    scales = [pairs[t * p.length][1] for t in range(A.shape[0])]
    same_scale = all(pairs[t * p.length + i][1] == scales[t]
                     for t in range(A.shape[0]) for i in range(p.length))
    return {"outputs": codes + scales + [int(not same_scale)],
            "cycles": snk.cycles[-1] - src.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


def golden(p: spec.AbsmaxBarrierParams, a: dict):
    q, m = spec.absmax_barrier(np.atleast_2d(a["A"]), p)
    return [*q.ravel().tolist(), *m.ravel().tolist(), 0]


def expected_cycles(p: spec.AbsmaxBarrierParams, a: dict) -> int:
    return spec.stream_cycles(p, np.atleast_2d(a["A"]).shape[0])


@cocotb.test()
async def absmax_barrier_matches_golden(dut):
    await check_plan(dut, spec.AbsmaxBarrierParams, run_case, golden, expected_cycles,
                     inputs=("a",), outputs=("y",))
