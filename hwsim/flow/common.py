"""Pieces every model flow shares: the target check, the estimator's price of MACs and data
movement, and the closing sections of a report (tools, step timings)."""

from __future__ import annotations

from hwsim.errors import HwsimError

__all__ = ["add_sweep", "check_sweep", "check_target", "close_report", "mac_energy",
           "target_clock"]


def check_target(model: str, target: str, targets: tuple[str, ...]) -> None:
    """One line when ``target`` is unknown or the model cannot map to it."""
    from hwsim.estimate.arch import known_targets

    if target not in known_targets():
        raise HwsimError(f"unknown target {target!r}; targets: {', '.join(known_targets())}")
    if target not in targets:
        raise HwsimError(f"{model} does not map to target {target!r}; targets: "
                         f"{', '.join(targets)}")


def target_clock(target: str) -> float:
    from hwsim.estimate.arch import load_arch

    return float(load_arch(target)["clock"])


def mac_energy(target: str, macs: float, weight_bits_read: float = 0.0,
               act_bits_read: float = 0.0, out_bits: float = 0.0) -> dict:
    """Dynamic energy (J) of ``macs`` multiply-accumulates and the given bit traffic on
    ``target``, priced only with the estimator's action energies (``hwsim.estimate``): a MAC is
    one ``int8_mul`` plus one ``acc_add``; weights are read at ``weight_read_bits``, activations
    at ``act_read_bits`` and results written at ``out_bits`` per bit. Nothing is invented here:
    the table of each target supplies every number."""
    from hwsim.estimate import load_arch, load_tables
    from hwsim.estimate.engine import action_energy

    arch = load_arch(target)
    e = action_energy(arch, load_tables(arch.tables))
    parts = {"mac_j": macs * (e["int8_mul"] + e["acc_add"]),
             "weight_read_j": weight_bits_read * e["weight_read_bits"],
             "act_read_j": act_bits_read * e["act_read_bits"],
             "out_j": out_bits * e["out_bits"]}
    return {"energy_j": sum(parts.values()), **parts, "clock_hz": float(arch["clock"]),
            "target": target, "kind": arch.kind}


def check_sweep(model: str, folder) -> str | None:
    """``--sweep DIR``: a finished ``hwsim sweep MODEL`` folder whose plots the report embeds."""
    import json
    from pathlib import Path

    if folder is None:
        return None
    f = Path(folder) / "results.json"
    try:
        rows = json.loads(f.read_text())
    except (OSError, ValueError, RecursionError):
        raise HwsimError(f"--sweep {folder} is not a finished `hwsim sweep` folder "
                         f"(no readable results.json)") from None
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise HwsimError(f"--sweep {folder}: results.json must be a list of JSON objects")
    if not rows or not (Path(folder) / "metric_vs_bits.png").is_file():
        raise HwsimError(f"--sweep {folder} has no finished points or no metric_vs_bits.png")
    marker = {"snn": "limit", "swiftchannel": "geometry", "airfm": "train_profiles"}[model]
    if not all(isinstance(r.get("context"), dict) and marker in r["context"] for r in rows):
        raise HwsimError(f"--sweep {folder} is not a sweep of {model}")
    return str(Path(folder).resolve())


def add_sweep(r, options: dict) -> None:
    """The sweep's metric-vs-bits and Pareto plots, when the flow was given ``--sweep``."""
    from pathlib import Path

    if not options.get("sweep"):
        return
    d = Path(options["sweep"])
    r.heading("Metric vs bit width (hwsim sweep)")
    r.para(f"From the sweep folder `{d}` (its `sweep.md` has the table).")
    for name, caption in (("metric_vs_bits.png", "Metric against weight bits"),
                          ("pareto.png", "Pareto front of metric against cost")):
        if (d / name).is_file():
            r.figure(d / name, caption)


def close_report(r, ctx, figures) -> dict:
    """The end every model flow's report shares: its figures, the sweep's plots (``--sweep``),
    tool versions and step timings; writes report.md / report.html and returns the artifact,
    ``bit_exact`` being every simulated run bit-exact and every cycle formula met."""
    from hwsim.versions import tool_versions

    a = ctx.artifacts
    for path, caption in figures:
        r.figure(path, caption)
    add_sweep(r, ctx.options)
    r.heading("Tools")
    r.table(["tool", "version"], list(tool_versions().items()))
    r.para("Step timings: " + ", ".join(f"{k} {v['seconds']:.1f} s"
                                         for k, v in a.items()) + ".")
    r.write(ctx.folder)
    ok = a["sim"]["all_bit_exact"] and all(c["equal"] for c in a["estimate"]["calibration"])
    return {"report": "report.md", "html": "report.html", "bit_exact": ok}
