"""Spiking visual attention figures: accuracy per bit width, with and without the attention
crop, integer/ONNX equality, RTL on real spikes, synaptic operations and cycles per inference."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

DESCRIPTION = ("SNN classifier on DVS events of the bundled digits: float / int8 / int4 test "
               "accuracy, accuracy without and with the von Mises attention crop (digit placed "
               "at random on a larger sensor), integer SNN == torch and ONNX == torch counts, the "
               "trained last layer on the LIFArray RTL (Icarus), SynOps and cycles per inference "
               "(energy through hwsim.estimate when present) beside the paper's SpiNNaker figures")

#: arXiv 2605.06005 on SpiNNaker (REFERENCE.md): power and latency per inference
PAPER = {"spinnaker_power_w": 0.565e-3, "spinnaker_latency_s": 3e-3,
         "asl_dvs_accuracy_sim": 0.9227, "asl_dvs_accuracy_spinnaker": 0.831}


def add_arguments(p) -> None:
    p.add_argument("--limit", type=int, default=None, help="first N digits only (default: all)")
    p.add_argument("--epochs", type=int, default=6, help="float training epochs")
    p.add_argument("--qat-epochs", type=int, default=1, help="QAT epochs per bit width")
    p.add_argument("--canvas", type=int, default=64,
                   help="sensor side for the attention experiment")
    p.add_argument("--no-attention", action="store_true", help="skip the attention experiment")
    p.add_argument("--no-rtl", action="store_true", help="skip the RTL simulation")
    p.add_argument("--lanes", type=int, default=16, help="LIFArray lanes for cycle counts")
    p.add_argument("--seed", type=int, default=0, help="events, split and training seed")


def _rtl_last_layer(model, frames, build: Path) -> dict:
    """The trained int layer 3 (fc2 + LIF) on Icarus, driven by the real layer-2 spikes of one
    test sample: bit-exact against the golden and cycles against the formula."""
    from dataclasses import replace

    from hwsim.kernels import get_kernel
    from hwsim.sim.runner import simulate
    from models.snn.classifier import integer_layers, spike_counts_int

    layers = integer_layers(model)
    w, p = layers[-1]
    lanes = max(d for d in range(1, 6) if p.neurons % d == 0)
    p = replace(p, lanes=lanes)
    _, spikes = spike_counts_int(layers, frames[0])
    steps = [np.flatnonzero(s) for s in spikes[1]]
    lens = np.array([len(s) for s in steps])
    case = {"name": "trained_fc2", "arrays": {
        "W": w, "events": np.concatenate(steps).astype(np.int64), "lengths": lens}}
    rep = simulate(get_kernel("lif-array"), p, [case], build, sim="icarus")
    c = rep.cases[0]
    return {"neurons": p.neurons, "inputs": p.inputs, "lanes": p.lanes, "steps": len(steps),
            "input_spikes": int(lens.sum()), "output_spikes": c["spikes"],
            "bit_exact": c["bit_exact"], "cycles": c["cycles"],
            "formula_cycles": c["expected_cycles"], "passed": rep.passed}


def _quiet(*_) -> None:
    """Training log sink: the benchmark prints only its table."""


def run(args) -> dict:
    from hwsim.errors import HwsimError
    from models.snn.cost import estimate_energy, network_counts
    from models.snn.events import DvsConfig
    from models.snn.train import (
        TrainConfig,
        accuracy,
        integer_agreement,
        make_dataset,
        onnx_agreement,
        train,
    )

    if args.epochs < 1 or args.qat_epochs < 0:
        raise HwsimError("--epochs must be ≥ 1 and --qat-epochs ≥ 0")
    t0 = time.perf_counter()
    cfg = TrainConfig(epochs=args.epochs, qat_epochs=args.qat_epochs, seed=args.seed)
    ds = make_dataset("digits", limit=args.limit, seed=args.seed)
    res = train(ds, cfg, (8, 4), 16, log=_quiet)
    out = {"samples": {"train": len(ds.y_train), "test": len(ds.y_test)},
           "epochs": args.epochs, "qat_epochs": args.qat_epochs,
           "accuracy": {"float": accuracy(res["float"], ds.x_test, ds.y_test)},
           "integer_equal": {}, "onnx_equal": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for b, q in res["quant"].items():
            out["accuracy"][f"int{b}"] = accuracy(q, ds.x_test, ds.y_test)
            ia = integer_agreement(q, ds.x_test)
            out["integer_equal"][f"int{b}"] = ia["equal_spike_counts"] / ia["samples"]
            oa = onnx_agreement(q, ds.x_test, Path(tmp) / f"int{b}.onnx")
            out["onnx_equal"][f"int{b}"] = oa["equal_spike_counts"] / oa["samples"]
        if not args.no_rtl:
            out["rtl"] = _rtl_last_layer(res["quant"][8], ds.x_test, Path(tmp) / "rtl")

    from models.snn.classifier import integer_layers

    counts = network_counts(integer_layers(res["quant"][8]), ds.x_test[:32], args.lanes)
    out["per_inference"] = {"synaptic_ops": counts["synaptic_ops"], "cycles": counts["cycles"],
                            "lif_updates": counts["total"]["lif_update"],
                            "input_events": counts["per_layer"][0]["event_in"],
                            "samples": counts["samples"], "lanes": args.lanes}
    out["estimate"] = {t: estimate_energy(counts, t) for t in ("vitallm", "xczu28dr")}
    out["paper"] = PAPER

    if not args.no_attention:
        dvs = DvsConfig(canvas=args.canvas)
        plain = make_dataset("digits", limit=args.limit, seed=args.seed, dvs=dvs)
        crop = make_dataset("digits", limit=args.limit, seed=args.seed, dvs=dvs, attention=True)
        acc = {}
        for name, d in (("resized", plain), ("attention_crop", crop)):
            r = train(d, TrainConfig(epochs=args.epochs, qat_epochs=0, seed=args.seed), (),
                      log=_quiet)
            acc[name] = accuracy(r["float"], d.x_test, d.y_test)
        out["attention"] = {"canvas": args.canvas, **acc}
    out["wall_s"] = time.perf_counter() - t0
    return out


def table(r: dict) -> str:
    a = r["accuracy"]
    rows = [
        ("samples (train / test)", f"{r['samples']['train']} / {r['samples']['test']}, "
                                   f"{r['epochs']} epochs + {r['qat_epochs']} QAT"),
        ("test accuracy float / int8 / int4",
         f"{a['float']:.4f} / {a['int8']:.4f} / {a['int4']:.4f}"),
        ("integer SNN == torch (int8 / int4)",
         f"{r['integer_equal']['int8']:.0%} / {r['integer_equal']['int4']:.0%} of samples"),
        ("onnxruntime == torch (int8 / int4)",
         f"{r['onnx_equal']['int8']:.0%} / {r['onnx_equal']['int4']:.0%} of samples"),
    ]
    if "attention" in r:
        at = r["attention"]
        rows.append((f"accuracy on {at['canvas']} px sensor: resized / attention crop",
                     f"{at['resized']:.4f} / {at['attention_crop']:.4f}"))
    if "rtl" in r:
        x = r["rtl"]
        rows.append(("trained fc2 layer on Icarus", f"{'bit-exact' if x['bit_exact'] else 'NO'}, "
                     f"cycles {x['cycles']} (formula {x['formula_cycles']}), "
                     f"{x['input_spikes']} input / {x['output_spikes']} output spikes"))
    pi = r["per_inference"]
    rows.append(("per inference (int8, mean)", f"{pi['synaptic_ops']:,.0f} SynOps, "
                 f"{pi['input_events']:,.0f} input events, {pi['cycles']:,.0f} cycles "
                 f"at {pi['lanes']} lanes"))
    for t, e in r["estimate"].items():
        if e["available"]:
            rows.append((f"estimate {t}", f"{e['energy_j'] * 1e9:.2f} nJ, "
                         f"{e['latency_s'] * 1e3:.3f} ms at {e['clock_hz'] / 1e6:g} MHz"))
        else:
            rows.append((f"estimate {t}", e["reason"]))
    p = r["paper"]
    rows.append(("paper, SpiNNaker", f"{p['spinnaker_power_w'] * 1e3:.3f} mW, "
                                      f"{p['spinnaker_latency_s'] * 1e3:g} ms"))
    rows.append(("wall time", f"{r['wall_s']:.0f} s"))
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
