"""cocotb testbench of the element-wise unit (runs inside the simulator; see
:mod:`hwsim.sim.plan`).

Driver/monitor: two :class:`~hwsim.sim.streams.StreamSource` s on ``a`` and ``b`` presenting
at once, each with its own random idle cycles (the streams arrive unequally),
:class:`~hwsim.sim.streams.StreamSink` on ``y``. Model:
:func:`hwsim.golden.common.eltwise.eltwise` on the whole case. Checker
(:func:`hwsim.sim.checker.check_plan`): every output code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.eltwise.stream_cycles`; each ``y`` beat's cycle minus its pair's
acceptance cycle is recorded (``latencies``).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common import eltwise as spec
from hwsim.golden.common.lanes import unpack_lanes
from hwsim.kernels.eltwise import golden, words
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.EltwiseParams, arr: dict, rng, idle: float, stall: float) -> dict:
    a = StreamSource(dut, "a", rng, idle)
    b = StreamSource(dut, "b", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=False)
    a.load(words(arr["A"], p.lanes))
    b.load(words(arr["B"], p.lanes))
    y.open(len(a.payloads))
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [a, b], [y], together=True).run()
    codes = [unpack_lanes(v, 8, p.lanes, p.out.signed) for v in y.values]
    return {"outputs": np.concatenate(codes).tolist(),
            "cycles": y.cycles[-1] - a.cycles[0] + 1,
            "a_equals_b_cycles": a.cycles == b.cycles,
            "latencies": [yc - ac for yc, ac in zip(y.cycles, a.cycles, strict=True)],
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.EltwiseParams, arr: dict) -> int:
    return spec.stream_cycles(p, int(np.asarray(arr["A"]).size // p.lanes))


@cocotb.test()
async def eltwise_matches_golden(dut):
    await check_plan(dut, spec.EltwiseParams, run_case, golden, expected_cycles,
                     inputs=("a", "b"), outputs=("y",))
