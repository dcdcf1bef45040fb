"""cocotb testbench of the multi-threshold unit (runs inside the simulator; see
:mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``x``,
:class:`~hwsim.sim.streams.StreamSink` on ``y`` (each beat unpacked into its ``lanes`` codes).
Model: :func:`hwsim.golden.common.threshold.threshold`. Checker
(:func:`hwsim.sim.checker.check_plan`): every output code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.threshold.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.common import threshold as spec
from hwsim.kernels.threshold import expected_cycles, golden, x_words, y_codes
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.ThresholdParams, a: dict, rng, idle: float, stall: float) -> dict:
    x = StreamSource(dut, "x", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=False)
    words = x_words(p, a)
    x.load(words)
    y.open(len(words))
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [x], [y]).run()
    return {"outputs": y_codes(p, y.values), "cycles": y.cycles[-1] - x.cycles[0] + 1,
            "output_cycles": [c - x.cycles[0] for c in y.cycles],
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def threshold_matches_golden(dut):
    await check_plan(dut, spec.ThresholdParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
