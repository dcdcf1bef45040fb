"""Synaptic operations, hardware actions, cycles — and, through ``hwsim.estimate``, energy.

Counts come only from :func:`hwsim.golden.snn.lif_array.action_counts` and
:func:`~hwsim.golden.snn.lif_array.stream_cycles`, applied to the events each layer of the integer
SNN really receives (the DVS events of the sample for the first layer, the spikes of the layer
below for the others). Layers run one after the other on one ``LIFArray`` each, so a sample's
cycles are the sum of its layers' stream cycles.

Energy and latency are left to the estimator: :func:`estimate_energy` maps these actions onto
the action vocabulary of ``hwsim.estimate`` (an accumulation is its ``acc_add``, a leak multiply
its ``requant_mul``, …) and multiplies by *its* tables for a target. It invents no energy
number: when ``hwsim.estimate`` is not importable it says so and returns the counts alone.
"""

from __future__ import annotations

import numpy as np

from hwsim.golden.snn import lif_array as golden

__all__ = ["ESTIMATE_ACTIONS", "estimate_energy", "network_counts"]

#: our action → (hwsim.estimate action, multiplicity); the mapping is an upper bound: the
#: estimator's ``acc_add``/``add32`` are 32-bit-class adds, ours are ``acc_width`` (≤ 20 bits
#: for the paper's layers) and ``mem_bits`` wide.
ESTIMATE_ACTIONS = {
    "synaptic_op": ("acc_add", 1),           # accumulate one weight into a neuron's current
    "lif_update": ("add32", 3),              # integrate, compare with θ, subtract θ
    "leak_mul": ("requant_mul", 1),          # fixed-point β multiply
    "leak_shift_sub": ("add32", 1),          # v − (v >> k)
    "weight_read_bits": ("weight_read_bits", 1),
    "mem_read_bits": ("register_read_bits", 1),
    "mem_write_bits": ("act_write_bits", 1),
    "out_bits": ("out_bits", 1),
}


def network_counts(layers, frames: np.ndarray, lanes: int = 16) -> dict:
    """Per-sample mean action counts and cycles of the integer SNN over (N, T, H, W) frames.

    ``layers`` is :func:`models.snn.classifier.integer_layers`; each layer is costed as a
    ``LIFArray`` of its size with ``lanes`` neurons per cycle (lanes must divide every layer's
    neuron count; it is reduced to the largest divisor otherwise).
    """
    from dataclasses import replace

    from .classifier import spike_counts_int

    frames = np.asarray(frames)
    per_layer = [dict() for _ in layers]
    cycles = np.zeros(len(frames))
    for i, f in enumerate(frames):
        _, spikes = spike_counts_int(layers, f)
        ev_in = [f.reshape(f.shape[0], -1).sum(1).astype(np.int64)]
        ev_in += [s.sum(1) for s in spikes[:-1]]
        for li, ((_, p), ev) in enumerate(zip(layers, ev_in, strict=True)):
            ln = max(d for d in range(1, lanes + 1) if p.neurons % d == 0)
            counts = golden.action_counts(replace(p, lanes=ln), ev)
            cycles[i] += counts["cycles"]
            for k, v in counts.items():
                per_layer[li][k] = per_layer[li].get(k, 0) + v
    n = max(len(frames), 1)
    per_layer = [{k: v / n for k, v in d.items()} for d in per_layer]
    total: dict[str, float] = {}
    for d in per_layer:
        for k, v in d.items():
            total[k] = total.get(k, 0.0) + v
    return {"samples": len(frames), "lanes": lanes, "per_layer": per_layer, "total": total,
            "synaptic_ops": total.get("synaptic_op", 0.0), "cycles": float(cycles.mean())}


def estimate_energy(counts: dict, target: str) -> dict:
    """Energy (J) and latency (s) per inference on ``target`` through ``hwsim.estimate``.

    Returns ``{"available": False, "reason": …}`` when the estimator is not installed in this
    checkout (energy then awaits it); never falls back to numbers of its own.
    """
    try:
        from hwsim.estimate import load_arch, load_tables
        from hwsim.estimate.engine import action_energy
    except ImportError as e:
        return {"available": False, "target": target,
                "reason": f"hwsim.estimate is not importable here ({e}); energy awaits the "
                          f"estimator"}
    arch = load_arch(target)
    tables = load_tables(arch.tables)
    per_action = action_energy(arch, tables)
    energy, unmapped = 0.0, []
    for action, count in counts["total"].items():
        if action == "cycles":
            continue
        if action not in ESTIMATE_ACTIONS or ESTIMATE_ACTIONS[action][0] not in per_action:
            unmapped.append(action)
            continue
        name, mult = ESTIMATE_ACTIONS[action]
        energy += count * mult * per_action[name]
    clock = float(arch["clock"])
    latency = counts["cycles"] / clock
    return {"available": True, "target": target, "energy_j": energy, "latency_s": latency,
            "clock_hz": clock, "unmapped_actions": unmapped,
            "power_w_at_35ms": energy / 0.035}
