"""cocotb testbench of the attention block of a decode step (:class:`rtl.vitallm.decode_step.
DecodeStep`).

Drivers on ``w`` (projection weights), ``kv`` (the earlier cache) then ``x`` (the token's
activations), static ports (``length`` among them) set per case; monitor on ``out``; model
:func:`hwsim.golden.vitallm.decode_step.decode_step_attention`; checker
:func:`hwsim.sim.checker.check_plan` (codes and amax ``==``, cycles from the first ``x`` beat
``==`` :func:`hwsim.golden.vitallm.decode_step.decode_step_cycles` of the case's length).
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import decode_step as spec
from hwsim.kernels.decode_step import cache_words, expected_cycles, golden_words, port_values
from hwsim.kernels.qkv_frontend import w_words, x_words
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.DecodeStepParams, a: dict, rng, idle, stall) -> dict:
    for name, value in port_values(a, p).items():
        getattr(dut, name).value = value
    ws = StreamSource(dut, "w", rng, 0.0)
    kv = StreamSource(dut, "kv", rng, 0.0)
    xs = StreamSource(dut, "x", rng, idle)
    out = StreamSink(dut, "out", rng, stall, signed=False)
    ws.load(w_words(a, p.frontend()))
    kv.load(cache_words(a, p))
    xs.load(x_words(a, p.frontend()))
    ap = p.attention_phase().attention()
    out.open(p.heads * ap.chunks)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [ws, kv, xs], [out]).run()
    res = ah.out_results(out.values, ap)
    return {"outputs": np.concatenate([np.append(o, am) for o, am in res]).tolist(),
            "cycles": out.cycles[-1] - xs.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def decode_step_matches_golden(dut):
    await check_plan(dut, spec.DecodeStepParams, run_case, golden_words, expected_cycles,
                     inputs=("w", "kv", "x"), outputs=("out",))
