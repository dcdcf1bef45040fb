"""Validation against silicon: published accelerators beside the estimator's figures.

A *silicon point* (``hwsim/estimate/silicon/*.yaml``, schema ``hwsim-silicon/1``) is one
published accelerator: the architecture file that describes it (``target``), the model it ran
(with its status, as every parameter has), and its published figures — each a metric of
:meth:`hwsim.estimate.estimate.Estimate.metrics` at the prompt and context the paper states (or
the file assumes, saying so), with its source.

:func:`validation_table` estimates and sets each published figure beside its estimate, marking
the row ``fitted (param)`` when a parameter of the architecture was chosen to match that figure
(its ``fitted_to`` names the metric) and ``predicted`` otherwise. :func:`fit_parameter` finds
the value of one parameter that reproduces a figure (bisection): what a published number
implies about an unpublished one. :func:`sensitivity` varies each unpublished parameter and
reports how the point's figures move.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import HwsimError

from .arch import Arch, load_arch
from .estimate import estimate_arch
from .schema import STATUSES, known_names, open_checked
from .tables import load_tables
from .workload import known_models, model_workloads

__all__ = ["SILICON_DIR", "Figure", "Point", "fit_parameter", "known_points", "load_point",
           "points_for", "sensitivity", "validation_table"]

SILICON_DIR = Path(__file__).parent / "silicon"
SCHEMA_ID = "hwsim-silicon/1"
#: the metrics a published figure may be compared on (``Estimate.metrics`` keys)
METRICS = ("decode_tokens_per_s", "decode_ms_per_token", "prefill_s", "power_mw", "area_mm2",
           "luts", "ffs", "dsps", "brams")
_TOP = {"schema", "name", "title", "kind", "target", "model", "figures"}
_FIGURE = {"metric", "value", "unit", "prompt", "context", "source", "label"}


@dataclass(frozen=True)
class Figure:
    metric: str
    value: float
    unit: str
    prompt: int
    context: int
    source: str
    label: str = ""

    @property
    def name(self) -> str:
        extra = [f"prompt {self.prompt}"] if self.metric == "prefill_s" else []
        if self.metric.startswith("decode"):
            extra.append(f"context {self.context}")
        if self.label:
            extra.append(self.label)
        return self.metric + (f" ({', '.join(extra)})" if extra else "")


@dataclass(frozen=True)
class Point:
    name: str
    title: str
    kind: str
    target: str
    model: str
    model_status: str
    model_source: str
    figures: tuple[Figure, ...]
    path: Path | None = None


def known_points() -> list[str]:
    return known_names(SILICON_DIR)


def load_point(point: str | Path) -> Point:
    """A silicon point by name (``vitallm``, ``tellme``…) or from a YAML path."""
    from hwsim.limits import MAX_CONTEXT, MAX_PROMPT

    path, data = open_checked(point, SILICON_DIR, "silicon point", "silicon point", _TOP,
                              SCHEMA_ID, {"asic": None, "fpga": None})
    where = path.name
    for key in ("name", "title", "target"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise HwsimError(f"{where}: {key} must be a non-empty string")
    model = data["model"]
    if not isinstance(model, dict) or set(model) != {"value", "status", "source"}:
        raise HwsimError(f"{where}: model must be a mapping of value, status and source")
    if model["value"] not in known_models():
        raise HwsimError(f"{where}: model {model['value']!r} is not one of "
                         f"{', '.join(known_models())}")
    if model["status"] not in STATUSES:
        raise HwsimError(f"{where}: model.status {model['status']!r} is not one of "
                         f"{', '.join(STATUSES)}")
    if not isinstance(data["figures"], list) or not data["figures"]:
        raise HwsimError(f"{where}: figures must be a non-empty list")
    figures = []
    for i, f in enumerate(data["figures"]):
        at = f"{where}: figures[{i}]"
        if not isinstance(f, dict):
            raise HwsimError(f"{at} must be a mapping")
        extra = set(f) - _FIGURE
        if extra:
            raise HwsimError(f"{at}: unknown field {sorted(extra)[0]!r}")
        missing = _FIGURE - {"label"} - set(f)
        if missing:
            raise HwsimError(f"{at}: missing field {sorted(missing)[0]!r}")
        if f["metric"] not in METRICS:
            raise HwsimError(f"{at}: metric {f['metric']!r} is not one of {', '.join(METRICS)}")
        v = f["value"]
        if isinstance(v, bool) or not isinstance(v, int | float) or not v > 0:
            raise HwsimError(f"{at}: value must be a positive number, not {v!r}")
        for key, top in (("prompt", MAX_PROMPT), ("context", MAX_CONTEXT)):
            n = f[key]
            if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= top:
                raise HwsimError(f"{at}: {key} must be an integer 1 … {top}, not {n!r}")
        for key in ("unit", "source"):
            if not isinstance(f[key], str) or not f[key].strip():
                raise HwsimError(f"{at}: {key} must be a non-empty string")
        figures.append(Figure(f["metric"], float(v), f["unit"], f["prompt"], f["context"],
                              f["source"].strip(), str(f.get("label", ""))))
    return Point(data["name"], data["title"], data["kind"], data["target"], model["value"],
                 model["status"], model["source"], tuple(figures), path)


def points_for(model: str, target: str) -> list[Point]:
    """The silicon points that ran ``model`` on ``target`` (an architecture name)."""
    return [p for p in map(load_point, known_points())
            if p.model == model and p.target == target]


def validation_table(point: Point | str = "vitallm", arch: Arch | None = None) -> list[dict]:
    """One row per published figure of ``point``: published, estimated, error, status."""
    point = point if isinstance(point, Point) else load_point(point)
    arch = arch or load_arch(point.target)
    if arch.kind != point.kind:
        raise HwsimError(f"{point.name}: a {point.kind} point, but {arch.name} is {arch.kind}")
    tables = load_tables(arch.tables)
    fitted = {p.fitted_to.split()[0]: p.path for p in arch.params.values() if p.fitted_to}
    cache: dict[tuple[int, int], dict] = {}
    rows = []
    for f in point.figures:
        key = (f.prompt, f.context)
        if key not in cache:
            cache[key] = estimate_arch(point.model, arch, tables, f.prompt, f.context).metrics()
        m = cache[key]
        if f.metric not in m:
            raise HwsimError(f"{point.name}: the estimate of {arch.name} has no {f.metric}")
        est = float(m[f.metric])
        status = f"fitted ({fitted[f.metric]})" if f.metric in fitted else "predicted"
        rows.append({"point": point.name, "figure": f.name, "metric": f.metric,
                     "unit": f.unit, "prompt": f.prompt, "context": f.context,
                     "published": f.value, "estimated": est,
                     "error_pct": 100 * (est - f.value) / f.value, "status": status,
                     "source": f.source})
    return rows


def fit_parameter(path: str, metric: str, target_value: float, lo: float, hi: float,
                  point: Point | str = "vitallm", iters: int = 60, prompt: int = 64,
                  context: int = 128) -> float:
    """The value of ``path`` in [lo, hi] that makes ``metric`` equal ``target_value`` for the
    point's model on its target (bisection; the metric must be monotonic over the interval)."""
    point = point if isinstance(point, Point) else load_point(point)
    arch = load_arch(point.target)
    tables = load_tables(arch.tables)
    wls = model_workloads(point.model, prompt, context)

    def f(x):
        a = arch.with_values({path: x})
        return estimate_arch(point.model, a, tables, prompt, context,
                             workloads=wls).metrics()[metric]

    rising = f(hi) > f(lo)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        if (f(mid) < target_value) == rising:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


#: parameter → the values tried around the file's value (multipliers for quantities)
_SENSITIVITY = {
    "clock": (0.5, 1.5),
    "tint.lanes": (8, 32),
    "tint.tiles": (8, 32),
    "booth.lanes": (32, 128),
    "dram.peak_bandwidth": (0.8, 1.2),
    "dram.efficiency.sequential_read": (0.7, 1.0),
    "dram.efficiency.random_read": (0.3, 0.9),
    "dram.axi_ports": (1, 2),
    "dram.weight_bits": (1.58, 1.6),
    "sram.weights": (0.5, 2.0),
    "sram.activations": (0.5, 2.0),
    "sram.kv": (0.5, 2.0),
    "area.sram_array_efficiency": (0.4, 0.6),
    "area.placement_utilization": (0.6, 0.8),
    "power.leakage_fraction": (0.05, 0.2),
}
_ABSOLUTE = {"tint.lanes", "tint.tiles", "booth.lanes", "dram.axi_ports", "dram.weight_bits",
             "dram.efficiency.sequential_read", "dram.efficiency.random_read",
             "area.sram_array_efficiency", "area.placement_utilization",
             "power.leakage_fraction"}


def sensitivity(point: Point | str = "vitallm", arch: Arch | None = None) -> list[dict]:
    """Each unpublished (or fitted) parameter of the point's target (``arch``: the target as
    loaded, with any overrides) at two other values, plus the decode context: the change of
    every validated figure, in %."""
    point = point if isinstance(point, Point) else load_point(point)
    arch = arch or load_arch(point.target)
    tables = load_tables(arch.tables)
    metrics = list(dict.fromkeys(f.metric for f in point.figures))
    first = point.figures[0]
    prompt, context = first.prompt, first.context
    wls = model_workloads(point.model, prompt, context)
    base = estimate_arch(point.model, arch, tables, prompt, context, workloads=wls).metrics()
    rows = []

    def row(name, label, m):
        rows.append({"parameter": name, "value": label,
                     **{k: 100 * (m[k] - base[k]) / base[k] for k in metrics}})

    for path, tries in _SENSITIVITY.items():
        p = arch.params.get(path)
        if p is None or p.status in ("published", "datasheet"):
            continue
        for t in tries:
            v = t if path in _ABSOLUTE else p.value * t
            label = f"{t:g}" if path in _ABSOLUTE else f"×{t:g}"
            m = estimate_arch(point.model, arch.with_values({path: v}), tables, prompt,
                              context, workloads=wls).metrics()
            row(path, label, m)
    for ctx in (context // 2, 4 * context):
        m = estimate_arch(point.model, arch, tables, prompt, ctx).metrics()
        row("decode context (tokens)", str(ctx), m)
    m = estimate_arch(point.model, arch, tables, prompt, context, lm_head=True).metrics()
    row("int8 LM head included", "yes", m)
    return rows


def format_validation(rows: list[dict]) -> str:
    head = ("figure", "published", "estimated", "error", "fitted / predicted")
    body = [(r["figure"], f"{r['published']:g} {r['unit']}", f"{r['estimated']:.4g}",
             f"{r['error_pct']:+.1f} %", r["status"]) for r in rows]
    return _grid(head, body)


def format_sensitivity(rows: list[dict]) -> str:
    metrics = [k for k in rows[0] if k not in ("parameter", "value")] if rows else []
    head = ("parameter", "value", *(f"Δ {k}" for k in metrics))
    body = [(r["parameter"], r["value"], *(f"{r[k]:+.1f} %" for k in metrics)) for r in rows]
    return _grid(head, body)


def _grid(head, body) -> str:
    w = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["| " + " | ".join(str(h).ljust(w[i]) for i, h in enumerate(head)) + " |",
             "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |" for r in body]
    return "\n".join(lines)
