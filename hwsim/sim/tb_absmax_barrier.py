"""cocotb testbench of the absmax re-quantization barrier.

Driver on ``a`` (``lanes`` codes per beat), monitor on ``y`` (``q`` lanes and ``absmax``
unpacked); model :func:`hwsim.golden.vitallm.absmax_barrier.absmax_barrier`; checker
:func:`hwsim.sim.checker.check_plan` (codes and per-token absmax ``==`` golden, cycles ``==``
formula).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.vitallm import absmax_barrier as spec
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


def unpack(word: int, p: spec.AbsmaxBarrierParams) -> tuple[list[int], int]:
    """A ``y`` payload → (q codes of its ``lanes``, absmax); the codes in the low
    ``lanes · out.width`` bits, lane 0 lowest."""
    w = p.out.width * p.lanes
    return unpack_lanes(word & ((1 << w) - 1), p.out.width, p.lanes).tolist(), word >> w


async def run_case(dut, p: spec.AbsmaxBarrierParams, a: dict, rng, idle, stall) -> dict:
    src = StreamSource(dut, "a", rng, idle)
    snk = StreamSink(dut, "y", rng, stall, signed=False)
    A = np.atleast_2d(a["A"])
    src.load([pack_lanes(beat, p.in_width) for beat in A.reshape(-1, p.lanes)])
    snk.open(A.size // p.lanes)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [src], [snk]).run()
    pairs = [unpack(v, p) for v in snk.values]
    # interleave: codes first, then each token's absmax — one flat integer list to compare
    codes = [c for q, _ in pairs for c in q]
    scales = [pairs[t * p.chunks][1] for t in range(A.shape[0])]
    same_scale = all(pairs[t * p.chunks + i][1] == scales[t]
                     for t in range(A.shape[0]) for i in range(p.chunks))
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
