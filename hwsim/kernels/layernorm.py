"""Registry entry and stimulus of the integer LayerNorm unit."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common import layernorm_int as spec
from hwsim.golden.common.lanes import pack_lanes

from . import CliParam, Kernel
from ._contract import interval, latency
from .int8_mvu import flag


def layernorm_cli_params(n: int = 16, lanes: int = 4, in_signed: bool = True,
                         out_signed: bool = True, in_scale: float = 0.05,
                         out_scale: float = 1 / 32, out_zero: int = 0, eps: float = 1e-5,
                         gain_seed: int = 0) -> spec.LayerNormParams:
    """A LayerNorm between an input quantizer (``in_scale``) and an output quantizer
    (``out_scale``, ``out_zero``) with seeded gains ``γ ∈ [0.5, 1.5]`` and offsets
    ``β ∈ [−0.5, 0.5]`` (:func:`hwsim.golden.common.layernorm_int.params_for`)."""
    rng = np.random.default_rng(gain_seed)
    gamma = rng.uniform(0.5, 1.5, n) * rng.choice([-1, 1], n)
    beta = rng.uniform(-0.5, 0.5, n)
    return spec.params_for(gamma, beta, eps, in_scale, out_scale, out_zero, lanes=lanes,
                           in_signed=in_signed, out_signed=out_signed)


def manifest(p: spec.LayerNormParams) -> dict:
    return {
        "kernel": "layernorm",
        "params": {f.name: (list(getattr(p, f.name)) if f.name in ("gamma", "beta")
                            else getattr(p, f.name)) for f in dataclasses.fields(p)},
        "t_width": p.t_width,
        "numeric": {
            "function": "hwsim.golden.common.layernorm_int.layernorm_int: S1 = sum x, "
                        "S2 = sum x^2, v = (n*S2 - S1^2) * 4**sqrt_frac + eps_code, "
                        "q = isqrt(v), (r, k) = reciprocal(q, recip_bits), u = k - sqrt_frac, "
                        "c = n*x - S1, y = sat(round_half_even((c*gamma*r + beta*2**u) * "
                        "2**-(u + frac)))",
            "rounding": p.out.rounding.value,
            "overflow": p.out.overflow.value,
            "in": p.inp.to_dict(),
            "out": p.out.to_dict(),
            "beats": "x and y beats hold lanes codes each, lane 0 in the low 8 bits; n/lanes "
                     "beats per vector",
        },
        "latency": latency(spec.latency_cycles, p, unit="vector", first="x beat",
                           last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="vector"),
        "cycles": {"vector": spec.latency_cycles(p), "interval": spec.interval_cycles(p)},
    }


def words(codes, lanes: int) -> list[int]:
    """Beats of a code array (row-major): ``lanes`` codes per beat, lane 0 lowest."""
    return [pack_lanes(row, 8) for row in np.asarray(codes).reshape(-1, lanes)]


def golden(p: spec.LayerNormParams, a: dict) -> np.ndarray:
    """The golden codes of a case, ``(vectors, n)``."""
    return spec.layernorm_int(np.atleast_2d(a["X"]), p)


def cases(p: spec.LayerNormParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random vectors, the extremes and stress on the handshakes.

    * ``random``: uniform codes, 3 vectors back to back (cycles checked);
    * ``extremes``: a constant vector (σ from ε alone, or 0), one code apart from the rest,
      the two extreme codes alternating (the largest variance), a narrow spread around the
      top code;
    * ``idle_backpressure``: 30 % idle input, 40 % output stalls;
    * ``stall90``: 50 % idle input, 90 % output stalls.
    """
    rng = np.random.default_rng(seed)
    lo, hi, n = p.inp.min_code, p.inp.max_code, p.n

    def rnd(v):
        return rng.integers(lo, hi + 1, (v, n))

    out = [{"name": "random", "arrays": {"X": rnd(3)}}]
    if not quick:
        ext = np.array([np.full(n, lo), np.where(np.arange(n) == 0, hi, lo),
                        np.where(np.arange(n) % 2 == 1, hi, lo), hi - rng.integers(0, 3, n)])
        out.append({"name": "extremes", "arrays": {"X": ext}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"X": rnd(3)}})
    if not quick:
        out.append({"name": "stall90", "idle": 0.5, "stall": 0.9, "seed": seed + 11,
                    "arrays": {"X": rnd(2)}})
    return out


KERNEL = Kernel(
    name="layernorm",
    top="layernorm",
    summary="integer LayerNorm of int8/uint8 code vectors (integer rsqrt, per-channel γ/β)",
    params_cls=layernorm_cli_params,
    cli_params=(
        CliParam("n", int, 16, "vector length"),
        CliParam("lanes", int, 4, "codes per beat (must divide n)"),
        CliParam("in_signed", flag, True, "input codes are int8 (1) or uint8 (0)"),
        CliParam("out_signed", flag, True, "output codes are int8 (1) or uint8 (0)"),
        CliParam("in_scale", float, 0.05, "input quantizer scale"),
        CliParam("out_scale", float, 1 / 32, "output quantizer scale"),
        CliParam("out_zero", int, 0, "output quantizer zero point"),
        CliParam("eps", float, 1e-5, "LayerNorm epsilon"),
        CliParam("gain_seed", int, 0, "seed of the random gains and offsets"),
    ),
    component_path="rtl.common.layernorm:LayerNorm",
    testbench="hwsim.sim.tb_layernorm",
    golden="hwsim.golden.common.layernorm_int:layernorm_int",
    cycles=spec.latency_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(n=8, lanes=2),
                 dict(n=6, lanes=1, in_signed=False, out_signed=False, in_scale=0.02,
                      out_scale=0.03, out_zero=100, eps=1e-3, gain_seed=3)),
)
