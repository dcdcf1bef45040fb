"""cocotb testbench of greedy generation on :class:`rtl.vitallm.decode_model.DecodeModel`.

The testbench is the accelerator's host, as :mod:`hwsim.sim.generate` is in Amaranth's
simulator: per step it sets ``length`` to the tokens the step sees, streams the head (first
step), every layer's weights, parameters (the RoPE row of the step's position) and cache, and
the embedding row of the step's token; it appends the ``kv_new`` rows each layer writes (taken
in their cycle; the layer is ``layer``) to that layer's cache and, once the prompt is consumed,
feeds the design's greedy token back. The plan is :func:`hwsim.sim.generate.generation_case`;
checker :func:`hwsim.sim.checker.check_plan`: the token after every position and every
layer's keys and values ``==`` the integer model's, the cycles summed over the steps (each from
its first ``x`` beat to its ``y`` beat) ``==`` :func:`hwsim.golden.vitallm.decode_model.
latency_cycles` summed at each step's length.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.vitallm import decode_model as spec
from hwsim.kernels import decode_model as kd
from hwsim.kernels import decode_step as kds
from hwsim.sim import generate as gen
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import StreamSink, StreamSource


async def run_case(dut, p: spec.DecodeModelParams, a: dict, rng, idle, stall) -> dict:
    from cocotb.triggers import FallingEdge, ReadOnly

    steps = int(np.ravel(a["steps"])[0])
    prompt = [int(t) for t in np.ravel(a["prompt"])]
    _, _, head = kd.split(a, p)
    for name, value in kd.port_values(a, p).items():
        getattr(dut, name).value = value
    kv_step = p.layer().decode_step()
    hw = StreamSource(dut, "hw", rng, 0.0)
    loads = {n: StreamSource(dut, n, rng, 0.0) for n in spec.LOAD_PORTS}
    xs = StreamSource(dut, "x", rng, 0.0)
    ys = StreamSink(dut, "y", rng, 0.0, signed=False)
    caches = gen.empty_caches(p)
    tokens, per_step, cycle, token = [], [], 0, prompt[0]
    t0 = time.perf_counter()
    for t in range(steps):
        words = kd.layer_words(gen.step_layers(a, p, caches, t), p, t + 1)
        hw.load(kd.klh.w_words(head, p.head()) if t == 0 else [])
        for n, s in loads.items():
            s.load(words[n])
        xs.load(kd.x_words(a["embed"][token], p))
        ys.open(1)
        dut.length.value = t + 1
        rows: list[list] = [[] for _ in range(p.layers)]
        sources = [hw, *loads.values(), xs]
        while not ys.done:
            await FallingEdge(dut.clk)
            for s in sources:
                s.drive(True)
            ys.drive()
            await ReadOnly()
            for s in sources:
                s.sample(cycle)
            ys.sample(cycle)
            word = dut.kv_new.value.to_unsigned()
            if word & 1:
                rows[int(dut.layer.value)].append(kds.kv_new_fields(word, kv_step))
            cycle += 1
        await FallingEdge(dut.clk)
        for s in sources:
            s.quiet()
        ys.drive()
        gen.append_rows(caches, rows, t, p.kv_heads)
        tok = kd.klh.y_fields(ys.values[0], p.head())[0]
        tokens.append(tok)
        per_step.append(ys.cycles[0] - xs.cycles[0] + 1)
        token = prompt[t + 1] if t + 1 < len(prompt) else tok
    kv = [c for k, v in caches for c in (k.transpose(1, 0, 2).ravel(), v.transpose(1, 0, 2).ravel())]
    return {"outputs": tokens + [int(c) for c in np.concatenate(kv)], "cycles": sum(per_step),
            "sim_cycles": cycle, "wall_s": time.perf_counter() - t0, "tokens": tokens,
            "step_cycles": per_step}


def golden_words(p: spec.DecodeModelParams, a: dict) -> np.ndarray:
    """The integer model's token after every position, then every layer's keys and values
    ((steps, kv_heads, head_dim) each, k before v)."""
    kv = [c for i in range(p.layers) for c in (a["want_k"][i].ravel(), a["want_v"][i].ravel())]
    return np.concatenate([np.ravel(a["want_tokens"]), *kv]).astype(np.int64)


def expected_cycles(p: spec.DecodeModelParams, a: dict) -> int:
    return sum(spec.latency_cycles(p, t + 1) for t in range(int(np.ravel(a["steps"])[0])))


@cocotb.test()
async def decode_model_generates_the_golden_tokens(dut):
    await check_plan(dut, spec.DecodeModelParams, run_case, golden_words, expected_cycles,
                     inputs=("hw", *spec.LOAD_PORTS, "x"), outputs=("y",))
