"""cocotb testbench of the attention half of a decoder layer (:class:`rtl.vitallm.attn_layer.
AttnLayer`).

Drivers on ``w`` (q, k, v weight words), ``wo`` (``wo``'s), ``kv`` (the earlier cache) then
``x`` (the token's residual row), static ports set per case; monitor on ``y``; model
:func:`hwsim.golden.vitallm.attn_layer.attn_layer`; checker :func:`hwsim.sim.checker.check_plan`
(residual codes ``==``, cycles from the first ``x`` beat ``==``
:func:`hwsim.golden.vitallm.attn_layer.latency_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.vitallm import attn_layer as spec
from hwsim.kernels import attn_layer as ka
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.AttnLayerParams, a: dict, rng, idle, stall) -> dict:
    for name, value in ka.port_values(a, p).items():
        getattr(dut, name).value = value
    ws = StreamSource(dut, "w", rng, 0.0)
    wos = StreamSource(dut, "wo", rng, 0.0)
    kv = StreamSource(dut, "kv", rng, 0.0)
    xs = StreamSource(dut, "x", rng, idle)
    ys = StreamSink(dut, "y", rng, stall, signed=True)
    ws.load(ka.w_words(a, p))
    wos.load(ka.wo_words(a, p))
    kv.load(ka.cache_words(a, p))
    xs.load(ka.x_words(a, p))
    ys.open(p.hidden)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [ws, wos, kv, xs], [ys]).run()
    return {"outputs": list(ys.values), "cycles": ys.cycles[-1] - xs.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def attn_layer_matches_golden(dut):
    await check_plan(dut, spec.AttnLayerParams, run_case, ka.golden_words, ka.expected_cycles,
                     inputs=("w", "wo", "kv", "x"), outputs=("y",))
