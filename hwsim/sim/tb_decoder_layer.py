"""cocotb testbench of one whole decoder layer (:class:`rtl.vitallm.decoder_layer.DecoderLayer`).

Drivers on ``w`` (q, k, v weight words), ``wo``, ``kv`` (the earlier cache), ``w1``, ``w3``,
``w2`` then ``x`` (the token's residual row), static ports set per case; monitor on ``y``;
model :func:`hwsim.golden.vitallm.decoder_layer.decoder_layer`; checker
:func:`hwsim.sim.checker.check_plan` (output residual codes ``==``, cycles from the first ``x``
beat to the last ``y`` code ``==`` :func:`hwsim.golden.vitallm.decoder_layer.latency_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.vitallm import decoder_layer as spec
from hwsim.kernels import decoder_layer as kd
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource

_LOADS = (("w", kd.w_words), ("wo", kd.wo_words), ("kv", kd.cache_words),
          ("w1", kd.w1_words), ("w3", kd.w3_words), ("w2", kd.w2_words))


async def run_case(dut, p: spec.DecoderLayerParams, a: dict, rng, idle, stall) -> dict:
    for name, value in kd.port_values(a, p).items():
        getattr(dut, name).value = value
    loads = []
    for name, words in _LOADS:
        s = StreamSource(dut, name, rng, 0.0)
        s.load(words(a, p))
        loads.append(s)
    xs = StreamSource(dut, "x", rng, idle)
    ys = StreamSink(dut, "y", rng, stall, signed=True)
    xs.load(kd.x_words(a, p))
    ys.open(p.hidden)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [*loads, xs], [ys]).run()
    return {"outputs": list(ys.values), "cycles": ys.cycles[-1] - xs.cycles[0] + 1,
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def decoder_layer_matches_golden(dut):
    await check_plan(dut, spec.DecoderLayerParams, run_case, kd.golden_words, kd.expected_cycles,
                     inputs=("w", "wo", "kv", "w1", "w3", "w2", "x"), outputs=("y",))
