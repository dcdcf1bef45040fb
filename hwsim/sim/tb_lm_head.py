"""cocotb testbench of the end of a decode step (:class:`rtl.vitallm.lm_head.LmHead`).

Driver on ``w`` (the head's weight words) then ``x`` (the token's residual row), static ports
set per case; monitor on ``y`` (``{token, logit}``); model :func:`hwsim.golden.vitallm.lm_head.
lm_head`; checker :func:`hwsim.sim.checker.check_plan` (token and logit ``==``, cycles from the
first ``x`` beat to the ``y`` beat ``==`` :func:`hwsim.golden.vitallm.lm_head.latency_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.vitallm import lm_head as spec
from hwsim.kernels import lm_head as kl
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.LmHeadParams, a: dict, rng, idle, stall) -> dict:
    for name, value in kl.port_values(a, p).items():
        getattr(dut, name).value = value
    w = StreamSource(dut, "w", rng, 0.0)
    xs = StreamSource(dut, "x", rng, idle)
    ys = StreamSink(dut, "y", rng, stall, signed=False)
    w.load(kl.w_words(a, p))
    xs.load(kl.x_words(a, p))
    ys.open(1)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [w, xs], [ys]).run()
    return {"outputs": list(kl.y_fields(ys.values[0], p)),
            "cycles": ys.cycles[-1] - xs.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.LmHeadParams, a: dict) -> int:
    return spec.latency_cycles(p)


@cocotb.test()
async def lm_head_matches_golden(dut):
    await check_plan(dut, spec.LmHeadParams, run_case, kl.golden_words, expected_cycles,
                     inputs=("w", "x"), outputs=("y",))
