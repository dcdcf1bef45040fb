"""Registry entry and stimulus of the spike-driven LIF neuron array."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from hwsim.golden.snn import lif_array as spec

from . import CliParam, Kernel
from ._contract import interval, latency


def manifest(p: spec.LifParams) -> dict:
    E = p.inputs  # the evaluated step: every input spikes once
    return {
        "kernel": "lif-array",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "acc_width": p.acc_width,
        "beta": p.beta,
        "numeric": {
            "function": "hwsim.golden.snn.lif_array.lif_array, per step and neuron j: "
                        "I[j] = sum over the step's events e of W[j, addr(e)]; leak: mul "
                        "v <- round_shift(v * leak_mult, leak_frac, leak_rounding) or shift "
                        "v <- v - (v >> leak_shift); u = sat(leak(v) + I) (u = leak(v) while "
                        "refractory); s = u > threshold; reset: subtract v <- u - threshold, or "
                        "zero v <- 0, where s (then refractory for `refractory` steps), else "
                        "v <- u",
            "leak": {"mode": p.leak_mode, "mult": p.leak_mult, "frac": p.leak_frac,
                     "shift": p.leak_shift, "rounding": p.leak_rounding, "beta": p.beta},
            "threshold": p.threshold, "reset": p.reset, "refractory": p.refractory,
            "mem": p.mem.to_dict(), "weight": p.weight.to_dict(),
            "rounding": f"{p.leak_rounding} (the mul-mode leak; shift mode floors)",
            "overflow": "the membrane saturates to mem_bits signed",
            "w_beat": "hwsim.golden.snn.lif_array.weight_words: inputs * neurons/lanes beats",
            "ev_beat": "last = 0: an input event at addr (repeats add again); last = 1: end of "
                       "the step (the update runs)",
            "out_beat": "per step neurons/lanes beats: spikes bit i and mem element i = neuron "
                        "k*lanes + i of beat k",
        },
        "latency": latency(spec.stream_cycles, p, [E], unit=f"step with {E} events"),
        "interval": interval(spec.step_cycles, p, E, unit=f"step with {E} events"),
        "cycles": {
            "step_without_events": spec.step_cycles(p, 0),
            "weight_load": spec.weight_load_cycles(p),
        },
    }


def ev_words(steps, p: spec.LifParams) -> list[int]:
    """The ``ev`` stream of a list of steps: each step's addresses, then an end-of-step beat."""
    last = 1 << max((p.inputs - 1).bit_length(), 1)
    words = []
    for st in steps:
        words += [int(a) for a in st]
        words.append(last)
    return words


def dvs_steps(p: spec.LifParams, steps: int, seed: int = 0) -> list[np.ndarray]:
    """Real event streams: a bundled digit through the DVS simulator on a ``side × side`` sensor
    (``side = ⌊√inputs⌋``), binned into 1 ms steps, as address lists ``y·side + x``."""
    from models.snn.events import DvsConfig, image_to_events, load_digits_images, to_frames

    side = int(np.sqrt(p.inputs))
    images, _ = load_digits_images()
    ev = image_to_events(images[seed % len(images)], DvsConfig(size=side, canvas=side), seed)
    counts = to_frames(ev, steps).reshape(steps, -1).astype(np.int64)
    return [a[: p.inputs] for a in spec.events_from_counts(counts)]


def _threshold_for(W, steps, p) -> int:
    """A threshold that makes some but not all neurons fire (keeps the test informative)."""
    cur = np.abs(np.stack([W[:, s].sum(1) for s in steps])).mean()
    return int(np.clip(round(2 * cur) + 1, 1, p.mem.max_code))


def cases(p: spec.LifParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random events, real DVS events, saturation corners, idle input and back-pressure.

    The threshold is an elaboration parameter, so every case uses ``p.threshold``.

    * ``random``: uniform weights, 0 … 8 random events per step over 6 steps (cycles checked);
    * ``dvs_events``: a digit's DVS events (12 steps of 1 ms) on random weights (cycles checked);
    * ``saturate_high`` / ``saturate_low``: largest / most negative weights, every address each
      step: the membrane saturates at both ends;
    * ``no_events``: empty steps (pure leak of a zero membrane);
    * ``idle_backpressure``: random events with 30 % idle input and 40 % output stalls.
    """
    rng = np.random.default_rng(seed)
    lo, hi = p.weight.min_code, p.weight.max_code

    def rnd_w():
        return rng.integers(lo, hi + 1, (p.neurons, p.inputs))

    def rnd_steps(n):
        return [rng.integers(0, p.inputs, rng.integers(0, min(8, p.inputs) + 1))
                for _ in range(n)]

    def case(name, W, steps, **kw):
        lens = np.array([len(s) for s in steps], np.int64)
        flat = np.concatenate([np.asarray(s, np.int64) for s in steps]) if lens.sum() else \
            np.zeros(0, np.int64)
        return {"name": name, "arrays": {"W": W, "events": flat, "lengths": lens}, **kw}

    out = [case("random", rnd_w(), rnd_steps(6))]
    if p.inputs >= 16:
        out.append(case("dvs_events", rnd_w(), dvs_steps(p, 12, seed)))
    if not quick:
        every = [np.arange(p.inputs)] * 8  # long enough to pin the membrane at both limits
        out.append(case("saturate_high", np.full((p.neurons, p.inputs), hi), every))
        out.append(case("saturate_low", np.full((p.neurons, p.inputs), lo), every))
        out.append(case("no_events", rnd_w(), [np.zeros(0, np.int64)] * 3))
    out.append(case("idle_backpressure", rnd_w(), rnd_steps(5), idle=0.3, stall=0.4,
                    seed=seed + 7))
    return out


def split_steps(arrays: dict) -> list[np.ndarray]:
    """Inverse of the ``events`` / ``lengths`` packing used in :func:`cases`."""
    bounds = np.cumsum(np.concatenate([[0], arrays["lengths"]]))
    return [arrays["events"][a:b] for a, b in itertools.pairwise(bounds)]


KERNEL = Kernel(
    name="lif-array",
    top="lif_array",
    summary="spike-driven LIF neuron array: event-addressed weight accumulation, integer leak, "
            "threshold, reset, refractory",
    params_cls=spec.LifParams,
    cli_params=(
        CliParam("neurons", int, 16, "neurons in the array"),
        CliParam("inputs", int, 64, "input addresses (also the most events per step)"),
        CliParam("lanes", int, 4, "neurons per cycle (must divide neurons)"),
        CliParam("weight_bits", int, 8, "signed weight code width (8 or 4 in the QAT)"),
        CliParam("mem_bits", int, 16, "signed membrane code width"),
        CliParam("threshold", int, 64, "firing threshold code"),
        CliParam("leak_mode", str, "mul", "leak as fixed-point multiply (mul) or shift"),
        CliParam("refractory", int, 0, "refractory steps after a spike"),
    ),
    component_path="rtl.snn.lif_array:LIFArray",
    testbench="hwsim.sim.tb_lif_array",
    golden="hwsim.golden.snn.lif_array:lif_array",
    cycles=lambda p: spec.stream_cycles(p, [p.inputs]),
    actions=lambda p: spec.action_counts(p, [p.inputs]),
    manifest=manifest,
    cases=cases,
    test_params=(dict(neurons=8, inputs=64, lanes=4, threshold=48),
                 dict(neurons=4, inputs=16, lanes=4, threshold=48)),
)
