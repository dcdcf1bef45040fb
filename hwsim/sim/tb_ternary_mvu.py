"""cocotb testbench of the ternary MVU (runs inside the simulator; see :mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``w`` and ``x``,
:class:`~hwsim.sim.streams.StreamSink` on ``y``. Model:
:func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu`, vector by vector (a case's ``mult``/``shift`` are
one value or one per vector, driven with that vector's first ``x`` beat). Checker
(:func:`hwsim.sim.checker.check_plan`): every output code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.vitallm.ternary_mvu.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import ternary_mvu as spec
from hwsim.kernels.ternary_mvu import golden, side_values
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.TernaryMvuParams, a: dict, rng, idle: float, stall: float) -> dict:
    w = StreamSource(dut, "w", rng, idle)
    x = StreamSource(dut, "x", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=p.out.signed)
    X = np.atleast_2d(a["X"])
    w.load(spec.weight_words(a["W"], p.lanes))
    x.load([pack_lanes(v[k * p.lanes:(k + 1) * p.lanes], p.act.width)
            for v in X for k in range(p.chunks)],
           side=[tuple((getattr(dut, name), v) for name, v in beat)
                 for beat in side_values(p, a)])
    y.open(X.shape[0] * p.rows)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [w, x], [y]).run()
    return {"outputs": y.values, "cycles": y.cycles[-1] - x.cycles[0] + 1,
            "output_cycles": [c - x.cycles[0] for c in y.cycles],
            "weight_load_cycles": w.cycles[-1] - w.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.TernaryMvuParams, a: dict) -> int:
    return spec.stream_cycles(p, np.atleast_2d(a["X"]).shape[0])


@cocotb.test()
async def ternary_mvu_matches_golden(dut):
    await check_plan(dut, spec.TernaryMvuParams, run_case, golden, expected_cycles,
                     inputs=("w", "x"), outputs=("y",))
