"""Registry entry and stimulus of the multi-threshold unit (``threshold``)."""

from __future__ import annotations

import numpy as np

from hwsim.golden.common import threshold as spec
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes

from . import CliParam, Kernel
from ._contract import interval, latency
from .int8_mvu import flag


def threshold_cli_params(lanes: int = 1, in_bits: int = 16, out_signed: bool = False,
                         function: str = "sigmoid", scale: float = 1e-3,
                         out_scale: float = 1 / 256, out_zero: int = 0
                         ) -> spec.ThresholdParams:
    """The unit of ``function`` (:data:`hwsim.golden.common.threshold.FUNCTIONS`) on signed
    ``in_bits`` accumulators of scale ``scale`` into an 8-bit quantizer (``out_scale``,
    ``out_zero``): its table from :func:`hwsim.golden.common.threshold.table_for` over the
    whole input range."""
    return spec.table_for(function, scale, out_scale, out_zero, out_signed, in_bits, lanes)


def manifest(p: spec.ThresholdParams) -> dict:
    return {
        "kernel": "threshold",
        "params": {"lanes": p.lanes, "in_bits": p.in_bits, "out_signed": p.out_signed,
                   "breakpoints": list(p.breakpoints), "codes": list(p.codes)},
        "numeric": {
            "function": "hwsim.golden.common.threshold.threshold: y = codes[#{i : x >= "
                        "breakpoints[i]}] for every lane",
            "table": f"{len(p.breakpoints)} strictly increasing breakpoints, "
                     f"{len(p.codes)} codes",
            "rounding": "none: comparisons and a lookup (tables of functions are rounded half "
                        "to even when built, hwsim.golden.common.threshold.build_table)",
            "overflow": "none: every code lies in the output range",
            "in": p.inp.to_dict(),
            "out": p.out.to_dict(),
            "x_beat": f"lanes signed {p.in_bits}-bit codes, lane 0 in the low bits",
            "y_beat": "lanes 8-bit codes, lane i the code of lane i of the matching x beat",
        },
        "latency": latency(spec.stream_cycles, p, 1, unit="beat", first="x beat",
                           last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="beat"),
        "cycles": {"beat": spec.stream_cycles(p, 1), "interval": spec.interval_cycles(p),
                   "pipeline": spec.latency_cycles(p)},
    }


def x_words(p: spec.ThresholdParams, a: dict) -> list[int]:
    """The ``x`` beats of a case: rows of ``X`` (beats, lanes), lane 0 lowest."""
    return [pack_lanes(row, p.in_bits) for row in np.asarray(a["X"]).reshape(-1, p.lanes)]


def y_codes(p: spec.ThresholdParams, words) -> list[int]:
    """The output codes of ``y`` beat words, beat by beat, lane 0 first."""
    return [int(v) for w in words for v in unpack_lanes(w, 8, p.lanes, signed=p.out_signed)]


def golden(p: spec.ThresholdParams, a: dict) -> np.ndarray:
    """The golden codes of a case, beat by beat, lane 0 first."""
    return spec.threshold(np.asarray(a["X"]).reshape(-1, p.lanes), p).ravel()


def expected_cycles(p: spec.ThresholdParams, a: dict) -> int:
    return spec.stream_cycles(p, np.asarray(a["X"]).reshape(-1, p.lanes).shape[0])


def cases(p: spec.ThresholdParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random inputs, every breakpoint's neighbours, and stress on the handshakes.

    * ``random``: 8 beats of uniform inputs over the signed ``in_bits`` range (cycles checked);
    * ``breakpoints``: ``B − 1``, ``B``, ``B + 1`` of every breakpoint (clipped to the range),
      padded with random inputs to whole beats (cycles checked);
    * ``extremes``: only the smallest and largest inputs;
    * ``idle_backpressure``: 30 % idle input, 40 % output stalls, inputs near breakpoints;
    * ``stall90``: 50 % idle input, 90 % output stalls.
    """
    rng = np.random.default_rng(seed)
    lo, hi = p.inp.min_code, p.inp.max_code
    bps = np.asarray(p.breakpoints, np.int64)

    def rnd(beats):
        return rng.integers(lo, hi + 1, (beats, p.lanes))

    def near(beats):
        if not bps.size:
            return rnd(beats)
        v = rng.choice(bps, (beats, p.lanes)) + rng.integers(-1, 2, (beats, p.lanes))
        return np.clip(v, lo, hi)

    edges = np.clip(np.concatenate([bps - 1, bps, bps + 1]), lo, hi) if bps.size \
        else np.array([0])
    pad = -len(edges) % p.lanes
    edges = np.concatenate([edges, rng.integers(lo, hi + 1, pad)]).reshape(-1, p.lanes)
    out = [{"name": "random", "arrays": {"X": rnd(8)}},
           {"name": "breakpoints", "arrays": {"X": edges}}]
    if not quick:
        out.append({"name": "extremes", "arrays": {"X": rng.choice([lo, hi], (6, p.lanes))}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"X": near(24)}})
    if not quick:
        out.append({"name": "stall90", "idle": 0.5, "stall": 0.9, "seed": seed + 11,
                    "arrays": {"X": near(16)}})
    return out


KERNEL = Kernel(
    name="threshold",
    top="threshold",
    summary="multi-threshold activation: a wide accumulator compared with sorted breakpoints "
            "→ an 8-bit code (a float sigmoid, GELU, SiLU … before a quantizer)",
    params_cls=threshold_cli_params,
    cli_params=(
        CliParam("lanes", int, 1, "codes per beat (one comparator bank each)"),
        CliParam("in_bits", int, 16, "signed input (accumulator) width, 2 … 32"),
        CliParam("out_signed", flag, False, "output codes are int8 (1) or uint8 (0)"),
        CliParam("function", str, "sigmoid",
                 f"the table's function: {', '.join(sorted(spec.FUNCTIONS))}"),
        CliParam("scale", float, 1e-3, "accumulator scale"),
        CliParam("out_scale", float, 1 / 256, "output quantizer scale"),
        CliParam("out_zero", int, 0, "output quantizer zero point"),
    ),
    component_path="rtl.common.threshold:Threshold",
    testbench="hwsim.sim.tb_threshold",
    golden="hwsim.golden.common.threshold:threshold",
    cycles=lambda p: spec.stream_cycles(p, 1),
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(lanes=1, in_bits=16, function="sigmoid", scale=4e-4),
                 dict(lanes=2, in_bits=20, out_signed=True, function="gelu", scale=1e-5,
                      out_scale=0.02, out_zero=-10)),
)
