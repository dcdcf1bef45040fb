"""Registry entry and stimulus of the weight-streamed ternary projection (AXI4 from DRAM)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.vitallm import weight_stream as spec

from . import CliParam, Kernel
from ._contract import latency, one_at_a_time, port
from .ternary_mvu import _scales_per_vector, scale_for


def manifest(p: spec.WeightStreamParams) -> dict:
    lat = latency(spec.latency_cycles, p, unit="vector", first="x beat", last="y beat")
    return {
        "kernel": "ternary-stream",
        "params": {f.name: str(getattr(p, f.name)) if f.name in ("act", "out")
                   else getattr(p, f.name) for f in dataclasses.fields(p)},
        "acc_width": p.acc_width,
        "numeric": {
            "function": "hwsim.golden.vitallm.weight_stream.weight_stream (= ternary_mvu): "
                        "y[r] = sat(round(acc[r] * M * 2**-S)), acc[r] = sum_j W[r, j] * x[j]",
            "M": port("mult", p.mult_bits, "requantization multiplier, sampled with the first "
                      "x beat of each vector"),
            "S": port("shift", p.shift_bits, "requantization right shift, sampled with M"),
            "rounding": p.out.rounding.value,
            "overflow": p.out.overflow.value,
            "dram_layout": "HF BitNet 2-bit packed: rows/4 packed rows of cols bytes from "
                           "base_addr, byte (j, c) holds W[j + i*rows/4, c] + 1 in bits "
                           "[2i, 2i+2)",
            "axi": {"bursts": spec.burst_plan(p), "data_bytes": p.data_bytes,
                    "addr_width": p.addr_width},
            "x_beat": "x beat k holds x[k*data_bytes:(k+1)*data_bytes], lane 0 lowest",
            "y_beat": "y beat j holds rows j, j+P, j+2P, j+3P (P = rows/4), lane 0 lowest",
        },
        "latency": lat,
        "interval": one_at_a_time(lat, unit="vector"),
        "cycles": {"vector": spec.latency_cycles(p),
                   "weight_stream_bound": spec.weight_stream_bound_cycles(p)},
    }


def dram(a: dict) -> spec.DramTiming:
    """A case's DRAM: ``bpc``, ``latency`` and ``outstanding`` (0: unbounded) arrays."""
    o = int(a["outstanding"])
    return spec.DramTiming(int(a["bpc"]), int(a["latency"]), o or None)


def vector_scales(a: dict) -> list[tuple[int, int]]:
    n = np.atleast_2d(a["X"]).shape[0]
    M = np.broadcast_to(np.asarray(a["mult"]), (n,))
    S = np.broadcast_to(np.asarray(a["shift"]), (n,))
    return [(int(m), int(s)) for m, s in zip(M, S, strict=True)]


def x_words(p: spec.WeightStreamParams, a: dict) -> list[int]:
    X = np.atleast_2d(a["X"]).astype(np.int64) & ((1 << p.act.width) - 1)
    D = p.data_bytes
    return [int(sum(int(c) << (p.act.width * i) for i, c in enumerate(v[k * D:(k + 1) * D])))
            for v in X for k in range(p.chunks)]


def side_values(p: spec.WeightStreamParams, a: dict) -> list[tuple[tuple[str, int], ...]]:
    """``mult``/``shift`` with each vector's first ``x`` beat, their complement on the others."""
    mm, sm = (1 << p.mult_bits) - 1, (1 << p.shift_bits) - 1
    return [(("mult", m), ("shift", s)) if k == 0 else (("mult", ~m & mm), ("shift", ~s & sm))
            for m, s in vector_scales(a) for k in range(p.chunks)]


def golden(p: spec.WeightStreamParams, a: dict) -> np.ndarray:
    X = np.atleast_2d(a["X"])
    return np.stack([spec.weight_stream(a["W"], x, m, s, p.out, p.act)
                     for x, (m, s) in zip(X, vector_scales(a), strict=True)])


def expected_cycles(p: spec.WeightStreamParams, a: dict) -> int:
    """Vectors one after another: each starts in the cycle after the previous last ``y``."""
    return np.atleast_2d(a["X"]).shape[0] * spec.projection_cycles(p, dram(a))


def cases(p: spec.WeightStreamParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random data at DRAM bandwidths ``D, D/2, D/4`` bytes/cycle × latencies 0, 20, 100
    (cycles checked against the closed form), corner codes, two vectors with their own
    ``M``/``S``, a memory holding one burst at a time (latency exposed: the exact recurrence),
    and 30 % idle ``x`` with 40 % ``y`` stalls."""
    rng = np.random.default_rng(seed)
    R, C, D = p.rows, p.cols, p.data_bytes
    lo, hi = p.act.min_code, p.act.max_code

    def case(name, W, X, M, S, bpc=D, lat=0, outstanding=0, **extra):
        return {"name": name, **extra, "arrays": {
            "W": W, "X": X, "mult": M, "shift": S, "bpc": bpc, "latency": lat,
            "outstanding": outstanding}}

    def rnd(n):
        return rng.integers(-1, 2, (R, C)), rng.integers(lo, hi + 1, (n, C))

    out = []
    bws = [b for b in (D, D // 2, D // 4) if b >= 1 and D % b == 0]
    for bpc in bws[:1] if quick else bws:
        for lat in (0, 20) if quick else (0, 20, 100):
            W, X = rnd(1)
            out.append(case(f"bw{bpc}_lat{lat}", W, X, *scale_for(X @ W.T, p.mult_bits),
                            bpc=bpc, lat=lat))
    if not quick:
        for name, wv, xv in (("all_minus_one", -1, lo), ("all_plus_one", 1, hi),
                             ("all_zero", 0, hi)):
            out.append(case(name, np.full((R, C), wv), np.full((1, C), xv), 1, 0, lat=3))
        W, X = rnd(2)
        out.append(case("two_vectors", W, X, *_scales_per_vector(X, W, p.mult_bits),
                        bpc=bws[-1], lat=7))
        W, X = rnd(1)
        out.append(case("one_outstanding_lat20", W, X, *scale_for(X @ W.T, p.mult_bits),
                        lat=20, outstanding=1))
    W, X = rnd(2)
    out.append(case("idle_backpressure", W, X, *_scales_per_vector(X, W, p.mult_bits),
                    bpc=bws[-1], lat=5, idle=0.3, stall=0.4, seed=seed + 7))
    return out


KERNEL = Kernel(
    name="ternary-stream",
    top="ternary_stream",
    summary="ternary projection with its weights streamed from DRAM over AXI4 (HF 2-bit packed)",
    params_cls=spec.WeightStreamParams,
    cli_params=(
        CliParam("rows", int, 64, "matrix rows (a multiple of 4)"),
        CliParam("cols", int, 64, "matrix columns (a multiple of data_bytes)"),
        CliParam("data_bytes", int, 16, "AXI data bus bytes (4·data_bytes weights per beat)"),
        CliParam("burst_beats", int, 16, "beats per INCR burst (1 … 256)"),
        CliParam("base_addr", int, 0, "byte address of the packed weights"),
        CliParam("dram_bytes_per_cycle", int, None, "DRAM bandwidth the cycle count assumes "
                 "(default: data_bytes, one beat per cycle)"),
        CliParam("dram_latency", int, 20, "DRAM latency the cycle count assumes"),
    ),
    component_path="rtl.vitallm.weight_stream:TernaryStream",
    testbench="hwsim.sim.tb_ternary_stream",
    golden="hwsim.golden.vitallm.weight_stream:weight_stream",
    cycles=spec.latency_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(rows=8, cols=16, data_bytes=4, burst_beats=4),
                 dict(rows=12, cols=32, data_bytes=8, burst_beats=3, base_addr=0x40,
                      dram_bytes_per_cycle=2, dram_latency=0)),
)
