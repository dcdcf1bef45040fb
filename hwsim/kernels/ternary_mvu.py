"""Registry entry and stimulus of the ternary MVU kernel."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.vitallm import ternary_mvu as spec
from quant.qtype import quantize_multiplier

from . import CliParam, Kernel, _costs
from ._contract import I2S_WEIGHTS, interval, latency


def manifest(p: spec.TernaryMvuParams) -> dict:
    return {
        "kernel": "ternary-mvu",
        "params": {f.name: str(getattr(p, f.name)) if f.name in ("act", "out")
                   else getattr(p, f.name) for f in dataclasses.fields(p)},
        "acc_width": p.acc_width,
        "numeric": {
            "function": "hwsim.golden.vitallm.ternary_mvu.ternary_mvu: y[r] = sat(round(acc[r] * M * "
                        "2**-S)), acc[r] = sum_j W[r, j] * x[j]",
            "acc": {"width": p.acc_width, "signed": True,
                    "meaning": "exact: cols * 2**(act.width-1) cannot overflow it"},
            "M": {"port": "mult", "width": p.mult_bits, "signed": False,
                  "meaning": "requantization multiplier, sampled with the first x beat of "
                             "each vector"},
            "S": {"port": "shift", "width": p.shift_bits, "signed": False,
                  "meaning": "requantization right shift, sampled with M"},
            "rounding": p.out.rounding.value,
            "overflow": p.out.overflow.value,
            "act": p.act.to_dict(),
            "out": p.out.to_dict(),
            "weight_code": {k: v for k, v in I2S_WEIGHTS.items() if k != "word"},
            "weight_word": "w beat r*(cols/lanes)+k holds W[r, k*lanes:(k+1)*lanes] as "
                           "weight codes, lane 0 in bits [0, 2)",
            "x_beat": "x beat k of a vector holds x[k*lanes:(k+1)*lanes], lane 0 in the "
                      "low act.width bits",
            "y_beat": "one code per row, rows 0 .. rows-1 in order",
        },
        "latency": latency(spec.latency_cycles, p, unit="vector",
                           first="x beat", last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="vector"),
        "cycles": {
            "vector": spec.latency_cycles(p),
            "interval": spec.interval_cycles(p),
            "weight_load": spec.weight_load_cycles(p),
        },
    }


def scale_for(acc: np.ndarray, mult_bits: int) -> tuple[int, int]:
    """A rescale that maps the accumulators' spread onto most of the int8 range."""
    peak = max(float(np.max(np.abs(acc))), 1.0)
    return quantize_multiplier(100.0 / peak, bits=mult_bits)


def vector_scales(a: dict) -> list[tuple[int, int]]:
    """Each vector's ``(M, S)``: a case's ``mult``/``shift`` are one value for every vector or
    one per vector (the RTL samples them with each vector's first ``x`` beat)."""
    n = np.atleast_2d(a["X"]).shape[0]
    M = np.broadcast_to(np.asarray(a["mult"]), (n,))
    S = np.broadcast_to(np.asarray(a["shift"]), (n,))
    return [(int(m), int(s)) for m, s in zip(M, S, strict=True)]


def side_values(p: spec.TernaryMvuParams, a: dict) -> list[tuple[tuple[str, int], ...]]:
    """Per ``x`` beat, the ``mult``/``shift`` a host drives with it: the vector's own on its
    first beat (where the RTL samples them), their bitwise complement on the other beats (the
    ports are free there), so an RTL that samples late is caught."""
    mm, sm = (1 << p.mult_bits) - 1, (1 << p.shift_bits) - 1
    return [(("mult", m), ("shift", s)) if k == 0 else (("mult", ~m & mm), ("shift", ~s & sm))
            for m, s in vector_scales(a) for k in range(p.chunks)]


def golden(p: spec.TernaryMvuParams, a: dict) -> np.ndarray:
    """The golden codes of a case, (vectors, rows), each vector with its own ``M``/``S``."""
    X = np.atleast_2d(a["X"])
    return np.stack([spec.ternary_mvu(a["W"], x, m, s, p.out, p.act)
                     for x, (m, s) in zip(X, vector_scales(a), strict=True)])


def _scales_per_vector(X, W, mult_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """A different rescale for every vector (ratios 1, 0.3, 2.1, 0.07, … of :func:`scale_for`)
    so a vector requantized with its neighbour's ``M``/``S`` gives different codes."""
    ratios = (1.0, 0.3, 2.1, 0.07, 0.55, 1.6)
    Ms, Ss = [], []
    for i, x in enumerate(X):
        peak = max(float(np.max(np.abs(W @ x))), 1.0)
        m, s = quantize_multiplier(100.0 / peak * ratios[i % len(ratios)], bits=mult_bits)
        Ms.append(m)
        Ss.append(s)
    return np.array(Ms), np.array(Ss)


def cases(p: spec.TernaryMvuParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random data, corner cases and stress on the handshakes.

    * ``random``: uniform ternary weights and int8 activations, 2 vectors (cycles checked);
    * ``all_minus_one`` / ``all_plus_one`` with −128 / 127: the longest accumulation, both signs,
      with a 1:1 rescale so the output saturates;
    * ``all_zero``: every lane skipped;
    * ``per_vector``: 4 back-to-back vectors, each with its own ``M``/``S`` (cycles
      checked);
    * ``idle_backpressure``: random data with 30 % idle input cycles and 40 % output stalls;
    * ``per_vector_stall50`` / ``per_vector_stall90``: 6 back-to-back vectors, each with its
      own ``M``/``S``, under 50 % output stalls / 30 % idle input and 90 % output stalls — a
      stall that holds a vector's last row in the pipeline while the next vector loads must not
      change that row's rescale.
    """
    rng = np.random.default_rng(seed)
    R, C = p.rows, p.cols

    def rnd(n):
        W = rng.integers(-1, 2, (R, C))
        X = rng.integers(p.act.min_code, p.act.max_code + 1, (n, C))
        return W, X

    def per_vector(name, n, **extra):
        W, X = rnd(n)
        M, S = _scales_per_vector(X, W, p.mult_bits)
        return {"name": name, **extra, "arrays": {"W": W, "X": X, "mult": M, "shift": S}}

    out = []
    W, X = rnd(2)
    M, S = scale_for(X @ W.T, p.mult_bits)
    out.append({"name": "random", "arrays": {"W": W, "X": X, "mult": M, "shift": S}})
    if not quick:
        lo, hi = p.act.min_code, p.act.max_code
        one = (1, 0)  # M·2**-S = 1: the output saturates on any large accumulator
        for name, wv, xv in (("all_minus_one", -1, lo), ("all_plus_one", 1, hi),
                             ("plus_one_min_act", 1, lo), ("all_zero", 0, hi)):
            out.append({"name": name, "arrays": {
                "W": np.full((R, C), wv), "X": np.full((1, C), xv),
                "mult": one[0], "shift": one[1]}})
        # a rescale that keeps the longest accumulation in range: exercises the exact extremes
        out.append({"name": "extreme_rescaled", "arrays": {
            "W": np.full((R, C), -1), "X": np.full((1, C), lo),
            "mult": scale_for(np.array([C * abs(lo)]), p.mult_bits)[0],
            "shift": scale_for(np.array([C * abs(lo)]), p.mult_bits)[1]}})
        out.append(per_vector("per_vector", 4))
    W, X = rnd(3)
    M, S = scale_for(X @ W.T, p.mult_bits)
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"W": W, "X": X, "mult": M, "shift": S}})
    out.append(per_vector("per_vector_stall50", 6, stall=0.5, seed=seed + 11))
    if not quick:
        out.append(per_vector("per_vector_stall90", 6, idle=0.3, stall=0.9, seed=seed + 13))
    return out


KERNEL = Kernel(
    name="ternary-mvu",
    top="ternary_mvu",
    summary="multiplier-free ternary × int8 matrix–vector unit with int8 requantization",
    params_cls=spec.TernaryMvuParams,
    cli_params=(
        CliParam("lanes", int, 16, "ternary weights processed per cycle (must divide cols)"),
        CliParam("rows", int, 256, "matrix rows (outputs per vector)"),
        CliParam("cols", int, 256, "matrix columns (activations per vector)"),
        CliParam("pipeline", str, "short", "short (4 stages, fewest registers) or deep "
                 "(registered adder trees and requantizer: higher Fmax, same interval)"),
    ),
    component_path="rtl.vitallm.ternary_mvu:TernaryMVU",
    testbench="hwsim.sim.tb_ternary_mvu",
    golden="hwsim.golden.vitallm.ternary_mvu:ternary_mvu",
    cycles=spec.latency_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    costs=(_costs.TERNARY_MVU,),
    manifest=manifest,
    cases=cases,
    test_params=(dict(lanes=4, rows=6, cols=16), dict(lanes=3, rows=2, cols=9),
                 dict(lanes=8, rows=5, cols=16, pipeline="deep")),
)
