"""Where does a trained int8 SwiftChannel lose NMSE? Rounding ablation of a run's integer model.

``hwsim swiftchannel ablate RUN [--snr 10,30] [--test 96] [--json]`` (:func:`ablate`).

Runs the run's integer model (``int8.safetensors``: the QAT-trained int8 weights, biases, zero
points and requantizer multipliers) in float64 arithmetic, where every activation point — the
input, head, each SPAB's ``c1``, ``c2`` and gated output, the tail and the up conv — either
rounds and clips to its uint8 code as the hardware does, or keeps the exact real code
(``acc · M · 2**-S + z``, unrounded and unclipped). With every point rounded it is the golden
(:func:`hwsim.golden.swiftchannel.network.swiftchannel_int`; :func:`ablate` checks that the two
agree on every output code); with every point exact only the int8 weights and the gate LUT
remain. For each point it reports the NMSE change when only that point is exact (what rounding
it costs alone) and when only that point rounds (its cost on top of exact activations), per
SNR, on fresh test channels (seed 1000, as ``hwsim swiftchannel eval``).

It also reports the *uint8 output floor*: the float student's own output rounded to a uint8
code (the run's output scale and zero point, and the best per-tensor grid found over scales
0.4 … 1.6 × the run's and zero points within ±8 of its). An int8 student that reproduced the
float student exactly up to its uint8 output code would still lose that much; to lose less it
would have to be a better estimator than the float student at that SNR.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.golden.swiftchannel import network as gold
from models.channels import (
    TEST_SPEED_RANGE_KMH,
    generate_channels,
    ls_observation,
    nmse_db,
    pack_real,
    unpack_real,
)

__all__ = ["FLOOR_SCALES", "ablate", "forward", "points", "uint8_output_floor"]


def _factor(mult, shift) -> np.ndarray:
    return np.asarray(mult, np.float64) * 2.0 ** -np.asarray(shift, np.float64)


def _chan(v) -> np.ndarray:
    return np.asarray(v, np.float64).reshape(1, -1, 1, 1)


def _uint8(real_code, zp) -> np.ndarray:
    """``real_code`` rounded (ties up) and clipped to a uint8 code, centred by ``zp``."""
    return np.clip(np.floor(real_code + 0.5), 0, 255) - zp


def points(m: gold.IntModel) -> list[str]:
    """The activation points of ``m`` in network order: input, head, each SPAB's ``c1``, ``c2``
    and gated output, tail, up."""
    return (["in", "head"] + [f"block{i}.{k}" for i in range(len(m.blocks))
                              for k in ("c1", "c2", "out")] + ["tail", "up"])


def forward(m: gold.IntModel, X: np.ndarray, exact: set[str]) -> np.ndarray:
    """The integer model on real LS input ``X``; points in ``exact`` keep their real code.
    Returns the dequantized output after the PixelShuffle."""

    def code(real_code, zp, name, relu=False):
        if name in exact:
            return (np.maximum(real_code, 0) if relu else real_code) - zp
        return _uint8(real_code, zp)

    if "in" in exact:
        v = X.astype(np.float32).astype(np.float64) / m.s_in
    else:
        v = gold.quantize_codes(X, m.s_in, m.z_in).astype(np.float64) - m.z_in

    def layer(v, c, name, relu=False):
        real = gold.conv_centred(v, c) * _chan(_factor(c.mult, c.shift)) + c.z_out
        return code(real, c.z_out, name, relu)

    v = layer(v, m.head, "head")
    for i, b in enumerate(m.blocks):
        c1 = layer(v, b.c1, f"block{i}.c1", relu=True)
        c2 = layer(c1, b.c2, f"block{i}.c2")
        idx = np.clip(np.floor(c2 * _factor(b.lut_mult, b.lut_shift)) + gold.LUT_SIZE // 2, 0,
                      gold.LUT_SIZE - 1).astype(np.int64)
        s = v * _factor(b.sum_mult_x, b.sum_shift) + c2 * _factor(b.sum_mult_c, b.sum_shift)
        v = code(s * m.lut[idx] + b.z_out, b.z_out, f"block{i}.out")
    v = layer(v, m.tail, "tail")
    v = layer(v, m.up, "up")
    return gold.pixel_shuffle_int(v, m.rf, m.rs) * m.s_out


#: scales tried for the best uint8 output grid, as multiples of the run's output scale
FLOOR_SCALES = np.linspace(0.4, 1.6, 49)


def uint8_output_floor(H: np.ndarray, f: np.ndarray, s_out: float, z_out: int) -> dict:
    """NMSE cost (dB) of rounding the real outputs ``f`` (``(n, 2, R, C)``, estimates of the
    complex channels ``H``) to a per-tensor uint8 code: on the grid ``(s_out, z_out)`` and on
    the best grid over :data:`FLOOR_SCALES` × (``z_out`` ± 8)."""

    def cost(s, z):
        return nmse_db(H, unpack_real(_uint8(f / s + z, z) * s))

    base, run = nmse_db(H, unpack_real(f)), cost(s_out, z_out)
    best = min([(run, 1.0, z_out)] + [(cost(s_out * k, z), float(k), z) for k in FLOOR_SCALES
                                      for z in range(z_out - 8, z_out + 9)])
    return {"float": base, "run_grid_db": run - base,
            "best_grid_db": best[0] - base, "best_scale": best[1] * s_out, "best_zero": best[2]}


def ablate(run: Path, snrs: list[float], n_test: int = 96) -> dict:
    """The rounding ablation of ``run`` at each SNR in ``snrs`` on ``n_test`` fresh test
    channels: ``{"run", "n_test", "snrs": [{"snr_db", "float", "int8", "all_exact",
    "output_floor", "points": {point: {"exact_alone_db", "rounds_alone_db"}}}]}`` (NMSE in dB;
    the per-point figures are differences)."""
    from .pipeline import load_run
    from .train import predict

    geom, net, m, _ = load_run(run)
    H = generate_channels(geom, n_test, TEST_SPEED_RANGE_KMH, seed=1000)
    rng = np.random.default_rng(1000)
    pts = points(m)
    out = {"run": str(run), "n_test": n_test, "snrs": []}
    for snr in snrs:
        X = pack_real(ls_observation(H, geom, snr, rng))
        golden = gold.dequantize_output(gold.swiftchannel_int(gold.quantize_input(X, m), m), m)
        rounded = forward(m, X, set())
        if not np.array_equal(np.round(rounded / m.s_out), np.round(golden / m.s_out)):
            raise RuntimeError("the ablation forward does not reproduce the golden's codes")

        def nmse(y):
            return nmse_db(H, unpack_real(y))

        base, all_exact = nmse(rounded), nmse(forward(m, X, set(pts)))
        floor = uint8_output_floor(H, predict(net, X), m.s_out, m.z_out)
        row = {"snr_db": snr, "float": floor["float"], "int8": base, "all_exact": all_exact,
               "output_floor": floor, "points": {}}
        for p in pts:
            row["points"][p] = {"exact_alone_db": nmse(forward(m, X, {p})) - base,
                                "rounds_alone_db": nmse(forward(m, X, set(pts) - {p})) - all_exact}
        out["snrs"].append(row)
    return out
