"""cocotb testbench of the LUT nonlinearity (runs inside the simulator; see
:mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``x``,
:class:`~hwsim.sim.streams.StreamSink` on ``y`` (each beat unpacked into its ``lanes`` codes).
Model: :func:`hwsim.golden.common.lut_act.lut_act`. Checker
(:func:`hwsim.sim.checker.check_plan`): every output code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.lut_act.stream_cycles`.
"""

from __future__ import annotations

import cocotb

from hwsim.golden.common import lut_act as spec
from hwsim.kernels.lut_act import expected_cycles, golden, x_words, y_codes
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import run_x_to_y


async def run_case(dut, p: spec.LutActParams, a: dict, rng, idle: float, stall: float) -> dict:
    words = x_words(p, a)
    return await run_x_to_y(dut, rng, idle, stall, words, len(words),
                            lambda values: y_codes(p, values))


@cocotb.test()
async def lut_act_matches_golden(dut):
    await check_plan(dut, spec.LutActParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
