"""A model's accuracy-versus-bit-width sweep, end to end: grid → engine → table, plots, report."""

from __future__ import annotations

from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.files import folder_lock
from hwsim.report import Report

from .engine import check_dask, check_records, portable, resolve, run_sweep
from .models import get_sweep_model
from .pareto import pareto_front, plot_metric_vs_bits, plot_pareto

__all__ = ["model_sweep", "parse_bits"]


def parse_bits(text: str, what: str) -> tuple[int, ...]:
    """``"2,3,4,8"`` → (2, 3, 4, 8); one clear error for anything else (an empty list, an
    empty item, a repeated width)."""
    if not text.strip():
        raise HwsimError(f"{what} list is empty")
    try:
        bits = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise HwsimError(f"{what} must be a comma-separated list of integers, not {text!r}") \
            from None
    if any(b < 1 or b > 32 for b in bits):
        raise HwsimError(f"impossible {what} bit width in {text!r} (1 … 32)")
    repeated = sorted({b for b in bits if bits.count(b) > 1})
    if repeated:
        raise HwsimError(f"{what} list {text!r} repeats {repeated[0]}")
    return bits


def model_sweep(name: str, out: Path, weights=None, acts=None, method: str = "ptq",
                target: str | None = None, jobs: int = 1, dask: str | None = None,
                progress: bool = True, options: dict | None = None) -> dict:
    model = get_sweep_model(name)
    weights = tuple(model.default_weights if weights is None else weights)
    acts = tuple(model.default_acts if acts is None else acts)
    for what, bits in (("weight", weights), ("activation", acts)):
        if not bits:
            raise HwsimError(f"{what} list is empty")
    target = target or model.targets[0]
    model.check(weights, acts, target, method)
    if dask is not None:
        check_dask(dask)  # before anything is trained or written
    out = Path(out)
    check_records(out)  # a corrupt finished point: refused before anything is locked or trained
    with folder_lock(out, "sweep folder"):
        return _model_sweep(name, model, out, weights, acts, method, target, jobs, dask,
                            progress, options)


def _model_sweep(name, model, out, weights, acts, method, target, jobs, dask, progress,
                 options) -> dict:
    context = resolve(model.prepare)(out, dict(options or {})) if model.prepare else {}
    points = [{"weights": w, "acts": a, "method": method, "target": target, "context": context}
              for w in weights for a in acts]
    rows = run_sweep(points, model.evaluator, out, jobs=jobs, dask=dask, progress=progress)
    key_context = portable(context, out)  # as the rows carry it
    rows = [r for r in rows if r["method"] == method and r["target"] == target
            and r["weights"] in weights and r["acts"] in acts and r["context"] == key_context]
    front = pareto_front(rows, model.metric, model.cost, model.higher_is_better)
    figs = {
        "metric": plot_metric_vs_bits(rows, model.metric, out / "metric_vs_bits.png",
                                      f"{name}: {model.metric} vs bit width ({method})"),
        "pareto": plot_pareto(rows, model.metric, model.cost, model.higher_is_better,
                              out / "pareto.png", f"{name} on {target}: {model.metric} vs "
                                                  f"{model.cost}"),
    }
    rep = Report(f"hwsim sweep {name} ({method}, target {target})")
    cols = ["weights", "acts", model.metric, model.cost, "pareto"]
    on_front = {(r["weights"], r["acts"]) for r in front}
    table = [[r["weights"], r["acts"], r[model.metric], r[model.cost],
              (r["weights"], r["acts"]) in on_front] for r in
             sorted(rows, key=lambda r: (r["weights"], r["acts"]))]
    rep.table(cols, table)
    rep.figure(figs["metric"], f"{model.metric} against weight bits")
    rep.figure(figs["pareto"], f"Pareto front of {model.metric} against {model.cost}")
    rep.para(f"Raw results: `results.csv`, `results.json`; {len(rows)} points.")
    paths = rep.write(out, "sweep")
    return {"rows": rows, "front": front, "columns": cols, "table": table,
            "report": paths["markdown"], "figures": figs}
