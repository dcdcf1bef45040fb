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


def _stage_plot(out: Path, summary: dict) -> Path | None:
    """A bar per node: cycles per vector (its initiation interval, the throughput it allows),
    the slowest highlighted. Written atomically; ``None`` for an empty design."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ks = summary["kernels"]
    if not ks:
        return None
    vals = [k.get("interval", k["cycles_per_vector"]) for k in ks]
    worst = max(vals)
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(ks) + 1.2))
    ax.barh(range(len(ks)), vals, color=["tab:red" if v == worst else "tab:blue" for v in vals])
    ax.set_yticks(range(len(ks)), [f"{k['name'][-28:]} ({k['kernel']})" for k in ks],
                  fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("cycles per vector (red: the slowest stage sets the throughput)")
    fig.tight_layout()
    path = out / "stages.png"
    tmp = out / ".stages.png.tmp"
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path


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
    r.table(["node", "op", "kernel", "parameters", "vectors", "latency / vector",
             "interval"],
            [[k["name"], k["op_type"], k["kernel"], _params_text(k["params"]), k["vectors"],
              k["cycles_per_vector"], k.get("interval", "")] for k in summary["kernels"]])
    plot = _stage_plot(out, summary)
    if plot is not None:
        r.figure(plot, "Cycles per vector of each node")
    r.heading("Lowering")
    r.table(["step", "exact", "outputs equal", "max Δ (LSB)", "bound (LSB)"],
            [[s["name"], s["exact"], s["equal"], max(s["max_lsb"].values(), default=0),
              max(s["bound_lsb"].values(), default=0)] for s in summary["lowering"]["steps"]])
    r.heading("Figures")
    rows = [[k, summary[k]] for k in ("cycles", "latency_us", "luts", "ffs", "dsps", "brams",
                                       "fits", "area_mm2", "energy_uj", "power_mw")
            if summary.get(k) is not None]
    r.table(["figure", "value"], rows)
    return r.write(out)
