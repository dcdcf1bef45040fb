"""Registry entry and stimulus of the leading-one surrogate + top-K selector."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.vitallm import lo_topk as spec

from . import CliParam, Kernel, _costs
from ._contract import latency, one_at_a_time


def manifest(p: spec.LoTopKParams) -> dict:
    lat = latency(spec.latency_cycles, p, unit="query", first="q beat", last="sel beat")
    return {"kernel": "lo-topk",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "score_width": p.score_width,
            "numeric": {
                "function": "hwsim.golden.vitallm.lo_topk.topk_radix(lo_scores(q, K), keep): sel bit j "
                            "is 1 for the keep tokens with the largest surrogate scores, ties "
                            "toward the lower token index",
                "score": "s_j = sum_i sign(q_i) * sign(k_ji) * 2**(lo(q_i) + lo(k_ji)), a term "
                         "0 where q_i or k_ji is 0; lo(v) = floor(log2 |v|) (leading-one "
                         "position, 0..7); exact in score_width signed bits",
                "selection": "MSB-first radix selection on key = s + 2**(score_width-1), "
                             "population counts only; keep = tokens selects every token",
                "rounding": "none: the surrogate is exact", "overflow": "none: score_width holds "
                                                                        "every score",
                "sel_beat": "bit j = token j (the j-th k beat of the query)",
                "length": "L = 1 ... tokens, sampled with the q beat: the query takes L k "
                          "beats and keeps min(keep, L); an input port (drive it: tokens for "
                          "a full query); cycles given for L = tokens",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, unit="query"),
            "cycles": {"query": spec.latency_cycles(p)}}


def cases(p: spec.LoTopKParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random queries; all scores equal (ties everywhere); one dominant key; extreme codes."""
    rng = np.random.default_rng(seed)
    M, d = p.tokens, p.head_dim
    K = rng.integers(-128, 128, (M, d))
    out = [{"name": "random", "arrays": {"Q": rng.integers(-128, 128, (2, d)), "K": K}}]
    if not quick:
        dominant = rng.integers(-2, 3, (M, d))
        dominant[M // 2] = 127
        out += [
            {"name": "all_equal", "arrays": {"Q": np.full((1, d), 3),
                                             "K": np.full((M, d), -5)}},
            {"name": "one_dominant", "arrays": {"Q": np.full((1, d), 127), "K": dominant}},
            {"name": "extremes", "arrays": {"Q": np.full((1, d), -128),
                                            "K": rng.choice([-128, 127, 0], (M, d))}},
        ]
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.5, "seed": seed + 5,
                "arrays": {"Q": rng.integers(-128, 128, (1, d)), "K": K}})
    return out


KERNEL = Kernel(
    name="lo-topk",
    top="lo_topk",
    summary="leading-one QKᵀ surrogate and comparison-free top-K selector (VitaLLM sparsity)",
    params_cls=spec.LoTopKParams,
    cli_params=(
        CliParam("tokens", int, 32, "cached tokens M"),
        CliParam("head_dim", int, 16, "head dimension d"),
        CliParam("keep", int, 8, "tokens kept K"),
    ),
    component_path="rtl.vitallm.lo_topk:LoTopK",
    testbench="hwsim.sim.tb_lo_topk",
    golden="hwsim.golden.vitallm.lo_topk:topk_radix",
    cycles=spec.latency_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    costs=(_costs.LO_TOPK,),
    manifest=manifest,
    cases=cases,
    test_params=(dict(tokens=8, head_dim=4, keep=3),),
)
