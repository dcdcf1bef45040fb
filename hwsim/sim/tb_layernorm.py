"""cocotb testbench of the integer LayerNorm (runs inside the simulator; see
:mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``x``,
:class:`~hwsim.sim.streams.StreamSink` on ``y``. Model:
:func:`hwsim.golden.common.layernorm_int.layernorm_int` on every vector of the case. Checker
(:func:`hwsim.sim.checker.check_plan`): every output code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.layernorm_int.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common import layernorm_int as spec
from hwsim.golden.common.lanes import unpack_lanes
from hwsim.kernels.layernorm import golden, words
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.LayerNormParams, arr: dict, rng, idle: float,
                   stall: float) -> dict:
    x = StreamSource(dut, "x", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=False)
    x.load(words(arr["X"], p.lanes))
    y.open(len(x.payloads))
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [x], [y]).run()
    codes = [unpack_lanes(v, 8, p.lanes, p.out.signed) for v in y.values]
    return {"outputs": np.concatenate(codes).tolist(),
            "cycles": y.cycles[-1] - x.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.LayerNormParams, arr: dict) -> int:
    return spec.stream_cycles(p, np.atleast_2d(arr["X"]).shape[0])


@cocotb.test()
async def layernorm_matches_golden(dut):
    await check_plan(dut, spec.LayerNormParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
