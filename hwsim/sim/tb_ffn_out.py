"""cocotb testbench of the output half of a layer's FFN (:class:`rtl.vitallm.ffn_out.FfnOut`).

Drivers on ``w`` (``w2``'s weight words), ``p`` (the ``prod`` codes with the FFN amax) then
``x`` (the residual codes ``x_attn``), static ports set per case; monitor on ``y``; model
:func:`hwsim.golden.vitallm.ffn_out.ffn_out`; checker :func:`hwsim.sim.checker.check_plan` (residual
codes ``==``, cycles from the first ``p`` beat ``==`` :func:`hwsim.golden.vitallm.ffn_out.
latency_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.vitallm import ffn_out as spec
from hwsim.kernels import ffn_out as kf
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.FfnOutParams, a: dict, rng, idle, stall) -> dict:
    for name, value in kf.port_values(a, p).items():
        getattr(dut, name).value = value
    ws = StreamSource(dut, "w", rng, 0.0)
    ps = StreamSource(dut, "p", rng, idle)
    xs = StreamSource(dut, "x", rng, idle)
    ys = StreamSink(dut, "y", rng, stall, signed=True)
    ws.load(kf.w_words(a, p))
    ps.load(kf.p_words(a, p))
    xs.load(kf.x_words(a, p))
    ys.open(p.hidden)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [ws, ps, xs], [ys]).run()
    return {"outputs": list(ys.values), "cycles": ys.cycles[-1] - ps.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.FfnOutParams, a: dict) -> int:
    return spec.latency_cycles(p)


@cocotb.test()
async def ffn_out_matches_golden(dut):
    await check_plan(dut, spec.FfnOutParams, run_case, kf.golden_words, expected_cycles,
                     inputs=("w", "p", "x"), outputs=("y",))
