"""cocotb testbench of the input half of a layer's FFN (:class:`rtl.vitallm.ffn_in.FfnIn`).

Drivers on ``w1``, ``w3`` (the weight words) then ``x`` (the token's residual row), static
ports set per case; monitors on ``y`` (``{prod, amax}`` beats) and ``res`` (the held residual
codes); model :func:`hwsim.golden.vitallm.ffn_in.ffn_in`; checker :func:`hwsim.sim.checker.check_plan`
(prod codes, every beat's amax and the residual codes ``==``, cycles from the first ``x`` beat
to the last ``y`` beat ``==`` :func:`hwsim.golden.vitallm.ffn_in.latency_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.vitallm import ffn_in as spec
from hwsim.kernels import ffn_in as kf
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.FfnInParams, a: dict, rng, idle, stall) -> dict:
    for name, value in kf.port_values(a, p).items():
        getattr(dut, name).value = value
    w1 = StreamSource(dut, "w1", rng, 0.0)
    w3 = StreamSource(dut, "w3", rng, 0.0)
    xs = StreamSource(dut, "x", rng, idle)
    ys = StreamSink(dut, "y", rng, stall, signed=False)
    rs = StreamSink(dut, "res", rng, stall, signed=True)
    w1.load(kf.w1_words(a, p))
    w3.load(kf.w3_words(a, p))
    xs.load(kf.x_words(a, p))
    ys.open(p.ffn)
    rs.open(p.hidden)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [w1, w3, xs], [ys, rs]).run()
    fields = [kf.y_fields(v, p) for v in ys.values]
    return {"outputs": [f[0] for f in fields] + [f[1] for f in fields] + list(rs.values),
            "cycles": ys.cycles[-1] - xs.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.FfnInParams, a: dict) -> int:
    return spec.latency_cycles(p)


@cocotb.test()
async def ffn_in_matches_golden(dut):
    await check_plan(dut, spec.FfnInParams, run_case, kf.golden_words, expected_cycles,
                     inputs=("w1", "w3", "x"), outputs=("y", "res"))
