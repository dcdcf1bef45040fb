"""Design-space sweeps: a grid of architecture parameters, the Pareto fronts, CSV/JSON/PNG.

``hwsim estimate bitnet-3b --target vitallm --sweep lanes=8,16,32 sram_kb=60,120,240`` runs
every combination, prints a table and writes ``sweep.csv``, ``sweep.json`` and two plots
(tokens/s vs area or LUTs, tokens/s vs mJ/token) with their Pareto fronts, through a staged
folder so nothing half-written is left.

Sweep keys are parameter paths of the architecture (``tint.lanes``, ``dram.peak_bandwidth`` …, a
quantity written with its unit, e.g. ``dram.peak_bandwidth=40GB/s``) or one of the short names in
:data:`ALIASES`.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.files import staged_dir

from . import units
from .arch import SCHEMAS, Arch, load_arch
from .estimate import estimate_arch
from .tables import load_tables
from .workload import model_workloads

__all__ = ["ALIASES", "pareto_front", "parse_sweep", "run_sweep", "write_sweep"]

#: short name → (parameter path, how a value is read)
ALIASES = {
    "lanes": ("tint.lanes", "ternary adds per cycle per tile"),
    "tiles": ("tint.tiles", "ternary MVU tiles"),
    "booth_lanes": ("booth.lanes", "int8 MACs per cycle"),
    "sram_kb": ("sram", "total SRAM in KB, split in the file's proportions"),
    "dram_gbps": ("dram.peak_bandwidth", "off-chip peak bandwidth in GB/s"),
    "clock_mhz": ("clock", "clock in MHz"),
}
_ALIAS_UNIT = {"dram_gbps": ("bandwidth", "GB/s"), "clock_mhz": ("frequency", "MHz"),
               "sram_kb": ("bits", "KB")}


def _value(arch: Arch, key: str, text: str, opt: str = "--sweep"):
    """One sweep value → {parameter path: SI value}."""
    field_key = ALIASES[key][0] if key in ALIASES else key
    if key in _ALIAS_UNIT:
        dim, unit = _ALIAS_UNIT[key]
        v = units.parse(f"{text} {unit}", dim, f"{opt} {key}")
        if key == "sram_kb":
            total = arch.sram_bits
            return {k: arch[k] * v / total for k in ("sram.weights", "sram.activations", "sram.kv")}
        return {field_key: v}
    schema = SCHEMAS[arch.kind]
    if field_key not in schema:
        known = sorted(set(ALIASES) | {k for k, f in schema.items() if f.kind != "name"})
        raise HwsimError(f"{opt}: unknown parameter {key!r}; known: {', '.join(known)}")
    f = schema[field_key]
    if f.kind == "count":
        try:
            v = int(text)
        except ValueError:
            raise HwsimError(f"{opt} {key}: {text!r} is not an integer") from None
        if v < 1:
            raise HwsimError(f"{opt} {key}: must be ≥ 1, not {v}")
        return {field_key: v}
    if f.kind == "ratio":
        try:
            v = float(text)
        except ValueError:
            raise HwsimError(f"{opt} {key}: {text!r} is not a number") from None
        if not v > 0 or (f.max is not None and v > f.max):
            raise HwsimError(f"{opt} {key}: {text!r} is out of range")
        return {field_key: v}
    if f.kind in units.DIMENSIONS:
        return {field_key: units.parse(text, f.kind, f"{opt} {key}")}
    raise HwsimError(f"{opt}: parameter {key!r} cannot be swept")


def parse_sweep(arch: Arch, specs: list[str],
                opt: str = "--sweep") -> list[tuple[str, list[str], list[dict]]]:
    """``["lanes=8,16,32", …]`` → [(key, texts, [overrides…]), …], every value checked."""
    axes, seen = [], set()
    for spec in specs:
        if "=" not in spec:
            raise HwsimError(f"{opt}: {spec!r} is not KEY=V1,V2,…")
        key, vals = spec.split("=", 1)
        key = key.strip()
        if key in seen:
            raise HwsimError(f"{opt}: {key} given twice")
        seen.add(key)
        texts = [v.strip() for v in vals.split(",") if v.strip()]
        if not texts:
            raise HwsimError(f"{opt} {key}: no values")
        axes.append((key, texts, [_value(arch, key, t, opt) for t in texts]))
    return axes


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated when *maximizing* x[0] and *minimizing* x[1]
    (:func:`hwsim.sweep.pareto.pareto_front` on index-tagged rows)."""
    from hwsim.sweep.pareto import pareto_front as front

    rows = [{"i": i, "x": a, "y": b} for i, (a, b) in enumerate(points)]
    return sorted(r["i"] for r in front(rows, "x", "y", higher_is_better=True))


def run_sweep(model: str, target: str, specs: list[str], prompt: int = 64, context: int = 128,
              lm_head: bool = False, max_points: int | None = None) -> dict:
    """Every point of the grid ``specs``; at most ``max_points`` (default
    :data:`hwsim.limits.MAX_SWEEP_POINTS`), checked before any point is priced."""
    from hwsim.limits import MAX_SWEEP_POINTS, check_sweep_grid

    base = load_arch(target)
    axes = parse_sweep(base, specs)
    check_sweep_grid([len(t) for _, t, _ in axes],
                     MAX_SWEEP_POINTS if max_points is None else max_points)
    tables = load_tables(base.tables)
    workloads = model_workloads(model, prompt, context, lm_head)
    rows = []
    cost_key = "area_mm2" if base.kind == "asic" else "luts"
    for combo in itertools.product(*[list(zip(t, o, strict=True)) for _, t, o in axes]):
        values, label = {}, {}
        for (key, _, _), (text, over) in zip(axes, combo, strict=True):
            values.update(over)
            label[key] = text
        arch = base.with_values(values)
        m = estimate_arch(model, arch, tables, prompt, context, lm_head, workloads).metrics()
        rows.append({**label, **{k: m[k] for k in ("decode_tokens_per_s", "prefill_s",
                                                   "energy_per_token_mj", "power_mw", cost_key)},
                     **({"fits": m["fits"]} if "fits" in m else {})})
    tps = [r["decode_tokens_per_s"] for r in rows]
    front_cost = pareto_front(list(zip(tps, [r[cost_key] for r in rows], strict=True)))
    front_energy = pareto_front(list(zip(tps, [r["energy_per_token_mj"] for r in rows],
                                         strict=True)))
    for i, r in enumerate(rows):
        r[f"pareto_{cost_key}"] = i in front_cost
        r["pareto_energy"] = i in front_energy
    return {"model": model, "target": base.name, "kind": base.kind,
            "axes": {k: t for k, t, _ in axes}, "cost": cost_key, "points": rows}


def table(result: dict) -> str:
    rows = result["points"]
    cols = list(rows[0])
    fmt = {"decode_tokens_per_s": "{:.2f}", "prefill_s": "{:.3f}", "energy_per_token_mj": "{:.3f}",
           "power_mw": "{:.2f}", "area_mm2": "{:.4f}", "luts": "{:d}"}
    cells = [[fmt.get(c, "{}").format(r[c]) if not isinstance(r[c], bool) else
              ("*" if r[c] else "") for c in cols] for r in rows]
    w = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.rjust(w[i]) for i, c in enumerate(cols))]
    lines += ["  ".join(x[i].rjust(w[i]) for i in range(len(cols))) for x in cells]
    lines.append(f"(* in pareto_{result['cost']}: on the Pareto front of decode tokens/s vs "
                 f"{result['cost']}; * in pareto_energy: of decode tokens/s vs mJ per token)")
    return "\n".join(lines)


def write_sweep(result: dict, out: Path) -> list[Path]:
    """Write sweep.csv, sweep.json, pareto_cost.png, pareto_energy.png into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["points"]
    cost = result["cost"]
    with staged_dir(out) as stage:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        (stage / "sweep.csv").write_text(buf.getvalue())
        (stage / "sweep.json").write_text(json.dumps(result, indent=1))
        label = {"area_mm2": "area (mm²)", "luts": "LUTs"}[cost]
        for name, xkey, xlabel, front in (
                ("pareto_cost.png", cost, label, f"pareto_{cost}"),
                ("pareto_energy.png", "energy_per_token_mj", "energy per decode token (mJ)",
                 "pareto_energy")):
            fig, ax = plt.subplots(figsize=(6, 4.2))
            xs = [r[xkey] for r in rows]
            ys = [r["decode_tokens_per_s"] for r in rows]
            ax.scatter(xs, ys, c="0.6", s=18, label="design points")
            pf = sorted((r[xkey], r["decode_tokens_per_s"]) for r in rows if r[front])
            ax.plot([p[0] for p in pf], [p[1] for p in pf], "o-", c="C3", label="Pareto front")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("decode tokens/s")
            ax.set_title(f"{result['model']} on {result['target']}: "
                         + ", ".join(result["axes"]))
            ax.grid(alpha=0.3)
            ax.legend()
            fig.tight_layout()
            fig.savefig(stage / name, dpi=110)
            plt.close(fig)
    return [out / n for n in ("sweep.csv", "sweep.json", "pareto_cost.png", "pareto_energy.png")]
