"""Registry entry and stimulus of the integer RMSNorm kernel."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import rmsnorm_int as spec

from . import CliParam, Kernel, _costs
from ._contract import interval, latency


def manifest(p: spec.RmsNormParams) -> dict:
    return {
        "kernel": "rmsnorm",
        "params": {f.name: str(v) if not isinstance(v := getattr(p, f.name), int | str) else v
                   for f in dataclasses.fields(p)},
        "numeric": {
            "function": "hwsim.golden.vitallm.rmsnorm_int.rmsnorm_int: ss = sum x_i**2 exact; "
                        "v = floor(ss * 2**(2G) / n) + eps_code; q = isqrt(v); (r, k) = "
                        "reciprocal(q, recip_bits), r = floor(2**k / q); y_i = sat(round_shift("
                        "x_i * gamma_i * r, k + gamma.frac - out.frac - G))",
            "G": p.rms_frac, "recip_bits": p.recip_bits,
            "eps": {"port": "eps", "width": p.eps_width, "signed": False,
                    "meaning": "eps_code = round(eps / s_x**2 * 2**(2G)), sampled with the "
                               "vector's last inp beat"},
            "rounding": p.out.rounding.value, "overflow": p.out.overflow.value,
            "x": p.x.to_dict(), "gamma": p.gamma.to_dict(), "out": p.out.to_dict(),
            "bound": "within 1 LSB of the float64 RMSNorm of the same codes where not saturated",
        },
        "latency": latency(spec.latency_cycles, p, unit="vector"),
        "interval": interval(spec.latency_cycles, p, unit="vector"),
        "cycles": {"vector": spec.latency_cycles(p)},
    }


def in_words(X, g, p: spec.RmsNormParams) -> list[int]:
    """Input beats: struct ``{x: lanes × x, g: lanes × gamma}``, ``n/lanes`` per vector."""
    L, xw, gw = p.lanes, p.x.width, p.gamma.width
    return [pack_lanes(x[c * L:(c + 1) * L], xw) | pack_lanes(g[c * L:(c + 1) * L], gw) << L * xw
            for x in np.atleast_2d(X) for c in range(p.chunks)]


def vector_eps(a: dict) -> list[int]:
    """Each vector's ``eps_code``: a case's ``eps`` is one value for every vector or one per
    vector (the RTL samples it with each vector's last input beat)."""
    n = np.atleast_2d(a["X"]).shape[0]
    return [int(e) for e in np.broadcast_to(np.asarray(a["eps"]), (n,))]


def side_values(p: spec.RmsNormParams, a: dict) -> list[tuple[tuple[str, int], ...]]:
    """Per input beat, the ``eps`` a host drives with it: the vector's own on its last beat
    (where the RTL samples it), its bitwise complement on the other beats (the port is free
    there), so an RTL that samples at another time is caught."""
    mask = (1 << p.eps_width) - 1
    return [(("eps", e if k == p.chunks - 1 else ~e & mask),)
            for e in vector_eps(a) for k in range(p.chunks)]


def golden(p: spec.RmsNormParams, a: dict) -> np.ndarray:
    """The golden codes of a case, (vectors, n), each vector with its own ``eps_code``."""
    X = np.atleast_2d(a["X"])
    return np.stack([spec.rmsnorm_int(x, a["g"], e, p)
                     for x, e in zip(X, vector_eps(a), strict=True)])


def _eps_per_vector(X, p: spec.RmsNormParams) -> np.ndarray:
    """A different ``eps_code`` for every vector, from 0 to a few times its mean square (so a
    vector normalized with its neighbour's ε gives different codes)."""
    ratios = (0.0, 3.0, 0.5, 8.0, 1.0, 0.1)
    top = (1 << p.eps_width) - 1
    out = []
    for i, x in enumerate(np.atleast_2d(X)):
        v = (int(np.sum(x.astype(object) ** 2)) << (2 * p.rms_frac)) // p.n
        out.append(min(int(max(v, 1 << (2 * p.rms_frac)) * ratios[i % len(ratios)]) + i, top))
    return np.array(out, dtype=np.int64)


def cases(p: spec.RmsNormParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random rows, small-magnitude rows, a zero row, extreme rows, idle input and stalls.

    ``per_vector`` (cycles checked), ``per_vector_stall50`` (50 % output stalls) and
    ``per_vector_stall90`` (30 % idle input, 90 % output stalls) run vectors back to
    back, each with its own ``eps_code``.
    """
    rng = np.random.default_rng(seed)
    lo, hi = p.x.min_code, p.x.max_code

    def gains():
        return rng.integers(p.gamma.min_code, p.gamma.max_code + 1, p.n)

    def per_vector(name, n, **extra):
        X = rng.integers(lo, hi + 1, (n, p.n))
        return {"name": name, **extra,
                "arrays": {"X": X, "g": gains(), "eps": _eps_per_vector(X, p)}}

    out = [{"name": "random", "arrays": {
        "X": rng.integers(lo, hi + 1, (2, p.n)), "g": gains(), "eps": 40}}]
    if not quick:
        out.append({"name": "small_rows", "arrays": {
            "X": rng.integers(lo, hi + 1, (2, p.n)) // 60, "g": gains(), "eps": 3}})
        out.append({"name": "zero_row", "arrays": {
            "X": np.zeros((1, p.n), int), "g": gains(), "eps": 0}})
        out.append({"name": "extremes", "arrays": {
            "X": np.stack([np.full(p.n, lo), np.full(p.n, hi)]),
            "g": np.full(p.n, p.gamma.max_code), "eps": (1 << p.eps_width) - 1}})
        out.append(per_vector("per_vector", 3))
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"X": rng.integers(lo, hi + 1, (2, p.n)), "g": gains(), "eps": 1}})
    out.append(per_vector("per_vector_stall50", 4, stall=0.5, seed=seed + 11))
    if not quick:
        out.append(per_vector("per_vector_stall90", 4, idle=0.3, stall=0.9,
                              seed=seed + 13))
    return out


KERNEL = Kernel(
    name="rmsnorm",
    top="rmsnorm_int",
    summary="integer RMSNorm (sum of squares, division, square root, reciprocal)",
    params_cls=spec.RmsNormParams,
    cli_params=(
        CliParam("n", int, 64, "vector length (hidden size)"),
        CliParam("lanes", int, 16, "elements per cycle (must divide n)"),
        CliParam("multiplier", str, "dsp", "multiplier style: dsp (a*b → DSP48E2) or booth"),
    ),
    component_path="rtl.vitallm.rmsnorm_int:RmsNorm",
    testbench="hwsim.sim.tb_rmsnorm_int",
    golden="hwsim.golden.vitallm.rmsnorm_int:rmsnorm_int",
    cycles=spec.latency_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    costs=(_costs.RMSNORM_INT,),
    manifest=manifest,
    cases=cases,
    test_params=(dict(n=8, lanes=4), dict(n=3, lanes=1)),
)
