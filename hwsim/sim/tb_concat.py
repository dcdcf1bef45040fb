"""cocotb testbench of the concatenation unit (runs inside the simulator; see
:mod:`hwsim.sim.plan`).

Driver/monitor: two :class:`~hwsim.sim.streams.StreamSource` s on ``a`` and ``b`` presenting
at once, each with its own random idle cycles (a ``b`` beat is often offered long before the
unit takes it), :class:`~hwsim.sim.streams.StreamSink` on ``y``. Model:
:func:`hwsim.golden.common.concat.concat` on the whole case. Checker
(:func:`hwsim.sim.checker.check_plan`): every output code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.concat.stream_cycles`; each ``y`` beat's cycle minus its input
beat's acceptance cycle is recorded (``latencies``).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common import concat as spec
from hwsim.golden.common.lanes import unpack_lanes
from hwsim.kernels.concat import golden, vectors_of
from hwsim.kernels.eltwise import words
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


def taken_order(p: spec.ConcatParams, a_cycles: list, b_cycles: list) -> list:
    """The acceptance cycles of the input beats in output order (per vector ``a``'s, then
    ``b``'s)."""
    out = []
    for v in range(len(a_cycles) // p.beats_a):
        out += a_cycles[v * p.beats_a:(v + 1) * p.beats_a]
        out += b_cycles[v * p.beats_b:(v + 1) * p.beats_b]
    return out


async def run_case(dut, p: spec.ConcatParams, arr: dict, rng, idle: float, stall: float) -> dict:
    a = StreamSource(dut, "a", rng, idle)
    b = StreamSource(dut, "b", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=False)
    a.load(words(arr["A"], p.lanes))
    b.load(words(arr["B"], p.lanes))
    y.open(len(a.payloads) + len(b.payloads))
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [a, b], [y], together=True).run()
    codes = [unpack_lanes(v, 8, p.lanes, p.signed) for v in y.values]
    order = taken_order(p, a.cycles, b.cycles)
    return {"outputs": np.concatenate(codes).tolist(),
            "cycles": y.cycles[-1] - a.cycles[0] + 1,
            "latencies": [yc - ic for yc, ic in zip(y.cycles, order, strict=True)],
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.ConcatParams, arr: dict) -> int:
    return spec.stream_cycles(p, vectors_of(p, arr))


@cocotb.test()
async def concat_matches_golden(dut):
    await check_plan(dut, spec.ConcatParams, run_case, golden, expected_cycles,
                     inputs=("a", "b"), outputs=("y",))
