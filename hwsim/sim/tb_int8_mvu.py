"""cocotb testbench of the int8 MVU (runs inside the simulator; see :mod:`hwsim.sim.plan`).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``w``, ``b`` (where the kernel has
a bias), ``s`` (where it has per-row scales) and ``x``, :class:`~hwsim.sim.streams.StreamSink`
on ``y``. Model:
:func:`hwsim.golden.common.int8_mvu.int8_mvu`, vector by vector (a case's ``mult``/``shift`` are
one value or one per vector, driven with that vector's first ``x`` beat). Checker
(:func:`hwsim.sim.checker.check_plan`): every output code ``==`` the golden code, and with no
idle input and no back-pressure the measured cycles ``==``
:func:`hwsim.golden.common.int8_mvu.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common import int8_mvu as spec
from hwsim.kernels.int8_mvu import golden, side_values, x_words
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.Int8MvuParams, a: dict, rng, idle: float, stall: float) -> dict:
    w = StreamSource(dut, "w", rng, idle)
    sources = [w]
    if p.bias:
        b = StreamSource(dut, "b", rng, idle)
        b.load(spec.bias_words(a["B"]))
        sources.append(b)
    if p.per_row_scale:
        s = StreamSource(dut, "s", rng, idle)
        s.load(spec.scale_words(p, a["mult"], a["shift"]))
        sources.append(s)
    x = StreamSource(dut, "x", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=p.out.signed)
    X = np.atleast_2d(a["X"])
    w.load(spec.weight_words(a["W"], p.lanes))
    x.load(x_words(p, a), side=[tuple((getattr(dut, name), v) for name, v in beat)
                                for beat in side_values(p, a)])
    sources.append(x)
    y.open(X.shape[0] * p.rows)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, sources, [y]).run()
    return {"outputs": y.values, "cycles": y.cycles[-1] - x.cycles[0] + 1,
            "output_cycles": [c - x.cycles[0] for c in y.cycles],
            "weight_load_cycles": w.cycles[-1] - w.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.Int8MvuParams, a: dict) -> int:
    return spec.stream_cycles(p, np.atleast_2d(a["X"]).shape[0])


@cocotb.test()
async def int8_mvu_matches_golden(dut):
    inputs = ("w", *(n for n in ("b", "s") if hasattr(dut, f"{n}__valid")), "x")
    await check_plan(dut, spec.Int8MvuParams, run_case, golden, expected_cycles,
                     inputs=inputs, outputs=("y",))
