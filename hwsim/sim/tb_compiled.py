"""cocotb testbench of a compiled design (:mod:`hwsim.compile.backend`; runs inside the
simulator, see :mod:`hwsim.sim.plan`).

Driver: :class:`~hwsim.sim.streams.StreamSource` on ``x`` (the input code tensor in the
design's stream order, ``in_lanes`` codes per beat); monitor:
:class:`~hwsim.sim.streams.StreamSink` on ``y`` (one output code per beat, stream order). The
case's ``X``/``Y`` are already in stream order: the driver permutes a graph's NCHW tensors to
NHWC with :meth:`hwsim.compile.backend.Design.to_stream` (row-major tensors stay as they are).
Model: the lowered graph executed by qonnx with the kernels' golden
functions, run on the host before the simulation (the case's ``Y``). Checker
(:func:`hwsim.sim.checker.check_plan`): every output code ``==`` the golden code and, with no
idle input and no back-pressure, the measured cycles ``==`` the design's composed formula
(:func:`hwsim.compile.backend.schedule`, the case's ``cycles``).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.compile.backend import TopParams
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


def x_words(p: TopParams, codes) -> list[int]:
    """The ``x`` beats: ``in_lanes`` codes per beat, lane 0 lowest."""
    flat = np.asarray(codes, np.int64).ravel() & 0xFF
    return [int(sum(int(c) << (8 * i) for i, c in enumerate(flat[k:k + p.in_lanes])))
            for k in range(0, flat.size, p.in_lanes)]


async def run_case(dut, p: TopParams, a: dict, rng, idle: float, stall: float) -> dict:
    x = StreamSource(dut, "x", rng, idle)
    lanes = getattr(p, "out_lanes", 1)  # output codes per y beat, lane 0 lowest
    y = StreamSink(dut, "y", rng, stall, signed=p.out_signed and lanes == 1)
    x.load(x_words(p, a["X"]))
    y.open(int(np.asarray(a["Y"]).size) // lanes)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [x], [y]).run()
    codes = [(w >> (8 * i)) & 0xFF for w in y.values for i in range(lanes)] if lanes > 1 \
        else y.values
    if lanes > 1 and p.out_signed:
        codes = [c - 256 if c > 127 else c for c in codes]
    return {"outputs": codes, "cycles": y.cycles[-1] - x.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def golden(p: TopParams, a: dict) -> np.ndarray:
    return np.asarray(a["Y"]).ravel()


def expected_cycles(p: TopParams, a: dict) -> int:
    return int(a["cycles"])


@cocotb.test()
async def compiled_design_matches_golden(dut):
    await check_plan(dut, TopParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
