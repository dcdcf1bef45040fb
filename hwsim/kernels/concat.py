"""Registry entry and stimulus of the two-stream concatenation unit."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common import concat as spec

from . import CliParam, Kernel
from ._contract import interval, latency
from .int8_mvu import flag


def manifest(p: spec.ConcatParams) -> dict:
    return {
        "kernel": "concat",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "numeric": {
            "function": "hwsim.golden.common.concat.concat: y[..., :len_a] = a, "
                        "y[..., len_a:] = b; every code passes unchanged",
            "rounding": "none: codes are moved, not computed",
            "overflow": "none",
            "codes": p.code.to_dict(),
            "beats": "a, b and y beats hold lanes codes each, lane 0 in the low 8 bits; per "
                     "vector the len_a/lanes beats of a, then the len_b/lanes beats of b",
        },
        "latency": latency(spec.stream_cycles, p, unit="vector", first="a beat",
                           last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="vector"),
        "cycles": {"vector": spec.stream_cycles(p), "pipeline": spec.latency_cycles(p)},
    }


def golden(p: spec.ConcatParams, a: dict) -> np.ndarray:
    """The golden codes of a case: ``A`` ``(vectors·len_a/lanes, lanes)`` and ``B`` likewise
    give ``(vectors, len_a + len_b)``."""
    return spec.concat(np.asarray(a["A"]).reshape(-1, p.len_a),
                       np.asarray(a["B"]).reshape(-1, p.len_b), p)


def vectors_of(p: spec.ConcatParams, a: dict) -> int:
    """Vectors in a case."""
    return int(np.asarray(a["A"]).size // p.len_a)


def cases(p: spec.ConcatParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random data, the extremes and stress on the handshakes.

    * ``random``: uniform codes, 3 vectors (cycles checked);
    * ``extremes``: the lowest and highest codes in ``a``, the other way round in ``b``;
    * ``idle_backpressure``: 30 % idle cycles on ``a`` and on ``b`` (drawn independently), 40 %
      output stalls, 4 vectors;
    * ``stall90``: 50 % idle inputs, 90 % output stalls.
    """
    rng = np.random.default_rng(seed)
    L, qt = p.lanes, p.code

    def rnd(vectors):
        return {"A": rng.integers(qt.min_code, qt.max_code + 1, (vectors * p.beats_a, L)),
                "B": rng.integers(qt.min_code, qt.max_code + 1, (vectors * p.beats_b, L))}

    out = [{"name": "random", "arrays": rnd(3)}]
    if not quick:
        lo_hi = np.resize([qt.min_code, qt.max_code], 2 * p.len_a).reshape(-1, L)
        hi_lo = np.resize([qt.max_code, qt.min_code], 2 * p.len_b).reshape(-1, L)
        out.append({"name": "extremes", "arrays": {"A": lo_hi, "B": hi_lo}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": rnd(4)})
    if not quick:
        out.append({"name": "stall90", "idle": 0.5, "stall": 0.9, "seed": seed + 11,
                    "arrays": rnd(3)})
    return out


KERNEL = Kernel(
    name="concat",
    top="concat",
    summary="concatenation of two int8/uint8 code streams along the vector axis",
    params_cls=spec.ConcatParams,
    cli_params=(
        CliParam("lanes", int, 1, "codes per beat"),
        CliParam("len_a", int, 4, "codes per vector of a"),
        CliParam("len_b", int, 4, "codes per vector of b"),
        CliParam("signed", flag, True, "codes are int8 (1) or uint8 (0)"),
    ),
    component_path="rtl.common.concat:Concat",
    testbench="hwsim.sim.tb_concat",
    golden="hwsim.golden.common.concat:concat",
    cycles=spec.stream_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(
        dict(lanes=1, len_a=3, len_b=5),
        dict(lanes=2, len_a=4, len_b=2, signed=False),
        dict(lanes=4, len_a=8, len_b=4),
    ),
)
