"""cocotb testbench of a whole decode step (:class:`rtl.vitallm.decode_model.DecodeModel`).

Drivers on ``hw`` (the head), the per-layer load streams ``w``, ``kv``, ``wo``, ``w1``, ``w3``,
``w2``, ``cfg`` (every layer's beats back to back, all presented at once: the design takes a
layer's beats only while loading it; each layer's cache cut to the case's ``length − 1`` rows)
and ``x`` (the embedding row); static ports (``length`` among them) set per case;
monitor on ``y``; model :func:`hwsim.golden.vitallm.decode_model.decode_model`; checker
:func:`hwsim.sim.checker.check_plan` (token and logit ``==``, cycles from the first ``x`` beat
to the ``y`` beat ``==`` :func:`hwsim.golden.vitallm.decode_model.latency_cycles`).
"""

from __future__ import annotations

import time

import cocotb

from hwsim.golden.vitallm import decode_model as spec
from hwsim.kernels import decode_model as kd
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource

LOADS = ("w", "kv", "wo", "w1", "w3", "w2", "cfg")


async def run_case(dut, p: spec.DecodeModelParams, a: dict, rng, idle, stall) -> dict:
    x, layers, head = kd.split(a, p)
    for name, value in kd.port_values(a, p).items():
        getattr(dut, name).value = value
    words = kd.layer_words(layers, p, kd.length_of(a, p))
    hw = StreamSource(dut, "hw", rng, 0.0)
    hw.load(kd.klh.w_words(head, p.head()))
    loads = []
    for name in LOADS:
        s = StreamSource(dut, name, rng, 0.0)
        s.load(words[name])
        loads.append(s)
    xs = StreamSource(dut, "x", rng, idle)
    xs.load(kd.x_words(x, p))
    ys = StreamSink(dut, "y", rng, stall, signed=False)
    ys.open(1)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [hw, *loads, xs], [ys], together=True).run()
    return {"outputs": list(kd.klh.y_fields(ys.values[0], p.head())),
            "cycles": ys.cycles[-1] - xs.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


def expected_cycles(p: spec.DecodeModelParams, a: dict) -> int:
    return spec.latency_cycles(p, kd.length_of(a, p))


@cocotb.test()
async def decode_model_matches_golden(dut):
    await check_plan(dut, spec.DecodeModelParams, run_case, kd.golden_words, expected_cycles,
                     inputs=("hw", *LOADS, "x"), outputs=("y",))
