"""cocotb testbench of the TINT → Booth front end (:class:`rtl.vitallm.qkv_frontend.QkvFrontend`).

Drivers on ``w`` (the three weight matrices) then ``x`` (the case's tokens back to back, each
token's ``amax``, ``cos``, ``sin``, ``mults`` driven with its first ``x`` beat, where the RTL
samples them, and something else on the other beats:
:func:`hwsim.kernels.qkv_frontend.side_values`); monitor on ``out``; model
:func:`hwsim.golden.vitallm.qkv_frontend.qkv_codes`, token by token; checker
:func:`hwsim.sim.checker.check_plan` (codes ``==``; cycles from the first ``x`` beat to the
first token's last code ``==`` :func:`hwsim.golden.vitallm.qkv_frontend.qkv_frontend_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.vitallm import qkv_frontend as spec
from hwsim.kernels.qkv_frontend import golden_codes, side_values, tokens, w_words, x_words
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.QkvFrontendParams, a: dict, rng, idle, stall) -> dict:
    ws = StreamSource(dut, "w", rng, 0.0)
    xs = StreamSource(dut, "x", rng, idle)
    out = StreamSink(dut, "out", rng, stall, signed=True)
    ws.load(w_words(a, p))
    xs.load(x_words(a, p), side=[tuple((getattr(dut, name), v) for name, v in beat)
                                 for beat in side_values(p, a)])
    out.open(len(tokens(a)) * p.elements)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [ws, xs], [out]).run()
    return {"outputs": out.values, "cycles": out.cycles[p.elements - 1] - xs.cycles[0] + 1,
            "token_first_x": [xs.cycles[i] - xs.cycles[0]
                              for i in range(0, len(xs.cycles), p.hidden // p.lanes)],
            "token_last_out": [out.cycles[i] - xs.cycles[0]
                               for i in range(p.elements - 1, len(out.cycles), p.elements)],
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.QkvFrontendParams, a: dict) -> int:
    return spec.qkv_frontend_cycles(p)


@cocotb.test()
async def qkv_frontend_matches_golden(dut):
    await check_plan(dut, spec.QkvFrontendParams, run_case, golden_codes, expected_cycles,
                     inputs=("w", "x"), outputs=("out",))
