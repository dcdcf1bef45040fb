"""Registry entry and stimulus of the absmax re-quantization barrier."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.vitallm import absmax_barrier as spec

from . import CliParam, Kernel, _costs
from ._contract import interval, latency


def manifest(p: spec.AbsmaxBarrierParams) -> dict:
    return {
        "kernel": "absmax-barrier",
        "params": {f.name: str(getattr(p, f.name)) if f.name == "out" else getattr(p, f.name)
                   for f in dataclasses.fields(p)},
        "recip_bits": p.recip_bits,
        "numeric": {
            "function": "hwsim.golden.vitallm.absmax_barrier.absmax_barrier (= hwsim.golden."
                        "common.attention_head.absmax_requant, the layer's act_quant): "
                        "m = max_i |a_i|, (r, k) = reciprocal(m, recip_bits) with "
                        "k = bitlen(m) - 1 + recip_bits, r = floor(2**k / m) (r = 0 when m = 0), "
                        "q_i = sat(round(a_i * r * 127 * 2**-k))",
            "recip_bits": p.recip_bits,
            "rounding": p.out.rounding.value, "overflow": p.out.overflow.value,
            "out": p.out.to_dict(),
            "scale": "the token's real scale is s_in * m / 127; m (y.absmax) is on every beat",
            "bound": "|q_i - round(a_i * 127 / m)| <= 1 (off only within 254 * 2**-recip_bits "
                     "LSB of a rounding tie); the element with |a_i| = m is exactly +-127 "
                     "(nearest rounding modes); codes stay in [-127, 127]",
            "a_beat": "lanes accumulators per beat (lane 0 lowest), length / lanes beats per token",
            "y_beat": "lanes codes per beat, in input order, with the token's m",
        },
        "latency": latency(spec.latency_cycles, p),
        "interval": interval(spec.interval_cycles, p),
        "cycles": {"token": spec.latency_cycles(p), "interval": spec.interval_cycles(p)},
    }


def cases(p: spec.AbsmaxBarrierParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random tokens, corner tokens (all zero, one dominant element, the extreme codes, all
    equal) and random idle input / back-pressure."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (p.in_width - 1)), (1 << (p.in_width - 1)) - 1
    out = [{"name": "random", "arrays": {"A": rng.integers(lo, hi + 1, (2, p.length))}}]
    if not quick:
        dominant = rng.integers(max(lo, -3), min(hi, 3) + 1, p.length)
        dominant[p.length // 2] = hi
        small = rng.integers(max(lo, -2), min(hi, 2) + 1, p.length)  # largest reciprocals
        out += [
            {"name": "all_zero", "arrays": {"A": np.zeros((1, p.length), dtype=np.int64)}},
            {"name": "one_dominant", "arrays": {"A": dominant[None]}},
            {"name": "most_negative", "arrays": {"A": np.full((1, p.length), lo)}},
            {"name": "most_positive", "arrays": {"A": np.full((1, p.length), hi)}},
            {"name": "small", "arrays": {"A": small[None]}},
        ]
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 3,
                "arrays": {"A": rng.integers(lo, hi + 1, (2, p.length))}})
    return out


KERNEL = Kernel(
    name="absmax-barrier",
    top="absmax_barrier",
    summary="per-token absmax re-quantization of wide accumulators to int8 (VitaLLM barrier)",
    params_cls=spec.AbsmaxBarrierParams,
    cli_params=(
        CliParam("length", int, 256, "accumulators per token"),
        CliParam("in_width", int, 24, "signed width of the incoming accumulators"),
        CliParam("lanes", int, 1, "accumulators per beat (divides length)"),
        CliParam("mul_style", str, "dsp", "multiplier: dsp (a*r) or shift_add (LUTs)"),
    ),
    component_path="rtl.vitallm.absmax_barrier:AbsmaxBarrier",
    testbench="hwsim.sim.tb_absmax_barrier",
    golden="hwsim.golden.vitallm.absmax_barrier:absmax_barrier",
    cycles=spec.latency_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    costs=(_costs.ABSMAX_BARRIER,),
    manifest=manifest,
    cases=cases,
    test_params=(dict(length=6, in_width=14, mul_style="shift_add"),
                 dict(length=6, in_width=14, lanes=3, mul_style="dsp")),
)
