"""Registry entry and stimulus of the KV-cache writer (AXI4 write port)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.vitallm import kv_write as spec
from hwsim.golden.vitallm.weight_stream import DramTiming

from . import CliParam, Kernel
from ._contract import interval, latency


def manifest(p: spec.KvWriteParams) -> dict:
    return {
        "kernel": "kv-write",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "numeric": {
            "function": "hwsim.golden.vitallm.kv_write.kv_write: DRAM bytes "
                        "[base_addr + row*row_bytes, +row_bytes) read back == the row's codes",
            "rounding": "none (codes are stored as they are)",
            "overflow": "none",
            "kv_beat": "kv beat k of a row holds codes k*data_bytes … (k+1)*data_bytes-1, "
                       "lane 0 lowest",
            "done_beat": "the row index, once its B response is taken",
        },
        "latency": latency(spec.latency_cycles, p, unit="row", first="kv beat",
                           last="done beat"),
        "interval": interval(spec.row_interval_cycles, p, unit="row"),
        "cycles": {"row": spec.latency_cycles(p), "interval": spec.row_interval_cycles(p)},
    }


def dram(a: dict) -> DramTiming:
    return DramTiming(int(a["bpc"]), int(a["latency"]))


def golden(p: spec.KvWriteParams, a: dict) -> np.ndarray:
    return spec.kv_write(a["rows"], a["index"], p)


def expected_cycles(p: spec.KvWriteParams, a: dict) -> int:
    return spec.stream_cycles(p, len(np.ravel(a["index"])), dram(a))


def cases(p: spec.KvWriteParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random rows at bandwidths ``D, D/4`` × latencies 0, 20, 100 (cycles checked), the
    extreme codes, a repeated index (the last write wins), and 30 % idle / 40 % stalls."""
    rng = np.random.default_rng(seed)
    D, n = p.data_bytes, p.row_bytes

    def case(name, k, bpc=D, lat=0, index=None, **extra):
        rows = rng.integers(-128, 128, (k, n))
        idx = rng.permutation(p.rows)[:k] if index is None else np.asarray(index)
        return {"name": name, **extra,
                "arrays": {"rows": rows, "index": idx, "bpc": bpc, "latency": lat}}

    bws = sorted({D, max(1, D // 4)}, reverse=True)
    out = [case(f"bw{b}_lat{lat}", min(3, p.rows), b, lat)
           for b in (bws[:1] if quick else bws) for lat in ((0, 20) if quick else (0, 20, 100))]
    if not quick:
        c = case("extremes", 2, index=[0, p.rows - 1], lat=5)
        c["arrays"]["rows"] = np.array([[-128] * n, [127] * n])
        out.append(c)
        out.append(case("same_index_twice", 2, index=[1 % p.rows] * 2, lat=3))
    out.append(case("idle_backpressure", min(3, p.rows), bws[-1], 7, idle=0.3, stall=0.4,
                    seed=seed + 7))
    return out


KERNEL = Kernel(
    name="kv-write",
    top="kv_write",
    summary="KV-cache writer: int8 K/V rows to DRAM, one AXI4 INCR burst per row",
    params_cls=spec.KvWriteParams,
    cli_params=(
        CliParam("row_bytes", int, 64, "codes per row (head_dim; a power of two)"),
        CliParam("data_bytes", int, 16, "AXI data bus bytes"),
        CliParam("rows", int, 64, "cache capacity in rows"),
        CliParam("base_addr", int, 0, "byte address of row 0"),
        CliParam("dram_latency", int, 20, "DRAM latency the cycle count assumes"),
    ),
    component_path="rtl.vitallm.kv_write:KvWrite",
    testbench="hwsim.sim.tb_kv_write",
    golden="hwsim.golden.vitallm.kv_write:kv_write",
    cycles=spec.latency_cycles,
    actions=lambda p: spec.action_counts(p, 1),
    manifest=manifest,
    cases=cases,
    test_params=(dict(row_bytes=16, data_bytes=4, rows=8, base_addr=0x1000),
                 dict(row_bytes=8, data_bytes=8, rows=4)),
)
