"""Registry entry and stimulus of the general int8 matrix–vector unit."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common import int8_mvu as spec
from quant.qtype import quantize_multiplier

from . import CliParam, Kernel
from ._contract import interval, latency, port


def flag(text: str) -> bool:
    """A yes/no parameter on the command line: ``1``/``true``/``yes`` or ``0``/``false``/``no``."""
    value = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if text.lower() not in value:
        raise ValueError(text)  # argparse: "invalid flag value"
    return value[text.lower()]


def manifest(p: spec.Int8MvuParams) -> dict:
    return {
        "kernel": "int8-mvu",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "acc_width": p.acc_width,
        "numeric": {
            "function": "hwsim.golden.common.int8_mvu.int8_mvu: acc[r] = sum_j W[r, j] * x[j] "
                        "(+ bias[r]); y[r] = sat(round(acc[r] * M * 2**-S) + zero_point), "
                        "with relu max(y, zero_point)",
            "acc": {"width": p.acc_width, "signed": True,
                    "meaning": "exact: cols int8 products plus an int32 bias cannot overflow it"},
            **({"M": {"width": p.mult_bits, "per_row": True,
                      "meaning": "requantization multiplier of each row, low bits of its s word"},
                "S": {"width": p.shift_bits, "per_row": True,
                      "meaning": "requantization right shift of each row, high bits of its s "
                                 "word"}}
               if p.per_row_scale else
               {"M": port("mult", p.mult_bits, "requantization multiplier, sampled with the "
                          "first x beat of each vector"),
                "S": port("shift", p.shift_bits, "requantization right shift, sampled with M")}),
            "zero_point": p.zero_point,
            "relu": p.relu,
            "rounding": p.out.rounding.value,
            "overflow": p.out.overflow.value,
            "act": p.act.to_dict(),
            "out": p.out.to_dict(),
            "weight_word": "w beat r*(cols/lanes)+k holds W[r, k*lanes:(k+1)*lanes] as int8 "
                           "codes, lane 0 in bits [0, 8)",
            "bias_word": ("b beat r holds bias[r], int32 two's complement, accumulator units"
                          if p.bias else None),
            "scale_word": ("s beat r holds M[r] | S[r] << mult_bits, the scale of row r"
                           if p.per_row_scale else None),
            "x_beat": "x beat k of a vector holds x[k*lanes:(k+1)*lanes], lane 0 in the "
                      "low 8 bits",
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


def vector_scales(a: dict) -> list[tuple[int, int]]:
    """Each vector's ``(M, S)``: a case's ``mult``/``shift`` are one value for every vector or
    one per vector (the RTL samples them with each vector's first ``x`` beat)."""
    n = np.atleast_2d(a["X"]).shape[0]
    M = np.broadcast_to(np.asarray(a["mult"]), (n,))
    S = np.broadcast_to(np.asarray(a["shift"]), (n,))
    return [(int(m), int(s)) for m, s in zip(M, S, strict=True)]


def side_values(p: spec.Int8MvuParams, a: dict) -> list[tuple[tuple[str, int], ...]]:
    """Per ``x`` beat, the ``mult``/``shift`` a host drives with it: the vector's own on its
    first beat (where the RTL samples them), their bitwise complement on the other beats."""
    if p.per_row_scale:  # no side ports: the rows' scales are in the s memory
        return [() for _ in range(np.atleast_2d(a["X"]).shape[0] * p.chunks)]
    mm, sm = (1 << p.mult_bits) - 1, (1 << p.shift_bits) - 1
    return [(("mult", m), ("shift", s)) if k == 0 else (("mult", ~m & mm), ("shift", ~s & sm))
            for m, s in vector_scales(a) for k in range(p.chunks)]


def x_words(p: spec.Int8MvuParams, a: dict) -> list[int]:
    """The ``x`` beats of a case's vectors: ``lanes`` codes per beat, lane 0 lowest."""
    X = np.atleast_2d(a["X"]).astype(np.int64) & 0xFF
    return [int(sum(int(c) << (8 * i) for i, c in enumerate(v[k * p.lanes:(k + 1) * p.lanes])))
            for v in X for k in range(p.chunks)]


def golden(p: spec.Int8MvuParams, a: dict) -> np.ndarray:
    """The golden codes of a case, (vectors, rows), each vector with its own ``M``/``S`` (or,
    ``per_row_scale``, each row with its own)."""
    X = np.atleast_2d(a["X"])
    bias = a["B"] if p.bias else None
    if p.per_row_scale:
        return spec.int8_mvu(a["W"], X, a["mult"], a["shift"], bias, p.act, p.out,
                             p.zero_point, p.relu)
    return np.stack([spec.int8_mvu(a["W"], x, m, s, bias, p.act, p.out, p.zero_point, p.relu)
                     for x, (m, s) in zip(X, vector_scales(a), strict=True)])


def _scale(acc, mult_bits: int, ratio: float = 1.0) -> tuple[int, int]:
    """A rescale that maps the accumulators' spread onto most of the 8-bit range (× ratio)."""
    peak = max(float(np.max(np.abs(acc))), 1.0)
    return quantize_multiplier(100.0 / peak * ratio, bits=mult_bits)


def cases(p: spec.Int8MvuParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random data, corner cases and stress on the handshakes.

    * ``random``: uniform int8 weights, activations (and bias), 2 vectors (cycles checked);
    * ``extreme_saturate``: −128 weights and the most negative/positive activations with
      ``M·2**-S = 1`` (the longest accumulation; saturates) and with the largest ``M`` and
      ``S = 0``;
    * ``extreme_rescaled``: the same accumulation rescaled into range (its exact extreme);
    * ``per_vector``: 4 back-to-back vectors, each with its own ``M``/``S`` (cycles checked);
    * ``idle_backpressure``: 30 % idle input, 40 % output stalls;
    * ``per_vector_stall50`` / ``per_vector_stall90``: 6 vectors with their own ``M``/``S``
      under 50 % / 90 % output stalls.

    With ``per_row_scale`` the scales are one per row instead (``mult``/``shift`` of length
    ``rows``, the ``s`` stream's contents): each row its own ratio in the random and
    ``per_vector*`` cases, every row the same extreme value in the extreme ones.
    """
    rng = np.random.default_rng(seed)
    R, C = p.rows, p.cols
    lo, hi = p.act.min_code, p.act.max_code

    def arrays(W, X, M, S):
        if p.per_row_scale:
            if np.ndim(M) == 0 and S == 0:  # an extreme case: the same value in every row
                M, S = np.full(R, M), np.full(R, S)
            else:  # each row its own scale, from its own accumulators
                ratios = (1.0, 0.3, 2.1, 0.07, 0.55, 1.6)
                scales = [_scale(X @ W[r], p.mult_bits, ratios[r % 6]) for r in range(R)]
                M, S = (np.array(v) for v in zip(*scales, strict=True))
        a = {"W": W, "X": X, "mult": M, "shift": S}
        if p.bias:
            a["B"] = rng.integers(-(1 << 12), 1 << 12, R)
        return a

    def rnd(n):
        return rng.integers(-128, 128, (R, C)), rng.integers(lo, hi + 1, (n, C))

    def per_vector(name, n, **extra):
        W, X = rnd(n)
        ratios = (1.0, 0.3, 2.1, 0.07, 0.55, 1.6)
        scales = [_scale(W @ x, p.mult_bits, ratios[i % 6]) for i, x in enumerate(X)]
        return {"name": name, **extra, "arrays": arrays(
            W, X, np.array([m for m, _ in scales]), np.array([s for _, s in scales]))}

    out = []
    W, X = rnd(2)
    out.append({"name": "random", "arrays": arrays(W, X, *_scale(X @ W.T, p.mult_bits))})
    if not quick:
        Wm, Xe = np.full((R, C), -128), np.array([[lo] * C, [hi] * C])
        out.append({"name": "extreme_saturate", "arrays": arrays(Wm, Xe, 1, 0)})
        out.append({"name": "extreme_max_mult", "arrays": arrays(
            Wm, Xe, (1 << p.mult_bits) - 1, 0)})
        out.append({"name": "extreme_rescaled", "arrays": arrays(
            Wm, Xe, *_scale(np.array([C * 128 * max(-lo, hi)]), p.mult_bits))})
        out.append(per_vector("per_vector", 4))
    W, X = rnd(3)
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": arrays(W, X, *_scale(X @ W.T, p.mult_bits))})
    out.append(per_vector("per_vector_stall50", 6, stall=0.5, seed=seed + 11))
    if not quick:
        out.append(per_vector("per_vector_stall90", 6, idle=0.3, stall=0.9, seed=seed + 13))
    return out


KERNEL = Kernel(
    name="int8-mvu",
    top="int8_mvu",
    summary="int8 × int8/uint8 matrix–vector unit: bias, zero point, ReLU, 8-bit requantization",
    params_cls=spec.Int8MvuParams,
    cli_params=(
        CliParam("lanes", int, 16, "int8 multipliers (must divide cols)"),
        CliParam("rows", int, 64, "matrix rows (outputs per vector)"),
        CliParam("cols", int, 64, "matrix columns (activations per vector)"),
        CliParam("act_signed", flag, True, "activations are int8 (1) or uint8 (0)"),
        CliParam("out_signed", flag, True, "outputs are int8 (1) or uint8 (0)"),
        CliParam("relu", flag, False, "clip the output at the zero point"),
        CliParam("zero_point", int, 0, "output code of real 0"),
        CliParam("bias", flag, False, "add an int32 bias per row (b stream)"),
        CliParam("per_row_scale", flag, False, "one M/S per row (s stream), no mult/shift "
                 "ports"),
    ),
    component_path="rtl.common.int8_mvu:Int8MVU",
    testbench="hwsim.sim.tb_int8_mvu",
    golden="hwsim.golden.common.int8_mvu:int8_mvu",
    cycles=spec.latency_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(lanes=4, rows=8, cols=16),
                 dict(lanes=3, rows=2, cols=9, act_signed=False, out_signed=False, relu=True,
                      zero_point=3, bias=True),
                 dict(lanes=2, rows=5, cols=6, relu=True, zero_point=-4, bias=True,
                      per_row_scale=True)),
)
