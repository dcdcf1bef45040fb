"""cocotb testbench of the sliding-window unit (runs inside the simulator; see
:mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``x`` (NHWC pixels),
:class:`~hwsim.sim.streams.StreamSink` on ``y`` (each beat unpacked into its ``lanes``
codes). Model: :func:`hwsim.golden.common.conv_window.conv_window`. Checker
(:func:`hwsim.sim.checker.check_plan`): every window code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.conv_window.stream_cycles`.
"""

from __future__ import annotations

import cocotb

from hwsim.golden.common import conv_window as spec
from hwsim.kernels.conv_window import expected_cycles, golden, images, x_words, y_codes
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import run_x_to_y


async def run_case(dut, p: spec.ConvWindowParams, a: dict, rng, idle: float, stall: float) -> dict:
    beats = images(p, a).shape[0] * p.out_height * p.out_width * p.vector_beats
    return await run_x_to_y(dut, rng, idle, stall, x_words(p, a), beats,
                            lambda values: y_codes(p, values))


@cocotb.test()
async def conv_window_matches_golden(dut):
    await check_plan(dut, spec.ConvWindowParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
