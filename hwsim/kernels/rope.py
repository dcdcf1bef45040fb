"""Registry entry and stimulus of the rotary position embedding unit (``rope``)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common import rope as spec

from . import CliParam, Kernel
from ._contract import interval, latency


def manifest(p: spec.RopeParams) -> dict:
    return {
        "kernel": "rope",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "numeric": {
            "function": "hwsim.golden.common.rope.rope: for token t (position t mod tokens), "
                        "head, i < h = head_dim/2: a_i = x_i*C[t,i] - x_{i+h}*S[t,i], "
                        "a_{i+h} = x_{i+h}*C[t,i] + x_i*S[t,i]; y = sat_int8(round(a * mult * "
                        "2**-shift))",
            "acc": {"width": p.acc_width, "signed": True, "meaning": "exact a"},
            "tables": {"words": p.tokens * p.half, "width": p.table_bits, "signed": True,
                       "frac": p.frac, "order": "word t*h + i holds C[t][i] (and S[t][i])"},
            "mult": p.mult, "shift": p.shift,
            "rounding": "half_even", "overflow": "saturate",
            "x_beat": "one int8 code per beat, (tokens, heads, head_dim) row-major; the "
                      "position wraps after tokens tokens",
            "y_beat": "one int8 code per beat, the same order",
        },
        "latency": latency(spec.stream_cycles, p, 1, unit="token", first="x beat",
                           last="y beat"),
        "interval": interval(spec.interval_cycles, p, unit="token"),
        "cycles": {"token": spec.stream_cycles(p, 1), "beat_latency": spec.latency_cycles(p),
                   "interval": spec.interval_cycles(p)},
    }


def sequences(p: spec.RopeParams, a: dict) -> np.ndarray:
    """A case's sequences, (n, tokens, heads·head_dim)."""
    return np.asarray(a["X"]).reshape(-1, p.tokens, p.token_codes)


def x_words(p: spec.RopeParams, a: dict) -> list[int]:
    """The ``x`` beats: one code each (its 8-bit pattern), stream order."""
    return [int(v) & 0xFF for v in sequences(p, a).ravel()]


def y_codes(p: spec.RopeParams, words) -> list[int]:
    return [(int(w) & 0xFF) - ((int(w) & 0x80) << 1) for w in words]


def y_beats(p: spec.RopeParams, a: dict) -> int:
    return sequences(p, a).size


def golden(p: spec.RopeParams, a: dict) -> np.ndarray:
    """The golden rotated codes of a case, in stream order."""
    return spec.rope(sequences(p, a), p).ravel()


def expected_cycles(p: spec.RopeParams, a: dict) -> int:
    return spec.stream_cycles(p, sequences(p, a).shape[0] * p.tokens)


def cases(p: spec.RopeParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random codes and stress on the handshakes:

    * ``random``: one sequence of uniform int8 codes (cycles checked);
    * ``two_sequences``: two back-to-back sequences (the position wraps; cycles checked);
    * ``extremes``: only −128 and 127 (the largest ``|a|``);
    * ``idle_backpressure``: two sequences, 30 % idle input, 40 % output stalls;
    * ``stall90``: 50 % idle input, 90 % output stalls.
    """
    rng = np.random.default_rng(seed)

    def seqs(n):
        return rng.integers(-128, 128, (n, p.tokens, p.token_codes))

    out = [{"name": "random", "arrays": {"X": seqs(1)}}]
    if not quick:
        out.append({"name": "two_sequences", "arrays": {"X": seqs(2)}})
        out.append({"name": "extremes", "arrays": {"X": rng.choice(
            [-128, 127], (1, p.tokens, p.token_codes))}})
    out.append({"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": seed + 7,
                "arrays": {"X": seqs(2)}})
    if not quick:
        out.append({"name": "stall90", "idle": 0.5, "stall": 0.9, "seed": seed + 11,
                    "arrays": {"X": seqs(1)}})
    return out


KERNEL = Kernel(
    name="rope",
    top="rope",
    summary="rotary position embedding on int8 codes: cos/sin ROMs, half-split pairs, "
            "8-bit requantization",
    params_cls=spec.RopeParams,
    cli_params=(
        CliParam("head_dim", int, 8, "codes per head (even)"),
        CliParam("heads", int, 2, "heads per token"),
        CliParam("tokens", int, 4, "positions per sequence (table rows)"),
        CliParam("frac", int, 14, "fractional bits of the cos/sin codes"),
        CliParam("mult", int, 1 << 15, "requantization multiplier (16 bits)"),
        CliParam("shift", int, 29, "requantization right shift"),
    ),
    component_path="rtl.common.rope:Rope",
    testbench="hwsim.sim.tb_rope",
    golden="hwsim.golden.common.rope:rope",
    cycles=lambda p: spec.stream_cycles(p, 1),
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(head_dim=4, heads=2, tokens=3),
                 dict(head_dim=2, heads=1, tokens=2, frac=8, mult=40000, shift=23),
                 dict(head_dim=6, heads=3, tokens=5, frac=12, mult=50000, shift=27)),
)
