"""cocotb testbench of the TINT → Booth front end (:class:`rtl.qkv_frontend.QkvFrontend`).

Drivers on ``w`` (the three weight matrices) then ``x`` (the activation vector), the static
ports ``amax``, ``cos``, ``sin``, ``mults`` set per case; monitor on ``out``; model
:func:`hwsim.golden.qkv_frontend.qkv_codes`; checker :func:`hwsim.sim.checker.check_plan`
(codes ``==``, cycles from the first ``x`` beat ``==``
:func:`hwsim.golden.qkv_frontend.qkv_frontend_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden import qkv_frontend as spec
from hwsim.kernels.qkv_frontend import golden_codes, port_values, w_words, x_words
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.QkvFrontendParams, a: dict, rng, idle, stall) -> dict:
    for name, value in port_values(a, p).items():
        getattr(dut, name).value = value
    ws = StreamSource(dut, "w", rng, 0.0)
    xs = StreamSource(dut, "x", rng, idle)
    out = StreamSink(dut, "out", rng, stall, signed=True)
    ws.load(w_words(a, p))
    xs.load(x_words(a, p))
    out.open(p.elements)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [ws, xs], [out]).run()
    return {"outputs": out.values, "cycles": out.cycles[-1] - xs.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.QkvFrontendParams, a: dict) -> int:
    return spec.qkv_frontend_cycles(p)


@cocotb.test()
async def qkv_frontend_matches_golden(dut):
    await check_plan(dut, spec.QkvFrontendParams, run_case, golden_codes, expected_cycles,
                     inputs=("w", "x"), outputs=("out",))
