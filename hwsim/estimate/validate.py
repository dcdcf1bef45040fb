"""Validation against silicon: BitNet b1.58 3B on the VitaLLM configuration vs the papers.

:func:`validation_table` estimates and sets each published figure beside its estimate, marking
the row ``fitted`` when a parameter of the architecture file was chosen to match that figure
(its ``fitted_to`` names it) and ``predicted`` otherwise. :func:`fit_parameter` re-derives a
fitted value by bisection, so the number in the YAML file is reproducible.
:func:`sensitivity` varies each unpublished parameter and reports how the figures move.
"""

from __future__ import annotations

from .arch import Arch, load_arch
from .estimate import estimate_arch
from .tables import load_tables
from .workload import model_workloads

__all__ = ["PUBLISHED", "fit_parameter", "sensitivity", "validation_table"]

#: metric → (published value, unit, source) for BitNet b1.58 3B on VitaLLM
PUBLISHED = {
    "decode_tokens_per_s": (72.46, "tokens/s", "VitaLLM prototype, arXiv 2605.00320"),
    "prefill_s": (0.88, "s for 64 tokens", "VitaLLM prototype, arXiv 2605.00320"),
    "area_mm2": (0.214, "mm²", "VitaLLM prototype core area, arXiv 2605.00320"),
    "power_mw": (65.97, "mW", "VitaLLM journal version, arXiv 2604.27396"),
}
#: the journal version's figures for the same metrics (reported beside the prototype's)
JOURNAL = {
    "decode_tokens_per_s": (70.70, "tokens/s", "VitaLLM journal version, arXiv 2604.27396"),
    "area_mm2": (0.223, "mm²", "VitaLLM journal version, arXiv 2604.27396"),
}
MODEL, TARGET, PROMPT = "bitnet-3b", "vitallm", 64


def validation_table(arch: Arch | None = None, context: int = 128) -> list[dict]:
    arch = arch or load_arch(TARGET)
    m = estimate_arch(MODEL, arch, None, PROMPT, context).metrics()
    fitted = {p.fitted_to.split()[0]: p.path for p in arch.params.values() if p.fitted_to}
    rows = []
    for figures, suffix in ((PUBLISHED, ""), (JOURNAL, " (journal)")):
        for key, (pub, unit, source) in figures.items():
            est = m[key]
            if key in fitted:
                status = f"fitted ({fitted[key]})" if not suffix else "fitted (to the prototype)"
            else:
                status = "predicted"
            rows.append({"figure": key + suffix, "unit": unit, "published": pub,
                         "estimated": est, "error_pct": 100 * (est - pub) / pub,
                         "status": status, "source": source})
    return rows


def fit_parameter(path: str, metric: str, target_value: float, lo: float, hi: float,
                  arch: Arch | None = None, context: int = 128, iters: int = 60) -> float:
    """The value of ``path`` in [lo, hi] that makes ``metric`` equal ``target_value``
    (bisection; the metric must be monotonic in the parameter over the interval)."""
    arch = arch or load_arch(TARGET)
    tables = load_tables(arch.tables)
    wls = model_workloads(MODEL, PROMPT, context)

    def f(x):
        a = arch.with_values({path: x})
        return estimate_arch(MODEL, a, tables, PROMPT, context, workloads=wls).metrics()[metric]

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
    "tint.lanes": (8, 32),
    "tint.tiles": (8, 32),
    "booth.lanes": (32, 128),
    "dram.bandwidth": (0.8, 1.2),
    "dram.weight_bits": (1.58, 1.6),
    "sram.weights": (0.5, 2.0),
    "sram.activations": (0.5, 2.0),
    "sram.kv": (0.5, 2.0),
    "area.sram_array_efficiency": (0.4, 0.6),
    "area.placement_utilization": (0.6, 0.8),
    "power.leakage_fraction": (0.05, 0.2),
}
_ABSOLUTE = {"tint.lanes", "tint.tiles", "booth.lanes", "dram.weight_bits",
             "area.sram_array_efficiency", "area.placement_utilization",
             "power.leakage_fraction"}


def sensitivity(context: int = 128) -> list[dict]:
    """Each unpublished (or fitted) parameter at two other values, plus the decode context:
    the change of every validated figure, in %."""
    arch = load_arch(TARGET)
    tables = load_tables(arch.tables)
    wls = model_workloads(MODEL, PROMPT, context)
    base = estimate_arch(MODEL, arch, tables, PROMPT, context, workloads=wls).metrics()
    rows = []

    def row(name, label, m):
        rows.append({"parameter": name, "value": label,
                     **{k: 100 * (m[k] - base[k]) / base[k] for k in PUBLISHED}})

    for path, tries in _SENSITIVITY.items():
        p = arch.params[path]
        for t in tries:
            v = t if path in _ABSOLUTE else p.value * t
            label = f"{t:g}" if path in _ABSOLUTE else f"×{t:g}"
            m = estimate_arch(MODEL, arch.with_values({path: v}), tables, PROMPT, context,
                              workloads=wls).metrics()
            row(path, label, m)
    for ctx in (64, 512):
        m = estimate_arch(MODEL, arch, tables, PROMPT, ctx).metrics()
        row("decode context (tokens)", str(ctx), m)
    m = estimate_arch(MODEL, arch, tables, PROMPT, context, lm_head=True).metrics()
    row("int8 LM head included", "yes", m)
    return rows


def format_validation(rows: list[dict]) -> str:
    head = ("figure", "published", "estimated", "error", "fitted / predicted")
    body = [(r["figure"], f"{r['published']:g} {r['unit']}", f"{r['estimated']:.4g}",
             f"{r['error_pct']:+.1f} %", r["status"]) for r in rows]
    return _grid(head, body)


def format_sensitivity(rows: list[dict]) -> str:
    head = ("parameter", "value", *(f"Δ {k}" for k in PUBLISHED))
    body = [(r["parameter"], r["value"], *(f"{r[k]:+.1f} %" for k in PUBLISHED)) for r in rows]
    return _grid(head, body)


def _grid(head, body) -> str:
    w = [max(len(str(x)) for x in col) for col in zip(head, *body, strict=True)]
    lines = ["| " + " | ".join(str(h).ljust(w[i]) for i, h in enumerate(head)) + " |",
             "|" + "|".join("-" * (x + 2) for x in w) + "|"]
    lines += ["| " + " | ".join(str(c).ljust(w[i]) for i, c in enumerate(r)) + " |" for r in body]
    return "\n".join(lines)
