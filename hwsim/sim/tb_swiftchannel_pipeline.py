"""cocotb testbench of the composed SwiftChannel pipeline (runs inside the simulator).

Driver :class:`~hwsim.sim.streams.StreamSource` on ``x`` (one input pixel per beat), monitor
:class:`~hwsim.sim.streams.StreamSink` on ``y`` (one up-conv pixel per beat); model
:func:`hwsim.golden.swiftchannel.pipeline.pipeline`; checker
:func:`hwsim.sim.checker.check_plan` (every code ``==`` golden; without idle input or stalls
the measured cycles ``==`` :func:`hwsim.golden.swiftchannel.pipeline.frame_cycles`).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.swiftchannel import pipeline as spec
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.PipelineParams, a: dict, rng, idle, stall) -> dict:
    X = a["X"]
    src = StreamSource(dut, "x", rng, idle)
    snk = StreamSink(dut, "y", rng, stall, signed=False)
    src.load([pack_lanes(X[:, r, c], 8) for r in range(p.height) for c in range(p.width)])
    snk.open(p.pixels)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [src], [snk]).run()
    mask = (1 << 8 * p.out_ch) - 1
    got = [unpack_lanes(v & mask, 8, p.out_ch, signed=False) for v in snk.values]
    return {"outputs": np.asarray(got).ravel().tolist(),
            "cycles": snk.cycles[-1] - src.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


def golden(p: spec.PipelineParams, a: dict):
    return spec.pipeline(a["X"], p)


def expected_cycles(p: spec.PipelineParams, a: dict) -> int:
    return spec.frame_cycles(p)


@cocotb.test()
async def swiftchannel_pipeline_matches_golden(dut):
    await check_plan(dut, spec.PipelineParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
