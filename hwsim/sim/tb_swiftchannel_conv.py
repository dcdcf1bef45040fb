"""cocotb testbench of the SwiftChannel conv engine (runs inside the simulator).

Driver :class:`~hwsim.sim.streams.StreamSource` on ``x`` (one pixel per beat), monitor
:class:`~hwsim.sim.streams.StreamSink` on ``y``; model :func:`hwsim.golden.swiftchannel.conv.conv_engine`;
checker :func:`hwsim.sim.checker.check_plan` (every code ``==`` golden; without idle input or
stalls the measured cycles ``==`` :func:`hwsim.golden.swiftchannel.conv.frame_cycles`).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.swiftchannel import conv as spec
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.ConvEngineParams, a: dict, rng, idle, stall) -> dict:
    X = a["X"]
    src = StreamSource(dut, "x", rng, idle)
    snk = StreamSink(dut, "y", rng, stall, signed=False)
    src.load([pack_lanes(X[:, r, c], 8) for r in range(p.height) for c in range(p.width)])
    snk.open(p.pixels * p.groups)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [src], [snk]).run()
    mask = (1 << 8 * p.ocp) - 1
    got = [unpack_lanes(v & mask, 8, p.ocp, signed=False) for v in snk.values]
    return {"outputs": np.asarray(got).ravel().tolist(),
            "cycles": snk.cycles[-1] - src.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


def golden(p: spec.ConvEngineParams, a: dict):
    return spec.conv_engine(a["X"], p)


def expected_cycles(p: spec.ConvEngineParams, a: dict) -> int:
    return spec.frame_cycles(p)


@cocotb.test()
async def swiftchannel_conv_matches_golden(dut):
    await check_plan(dut, spec.ConvEngineParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
