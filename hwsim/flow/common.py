"""Pieces every model flow shares: the target check, the estimator's price of MACs and data
movement, and the closing sections of a report (tools, step timings)."""

from __future__ import annotations

from hwsim.errors import HwsimError

__all__ = ["check_target", "close_report", "mac_energy", "target_clock"]


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


def close_report(r, artifacts: dict) -> None:
    """The tool versions and the step timings, last in every flow's report."""
    from hwsim.versions import tool_versions

    r.heading("Tools")
    r.table(["tool", "version"], list(tool_versions().items()))
    r.para("Step timings: " + ", ".join(f"{k} {v['seconds']:.1f} s"
                                         for k, v in artifacts.items()) + ".")
