"""cocotb testbench of the rotary position embedding unit (runs inside the simulator; see
:mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``x`` (one int8 code per beat,
token-major), :class:`~hwsim.sim.streams.StreamSink` on ``y``. Model:
:func:`hwsim.golden.common.rope.rope`. Checker (:func:`hwsim.sim.checker.check_plan`): every
code ``==`` the golden code and, with no idle input and no back-pressure, the measured cycles
``==`` :func:`hwsim.golden.common.rope.stream_cycles`.
"""

from __future__ import annotations

import cocotb

from hwsim.golden.common import rope as spec
from hwsim.kernels.rope import expected_cycles, golden, x_words, y_beats, y_codes
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import run_x_to_y


async def run_case(dut, p: spec.RopeParams, a: dict, rng, idle: float, stall: float) -> dict:
    return await run_x_to_y(dut, rng, idle, stall, x_words(p, a), y_beats(p, a),
                            lambda values: y_codes(p, values))


@cocotb.test()
async def rope_matches_golden(dut):
    await check_plan(dut, spec.RopeParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
