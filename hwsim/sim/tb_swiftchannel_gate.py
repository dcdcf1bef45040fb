"""cocotb testbench of the SwiftChannel SPAB gating unit (runs inside the simulator).

Driver :class:`~hwsim.sim.streams.StreamSource` on ``x`` (``lanes`` x codes and ``lanes`` C
codes per beat), monitor :class:`~hwsim.sim.streams.StreamSink` on ``y``; model
:func:`hwsim.golden.swiftchannel.gate.gate`; checker :func:`hwsim.sim.checker.check_plan`
(``==`` on every code, and without idle input or stalls cycles ``==``
:func:`hwsim.golden.swiftchannel.gate.stream_cycles`).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.swiftchannel import gate as spec
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.GateParams, a: dict, rng, idle, stall) -> dict:
    X, C, L = a["X"], a["C"], p.lanes
    n = len(X) // L
    src = StreamSource(dut, "x", rng, idle)
    snk = StreamSink(dut, "y", rng, stall, signed=False)
    src.load([pack_lanes(X[i * L:(i + 1) * L], 8) | pack_lanes(C[i * L:(i + 1) * L], 8) << (8 * L)
              for i in range(n)])
    snk.open(n)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [src], [snk]).run()
    got = np.concatenate([unpack_lanes(v, 8, L, signed=False) for v in snk.values])
    return {"outputs": got.tolist(), "cycles": snk.cycles[-1] - src.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def golden(p: spec.GateParams, a: dict):
    return spec.gate(a["X"], a["C"], p)


def expected_cycles(p: spec.GateParams, a: dict) -> int:
    return spec.stream_cycles(p, len(a["X"]) // p.lanes)


@cocotb.test()
async def swiftchannel_gate_matches_golden(dut):
    await check_plan(dut, spec.GateParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
