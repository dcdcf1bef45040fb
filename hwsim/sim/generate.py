"""Greedy generation on the ``decode-model`` RTL in Amaranth's simulator.

The host side of the accelerator wraps one continuous simulation of
:class:`rtl.vitallm.decode_model.DecodeModel`: per step it looks up the token's embedding row,
streams every layer's weights, parameters (with the RoPE row of the step's position) and KV
cache, sets ``length`` to the tokens the step sees, appends the ``kv_new`` rows each layer
writes to that layer's cache, and feeds the design's greedy token back as the next input once
the prompt is consumed. Nothing is computed on the host but the lookup and the bookkeeping.

The reference is the integer model (:func:`models.bitnet.integer_model.integer_forward` with
the accelerator's attention rule, :func:`hwsim.golden.vitallm.bitnet_layer.topk_attend`):
the token after every position, the keys and values of every layer, the cycles of every step
(:func:`hwsim.golden.vitallm.decode_model.latency_cycles` at the step's length).
"""

from __future__ import annotations

import time

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["append_rows", "empty_caches", "generate", "generate_cocotb", "generation_case",
           "step_layers"]


def _golden_sequence(im, prompt: list[int], new_tokens: int, keep: int) -> list[int]:
    from hwsim.golden.vitallm import bitnet_layer as bl
    from models.bitnet.integer_model import integer_generate

    return integer_generate(im, prompt, new_tokens, attend=bl.topk_attend(keep))


def generation_case(im, prompt, new_tokens: int, keep: int, lanes: int | None = None) -> tuple:
    """The plan of a generation run: ``(DecodeModelParams, case)``. The case's arrays hold what
    the host streams (every layer's weights and parameters, ``l{i}__…``; the head, ``head_…``;
    the embedding table ``embed``; the RoPE tables ``cos``, ``sin``; ``prompt``; ``steps``) and
    the integer model's results the RTL must give: the token after every position
    (``want_tokens``) and every layer's keys and values (``want_k``, ``want_v``: (layers,
    steps, kv_heads, head_dim)). The design's KV capacity is ``M = steps = len(prompt) +
    new_tokens − 1``; ``lanes``: the design's lanes (default: the decoder layer's, at most
    16)."""
    import dataclasses

    from hwsim.golden.vitallm import bitnet_layer as bl
    from hwsim.kernels import decode_model as kd
    from models.bitnet.integer_model import integer_forward

    prompt = [int(t) for t in np.ravel(prompt)]
    if not prompt or isinstance(new_tokens, bool) or not isinstance(new_tokens, int) \
            or new_tokens < 1:
        raise HwsimError("generation needs a prompt of at least one token and new_tokens ≥ 1")
    steps = len(prompt) + new_tokens - 1
    seq = _golden_sequence(im, prompt, new_tokens, keep)
    cap: dict = {}
    logits = integer_forward(im, seq[:steps], capture=cap, attend=bl.topk_attend(keep))
    p, case = kd.real_case(im, cap, min(keep, steps))
    if lanes is not None:
        p = dataclasses.replace(p, lanes=lanes)
    a = dict(case["arrays"])
    a.update({"embed": im.embed, "cos": im.cos[:steps], "sin": im.sin[:steps],
              "prompt": np.array(prompt), "steps": np.array([steps]),
              "want_tokens": np.argmax(logits, axis=-1).astype(np.int64),
              "want_k": np.stack([cap[i]["k"] for i in range(p.layers)]),
              "want_v": np.stack([cap[i]["v"] for i in range(p.layers)])})
    return p, {"name": f"generate_{len(prompt)}+{new_tokens}", "arrays": a}


def step_layers(a: dict, p, caches: list, t: int) -> list[dict]:
    """Layer ``i``'s arrays of step ``t``: its template with the RoPE row of position ``t`` and
    its cache so far."""
    from hwsim.kernels import decode_model as kd

    _, templates, _ = kd.split(a, p)
    return [{**tm, "cos": a["cos"][t], "sin": a["sin"][t], "K": k, "V": v}
            for tm, (k, v) in zip(templates, caches, strict=True)]


def empty_caches(p) -> list:
    z = np.zeros((p.kv_heads, 0, p.head_dim), dtype=np.int64)
    return [(z, z) for _ in range(p.layers)]


def append_rows(caches: list, rows: list, t: int, kv_heads: int) -> None:
    """Append each layer's ``kv_new`` rows (``(head, k, v)``, heads in order) of step ``t``."""
    for li, r in enumerate(rows):
        if [h for h, _, _ in r] != list(range(kv_heads)):
            raise HwsimError(f"step {t}: layer {li} gave kv_new heads {[h for h, _, _ in r]}, "
                             f"not 0 … {kv_heads - 1}")
        k = np.stack([kk for _, kk, _ in r])[:, None]
        v = np.stack([vv for _, _, vv in r])[:, None]
        caches[li] = (np.concatenate([caches[li][0], k], axis=1),
                      np.concatenate([caches[li][1], v], axis=1))


def generate(im, prompt, new_tokens: int, keep: int, max_cycles: int = 5_000_000,
             lanes: int | None = None) -> dict:
    """Generate ``new_tokens`` greedy tokens after ``prompt`` on the RTL of the integer BitNet
    ``im`` (every layer on one decoder layer, sparse attention keeping ``min(keep, L)``), in
    Amaranth's simulator (:func:`generation_case` is the plan).

    Returns the RTL's token after each position (``tokens``), the integer model's (``golden``),
    the generated tokens of both, whether every layer's ``kv_new`` rows equal the integer
    model's keys and values, the cycles of every step and their formula."""
    from amaranth.hdl import Value
    from amaranth.sim import Simulator

    from hwsim.golden.vitallm import decode_model as spec
    from hwsim.kernels import decode_model as kd
    from hwsim.kernels import decode_step as kds
    from rtl.vitallm.decode_model import DecodeModel

    p, case = generation_case(im, prompt, new_tokens, keep, lanes)
    a = case["arrays"]
    prompt = [int(t) for t in a["prompt"]]
    steps = int(a["steps"][0])
    _, _, head = kd.split(a, p)
    G = p.kv_heads
    head_words = kd.klh.w_words(head, p.head())
    pv = kd.port_values(a, p)
    dut = DecodeModel(p)
    names = ("hw", *spec.LOAD_PORTS, "x")
    out = {"tokens": [], "cycles": [], "formula_cycles": []}
    caches = empty_caches(p)
    kv_step = p.layer().decode_step()

    def flat(v):
        return Value.cast(v)

    async def bench(ctx):
        ctx.set(flat(dut.head_gamma), pv["head_gamma"])
        ctx.set(dut.head_e, pv["head_e"])
        ctx.set(dut.y.ready, 1)
        cycle, token = 0, prompt[0]
        for t in range(steps):
            n = t + 1
            layers = step_layers(a, p, caches, t)
            queues = {**kd.layer_words(layers, p, n), "x": kd.x_words(a["embed"][token], p),
                      "hw": head_words if t == 0 else []}
            sent = dict.fromkeys(names, 0)
            ctx.set(dut.length, n)
            rows: list[list] = [[] for _ in range(p.layers)]
            first, y = None, None
            while y is None:
                if cycle >= max_cycles:
                    raise TimeoutError(f"no token after {max_cycles} cycles")
                for name in names:
                    s, q = getattr(dut, name), queues[name]
                    ctx.set(s.valid, sent[name] < len(q))
                    if sent[name] < len(q):
                        ctx.set(flat(s.payload), q[sent[name]])
                for name in names:
                    s = getattr(dut, name)
                    if ctx.get(s.valid) and ctx.get(s.ready):
                        if name == "x" and sent[name] == 0:
                            first = cycle
                        sent[name] += 1
                word = int(ctx.get(flat(dut.kv_new)))
                if word & 1:
                    rows[ctx.get(dut.layer)].append(kds.kv_new_fields(word, kv_step))
                if ctx.get(dut.y.valid):
                    y = kd.klh.y_fields(int(ctx.get(flat(dut.y.payload))), p.head())
                    out["cycles"].append(cycle - first + 1)
                await ctx.tick()
                cycle += 1
            for name in names:
                ctx.set(getattr(dut, name).valid, 0)
            append_rows(caches, rows, t, G)
            out["tokens"].append(int(y[0]))
            out["formula_cycles"].append(spec.latency_cycles(p, n))
            token = prompt[t + 1] if t + 1 < len(prompt) else int(y[0])
        out["sim_cycles"] = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    t0 = time.perf_counter()
    sim.run()
    wall = time.perf_counter() - t0
    kv_equal = all(
        np.array_equal(caches[li][0], a["want_k"][li].transpose(1, 0, 2))
        and np.array_equal(caches[li][1], a["want_v"][li].transpose(1, 0, 2))
        for li in range(p.layers))
    golden = [int(v) for v in a["want_tokens"]]
    P = len(prompt)
    generated = out["tokens"][P - 1:]
    return {"prompt": prompt, "new_tokens": new_tokens, "keep": keep, "capacity": p.tokens,
            "layers": p.layers, "tokens": out["tokens"], "golden": golden,
            "generated": generated, "golden_generated": golden[P - 1:],
            "tokens_equal_golden": out["tokens"] == golden, "kv_equal_golden": kv_equal,
            "cycles": out["cycles"], "formula_cycles": out["formula_cycles"],
            "cycles_equal_formula": out["cycles"] == out["formula_cycles"],
            "sim_cycles": out["sim_cycles"], "wall_s": wall}


def generate_cocotb(im, prompt, new_tokens: int, keep: int, build, sim: str = "verilator",
                    lanes: int | None = None):
    """:func:`generate` under cocotb on ``sim`` (Icarus or Verilator) from the emitted Verilog:
    the testbench :mod:`hwsim.sim.tb_decode_model_generate` is the host. Returns the
    :class:`hwsim.sim.runner.SimReport` (its case: bit-exact tokens and KV rows, cycles)."""
    import dataclasses

    from hwsim.kernels import get_kernel
    from hwsim.sim.runner import simulate

    p, case = generation_case(im, prompt, new_tokens, keep, lanes)
    kernel = dataclasses.replace(get_kernel("decode-model"),
                                 testbench="hwsim.sim.tb_decode_model_generate")
    return simulate(kernel, p, [case], build, sim=sim)
