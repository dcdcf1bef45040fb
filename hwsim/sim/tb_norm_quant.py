"""cocotb testbench of the norm unit (RMSNorm with integer ε + activation quantizer).

Driver on ``inp`` (with each vector's ``E`` on ``e`` while it loads), monitor on ``y`` (int8 codes and the
vector's amax unpacked); model :func:`hwsim.golden.vitallm.norm_quant.norm_quant`; checker
:func:`hwsim.sim.checker.check_plan` (codes and amax ``==`` golden, cycles ``==``
:func:`hwsim.golden.vitallm.norm_quant.stream_cycles`).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.vitallm import norm_quant as spec
from hwsim.kernels.norm_quant import golden_words, in_words, out_words, side_values
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.NormQuantParams, a: dict, rng, idle, stall) -> dict:
    X = np.atleast_2d(a["X"])
    src = StreamSource(dut, "inp", rng, idle)
    snk = StreamSink(dut, "y", rng, stall, signed=False)
    src.load(in_words(X, a["g"], a["shift"], p),
             side=[tuple((getattr(dut, name), v) for name, v in beat)
                   for beat in side_values(p, a)])
    snk.open(X.shape[0] * p.chunks)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [src], [snk]).run()
    codes, amax = out_words(snk.values, p)
    per_vec = amax.reshape(X.shape[0], p.chunks)
    # every beat of a vector carries its amax: one flag word, 0 when they agree
    same = bool(np.all(per_vec == per_vec[:, :1]))
    return {"outputs": [*codes.tolist(), *per_vec[:, 0].tolist(), int(not same)],
            "cycles": snk.cycles[-1] - src.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


def golden(p: spec.NormQuantParams, a: dict):
    return [*golden_words(p, a).tolist(), 0]


def expected_cycles(p: spec.NormQuantParams, a: dict) -> int:
    return spec.stream_cycles(p, np.atleast_2d(a["X"]).shape[0])


@cocotb.test()
async def norm_quant_matches_golden(dut):
    await check_plan(dut, spec.NormQuantParams, run_case, golden, expected_cycles,
                     inputs=("inp",), outputs=("y",))
