"""cocotb testbench of the attention output path of a decode step (:class:`rtl.vitallm.attn_out.
AttnOut`).

Drivers on ``w`` (``wo``'s weight words), ``o`` (the heads' output beats) then ``x`` (the
residual codes), static ports set per case; monitor on ``y``; model
:func:`hwsim.golden.vitallm.attn_out.attn_out`; checker :func:`hwsim.sim.checker.check_plan` (residual
codes ``==``, cycles from the first ``o`` beat ``==``
:func:`hwsim.golden.vitallm.attn_out.latency_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.vitallm import attn_out as spec
from hwsim.kernels.attn_out import golden_words, o_words, port_values, w_words, x_words
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.AttnOutParams, a: dict, rng, idle, stall) -> dict:
    for name, value in port_values(a, p).items():
        getattr(dut, name).value = value
    ws = StreamSource(dut, "w", rng, 0.0)
    os_ = StreamSource(dut, "o", rng, idle)
    xs = StreamSource(dut, "x", rng, idle)
    ys = StreamSink(dut, "y", rng, stall, signed=True)
    ws.load(w_words(a, p))
    os_.load(o_words(a, p))
    xs.load(x_words(a, p))
    ys.open(p.hidden)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [ws, os_, xs], [ys]).run()
    return {"outputs": list(ys.values), "cycles": ys.cycles[-1] - os_.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.AttnOutParams, a: dict) -> int:
    return spec.latency_cycles(p)


@cocotb.test()
async def attn_out_matches_golden(dut):
    await check_plan(dut, spec.AttnOutParams, run_case, golden_words, expected_cycles,
                     inputs=("w", "o", "x"), outputs=("y",))
