"""cocotb testbench of the max-pooling unit (runs inside the simulator; see
:mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``x`` (NHWC pixels),
:class:`~hwsim.sim.streams.StreamSink` on ``y`` (each beat unpacked into its ``lanes``
codes). Model: :func:`hwsim.golden.common.maxpool.maxpool`. Checker
(:func:`hwsim.sim.checker.check_plan`): every pooled code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.maxpool.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.common import maxpool as spec
from hwsim.kernels.maxpool import expected_cycles, golden, x_words, y_beats, y_codes
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.MaxPoolParams, a: dict, rng, idle: float,
                   stall: float) -> dict:
    x = StreamSource(dut, "x", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=False)
    x.load(x_words(p, a))
    y.open(y_beats(p, a))
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [x], [y]).run()
    return {"outputs": y_codes(p, y.values), "cycles": y.cycles[-1] - x.cycles[0] + 1,
            "output_cycles": [c - x.cycles[0] for c in y.cycles],
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def maxpool_matches_golden(dut):
    await check_plan(dut, spec.MaxPoolParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
