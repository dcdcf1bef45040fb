"""Registry entry and stimulus of the LUT nonlinearity (``lut-act``)."""

from __future__ import annotations

import numpy as np

from hwsim.golden.common import lut_act as spec
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes

from . import CliParam, Kernel
from ._contract import interval, latency
from .int8_mvu import flag


def lut_cli_params(lanes: int = 4, in_signed: bool = True, out_signed: bool = False,
                   function: str = "sigmoid", in_scale: float = 0.05, in_zero: int = 0,
                   out_scale: float = 1 / 256, out_zero: int = 0) -> spec.LutActParams:
    """The kernel of ``function`` (:data:`hwsim.golden.common.lut_act.FUNCTIONS`) between an
    input quantizer (``in_scale``, ``in_zero``) and an output quantizer (``out_scale``,
    ``out_zero``): its table from :func:`hwsim.golden.common.lut_act.table_for`."""
    table = spec.table_for(function, in_scale, in_zero, out_scale, out_zero, in_signed,
                           out_signed)
    return spec.LutActParams(lanes=lanes, in_signed=in_signed, out_signed=out_signed,
                             table=table)


def manifest(p: spec.LutActParams) -> dict:
    return {
        "kernel": "lut-act",
        "params": {"lanes": p.lanes, "in_signed": p.in_signed, "out_signed": p.out_signed,
                   "table": list(p.table)},
        "numeric": {
            "function": "hwsim.golden.common.lut_act.lut_act: y = table[x - min_code] for "
                        "every lane",
            "table": "params.table[i] is the output code of input code min_code + i "
                     f"(min_code {p.inp.min_code}); {spec.CODES} entries",
            "rounding": "none: a table lookup (tables of named functions are rounded half to "
                        "even when built, hwsim.golden.common.lut_act.table_for)",
            "overflow": "none: every table entry lies in the output code range",
            "in": p.inp.to_dict(),
            "out": p.out.to_dict(),
            "x_beat": "lanes codes, lane 0 in the low 8 bits",
            "y_beat": "lanes codes, lane i the table entry of lane i of the matching x beat",
        },
        "latency": latency(spec.stream_cycles, p, 1, unit="beat", first="x beat",
                           last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="beat"),
        "cycles": {"beat": spec.stream_cycles(p, 1), "interval": spec.interval_cycles(p),
                   "pipeline": spec.latency_cycles(p)},
    }


def x_words(p: spec.LutActParams, a: dict) -> list[int]:
    """The ``x`` beats of a case: rows of ``X`` (beats, lanes), lane 0 lowest."""
    return [pack_lanes(row, 8) for row in np.asarray(a["X"]).reshape(-1, p.lanes)]


def y_codes(p: spec.LutActParams, words) -> list[int]:
    """The output codes of ``y`` beat words, beat by beat, lane 0 first."""
    return [int(v) for w in words for v in unpack_lanes(w, 8, p.lanes, signed=p.out_signed)]


def golden(p: spec.LutActParams, a: dict) -> np.ndarray:
    """The golden codes of a case, beat by beat, lane 0 first."""
    return spec.lut_act(np.asarray(a["X"]).reshape(-1, p.lanes), p).ravel()


def expected_cycles(p: spec.LutActParams, a: dict) -> int:
    return spec.stream_cycles(p, np.asarray(a["X"]).reshape(-1, p.lanes).shape[0])


def cases(p: spec.LutActParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random codes, every code, and stress on the handshakes.

    * ``random``: 8 beats of uniform codes (cycles checked);
    * ``every_code``: all 256 input codes in order, padded with random codes to whole beats
      (cycles checked);
    * ``extremes``: only the smallest and largest codes;
    * ``idle_backpressure``: 30 % idle input, 40 % output stalls;
    * ``stall90``: 50 % idle input, 90 % output stalls.
    """
    rng = np.random.default_rng(seed)
    lo, hi = p.inp.min_code, p.inp.max_code

    def rnd(beats):
        return rng.integers(lo, hi + 1, (beats, p.lanes))

    every = np.arange(lo, hi + 1)
    pad = -len(every) % p.lanes
    every = np.concatenate([every, rng.integers(lo, hi + 1, pad)]).reshape(-1, p.lanes)
    out = [{"name": "random", "arrays": {"X": rnd(8)}},
           {"name": "every_code", "arrays": {"X": every}}]
    if not quick:
        out.append({"name": "extremes", "arrays": {"X": rng.choice([lo, hi], (6, p.lanes))}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"X": rnd(24)}})
    if not quick:
        out.append({"name": "stall90", "idle": 0.5, "stall": 0.9, "seed": seed + 11,
                    "arrays": {"X": rnd(16)}})
    return out


KERNEL = Kernel(
    name="lut-act",
    top="lut_act",
    summary="LUT nonlinearity: one 256-entry table per lane (sigmoid, GELU, tanh, SiLU …)",
    params_cls=lut_cli_params,
    cli_params=(
        CliParam("lanes", int, 4, "codes per beat (one ROM each)"),
        CliParam("in_signed", flag, True, "input codes are int8 (1) or uint8 (0)"),
        CliParam("out_signed", flag, False, "output codes are int8 (1) or uint8 (0)"),
        CliParam("function", str, "sigmoid",
                 f"the table's function: {', '.join(sorted(spec.FUNCTIONS))}"),
        CliParam("in_scale", float, 0.05, "input quantizer scale"),
        CliParam("in_zero", int, 0, "input quantizer zero point"),
        CliParam("out_scale", float, 1 / 256, "output quantizer scale"),
        CliParam("out_zero", int, 0, "output quantizer zero point"),
    ),
    component_path="rtl.common.lut_act:LutAct",
    testbench="hwsim.sim.tb_lut_act",
    golden="hwsim.golden.common.lut_act:lut_act",
    cycles=lambda p: spec.stream_cycles(p, 1),
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(lanes=1, function="sigmoid"),
                 dict(lanes=4, in_signed=False, out_signed=True, function="gelu",
                      in_scale=0.03, in_zero=128, out_scale=0.02, out_zero=-10)),
)
