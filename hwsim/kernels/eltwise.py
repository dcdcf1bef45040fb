"""Registry entry and stimulus of the element-wise add/mul unit."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common import eltwise as spec
from hwsim.golden.common.lanes import pack_lanes

from . import CliParam, Kernel
from ._contract import interval, latency
from .int8_mvu import flag


def number(text: str) -> int:
    """An integer constant (zero point, multiplier, shift): not a size, so the CLI's size
    budget does not apply."""
    return int(text, 0)


def manifest(p: spec.EltwiseParams) -> dict:
    formula = ("t = (a - a_zero) * a_mult + (b - b_zero) * b_mult" if p.op == "add"
               else "t = (a - a_zero) * (b - b_zero) * mult")
    return {
        "kernel": "eltwise",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "t_width": p.t_width,
        "numeric": {
            "function": "hwsim.golden.common.eltwise.eltwise: per lane " + formula
                        + "; y = sat(round_half_even(t * 2**-shift) + out_zero), with relu "
                          "max(y, out_zero)",
            "real_factors": list(spec.real_factors(p)),
            "rounding": p.out.rounding.value,
            "overflow": p.out.overflow.value,
            "a": p.a.to_dict(),
            "b": p.b.to_dict(),
            "out": p.out.to_dict(),
            "beats": "a, b and y beats hold lanes codes each, lane 0 in the low 8 bits; a and "
                     "b beats pair one to one, one y beat per pair",
        },
        "latency": latency(spec.stream_cycles, p, unit="beat", first="a/b beat pair",
                           last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="beat"),
        "cycles": {"beat": spec.stream_cycles(p), "pipeline": spec.latency_cycles(p)},
    }


def words(codes, lanes: int) -> list[int]:
    """Beats of a ``(beats, lanes)`` code array: ``lanes`` codes per beat, lane 0 lowest."""
    return [pack_lanes(row, 8) for row in np.asarray(codes).reshape(-1, lanes)]


def golden(p: spec.EltwiseParams, a: dict) -> np.ndarray:
    """The golden codes of a case, ``(beats, lanes)``."""
    return spec.eltwise(a["A"], a["B"], p)


def cases(p: spec.EltwiseParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random data, the extremes and stress on the handshakes.

    * ``random``: uniform codes, 8 beats (cycles checked);
    * ``extremes``: every pair of the most negative, zero-point and most positive codes (the
      largest ``|t|``; saturates where the parameters scale it past the output range);
    * ``idle_backpressure``: 30 % idle cycles on ``a`` and on ``b`` (drawn independently, so the
      two streams arrive unequally), 40 % output stalls;
    * ``stall90``: 50 % idle inputs, 90 % output stalls.
    """
    rng = np.random.default_rng(seed)
    L = p.lanes

    def rnd(beats):
        return {"A": rng.integers(p.a.min_code, p.a.max_code + 1, (beats, L)),
                "B": rng.integers(p.b.min_code, p.b.max_code + 1, (beats, L))}

    out = [{"name": "random", "arrays": rnd(8)}]
    if not quick:
        va = [p.a.min_code, p.a_zero, p.a.max_code]
        vb = [p.b.min_code, p.b_zero, p.b.max_code]
        pairs = np.array([(x, y) for x in va for y in vb])
        n = -(-len(pairs) // L) * L
        pairs = np.resize(pairs, (n, 2))  # repeat to whole beats
        out.append({"name": "extremes", "arrays": {"A": pairs[:, 0].reshape(-1, L),
                                                   "B": pairs[:, 1].reshape(-1, L)}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": rnd(12)})
    if not quick:
        out.append({"name": "stall90", "idle": 0.5, "stall": 0.9, "seed": seed + 11,
                    "arrays": rnd(10)})
    return out


KERNEL = Kernel(
    name="eltwise",
    top="eltwise",
    summary="element-wise add / multiply of two int8/uint8 code streams (residuals, gates)",
    params_cls=spec.EltwiseParams,
    cli_params=(
        CliParam("lanes", int, 1, "codes per beat"),
        CliParam("op", str, "add", "add or mul"),
        CliParam("a_signed", flag, True, "a codes are int8 (1) or uint8 (0)"),
        CliParam("b_signed", flag, True, "b codes are int8 (1) or uint8 (0)"),
        CliParam("out_signed", flag, True, "output codes are int8 (1) or uint8 (0)"),
        CliParam("a_zero", number, 0, "zero point of a"),
        CliParam("b_zero", number, 0, "zero point of b"),
        CliParam("out_zero", number, 0, "zero point of the output"),
        CliParam("a_mult", number, 1 << (spec.MULT_BITS - 1), "add: multiplier of a - a_zero"),
        CliParam("b_mult", number, 1 << (spec.MULT_BITS - 1), "add: multiplier of b - b_zero"),
        CliParam("mult", number, 0, "mul: multiplier of the product"),
        CliParam("shift", number, spec.MULT_BITS - 1, "rounding right shift S"),
        CliParam("relu", flag, False, "clip the output at its zero point"),
    ),
    component_path="rtl.common.eltwise:Eltwise",
    testbench="hwsim.sim.tb_eltwise",
    golden="hwsim.golden.common.eltwise:eltwise",
    cycles=spec.stream_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(
        # y = a + b: the extremes saturate both ways
        dict(lanes=1),
        # a gate: uint8 a, int8 b with zero points, x/64 rescale, ReLU (saturates at 255)
        dict(lanes=4, op="mul", a_signed=False, a_zero=7, b_zero=-3, out_signed=False,
             out_zero=5, mult=1 << 18, shift=24, relu=True),
        # a residual with unequal scales (params_for(0.05, 0.03 → 0.07)), zero points
        dataclasses.asdict(spec.params_for("add", 0.05, 0, 0.03, 3, 0.07, -2, lanes=3,
                                           b_signed=False)),
    ),
)
