"""``report.md`` / ``report.html`` / ``summary.json`` of a compiled model."""

from __future__ import annotations

import json
from pathlib import Path

from hwsim.files import atomic_write_text
from hwsim.report import Report

__all__ = ["write_reports"]


def _params_text(params: dict) -> str:
    keep = ("lanes", "rows", "cols", "act_signed", "out_signed", "relu", "zero_point", "bias")
    return ", ".join(f"{k}={params[k]}" for k in keep if k in params) or \
        ", ".join(f"{k}={v}" for k, v in list(params.items())[:6])


def write_reports(out: Path, summary: dict) -> dict[str, Path]:
    """Write ``summary.json``, ``report.md`` and ``report.html`` into ``out`` (atomically)
    and copy the lowered graph to ``out/lowered.onnx``."""
    out = Path(out)
    low = out / "lower" / "lowered.onnx"
    if low.exists():
        tmp = out / ".lowered.onnx.tmp"
        tmp.write_bytes(low.read_bytes())
        tmp.replace(out / "lowered.onnx")
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=1, default=str) + "\n")
    r = Report(f"hwsim compile — {summary['target']}")
    eq = summary["rtl_equals_golden"]
    match = summary.get("cycles_match")
    r.para(f"{summary['nodes']} ONNX nodes; {len(summary['kernels'])} kernel instances; "
           f"RTL == golden: {'not simulated' if eq is None else ('yes' if eq else 'NO')}"
           f"{'' if eq is None else ' (' + summary['sim'] + ')'}; cycles {summary['cycles']}"
           f"{'' if match is None else (' (== RTL)' if match else ' (RTL differs)')}"
           f"; largest deviation from {summary['reference']}: "
           f"{summary['max_error_lsb_vs_onnxruntime']:.3g} output LSB.")
    r.heading("Nodes")
    r.table(["node", "op", "kernel", "parameters", "vectors", "cycles / vector"],
            [[k["name"], k["op_type"], k["kernel"], _params_text(k["params"]), k["vectors"],
              k["cycles_per_vector"]] for k in summary["kernels"]])
    r.heading("Lowering")
    r.table(["step", "exact", "outputs equal", "max |Δ| LSB", "bound LSB"],
            [[s["name"], s["exact"], s["equal"], max(s["max_lsb"].values(), default=0),
              max(s["bound_lsb"].values(), default=0)] for s in summary["lowering"]["steps"]])
    r.heading("Figures")
    rows = [[k, summary[k]] for k in ("cycles", "latency_us", "luts", "ffs", "dsps", "brams",
                                       "fits", "area_mm2", "energy_uj", "power_mw")
            if summary.get(k) is not None]
    r.table(["figure", "value"], rows)
    return r.write(out)
