"""The co-design flow of the spiking visual-attention classifier (``hwsim run snn``).

Every step calls the model's own library (:mod:`models.snn.train`, :mod:`models.snn.export`,
:mod:`models.snn.classifier`, :mod:`models.snn.cost`) and re-checks the level before it:

1. ``train``     DVS events of the bundled digits → float snnTorch classifier → QAT at the
                 chosen weight width (fixed-point membranes); test frames kept for later steps
2. ``export``    the per-step ONNX graph through ``onnx.checker``, looped in onnxruntime over
                 the time steps: output spike counts ``==`` torch on every test sample
3. ``golden``    the integer SNN (golden ``lif_array`` layer after layer): spike counts ``==``
                 the QAT model's on every test sample (the model guarantees it)
4. ``rtl``       Verilog of the ``LIFArray`` for the layers simulated
5. ``sim``       those layers under cocotb on Icarus, fed with the real spikes of the layer
                 below for one test sample: bit-exact, spike count ``==`` the golden's, cycles
                 ``==`` the formula
6. ``estimate``  SynOps, cycles and, through ``hwsim.estimate``'s action energies, energy and
                 latency per inference on the target; the paper's SpiNNaker figures beside them
7. ``report``    ``report.md`` + ``report.html``
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

from .common import check_sweep, check_target, close_report
from .core import Flow, Step, StepContext

__all__ = ["TARGETS", "snn_flow"]

TARGETS = ("vitallm", "xczu28dr", "xczu48dr", "xczu49dr")
LAYER_NAMES = ("conv (as dense 256×2304)", "fc1", "fc2")


def _model(ctx: StepContext):
    from models.snn.train import load_checkpoint

    return load_checkpoint(ctx.path_of("train", f"int{ctx.options['bits']}.safetensors"))[0]


def _test(ctx: StepContext):
    from hwsim.loading import read_npz

    z = read_npz(ctx.path_of("train", "test.npz"), {"x": "int", "y": "int"}, "test split")
    return z["x"], z["y"]


def _train(ctx: StepContext) -> dict:
    import torch

    from models.snn.train import TrainConfig, accuracy, make_dataset, save_checkpoint, train

    torch.set_num_threads(1)
    o = ctx.options
    ds = make_dataset("digits", limit=o["limit"], seed=o["seed"])
    res = train(ds, TrainConfig(epochs=o["epochs"], qat_epochs=o["qat_epochs"], seed=o["seed"]),
                (o["bits"],), o["mem_bits"])
    q = res["quant"][o["bits"]]
    meta = {"data": {"images": "digits", "limit": o["limit"], "canvas": 48, "attention": False,
                     "seed": o["seed"]}}
    save_checkpoint(ctx.folder / "float.safetensors", res["float"], meta)
    save_checkpoint(ctx.folder / f"int{o['bits']}.safetensors", q, meta)
    np.savez_compressed(ctx.folder / "test.npz", x=ds.x_test, y=ds.y_test)
    return {"train": len(ds.y_train), "test": len(ds.y_test), "classes": ds.classes,
            "accuracy_float": accuracy(res["float"], ds.x_test, ds.y_test),
            "accuracy_quant": accuracy(q, ds.x_test, ds.y_test), "bits": o["bits"],
            "mem_bits": o["mem_bits"], "epochs": o["epochs"], "qat_epochs": o["qat_epochs"]}


def _export(ctx: StepContext) -> dict:
    from models.snn.train import onnx_agreement
    from quant.onnx import check

    x, _ = _test(ctx)
    f = ctx.folder / f"int{ctx.options['bits']}_step.onnx"
    res = onnx_agreement(_model(ctx), x, f)
    check(f)
    if res["equal_spike_counts"] != res["samples"]:
        raise HwsimError(f"onnxruntime's spike counts differ from torch on "
                         f"{res['samples'] - res['equal_spike_counts']} of {res['samples']} "
                         f"samples")
    return {"file": f.name, **res}


def _golden(ctx: StepContext) -> dict:
    from models.snn.classifier import integer_layers, integer_predict
    from models.snn.train import integer_agreement

    x, y = _test(ctx)
    q = _model(ctx)
    res = integer_agreement(q, x)
    if res["equal_spike_counts"] != res["samples"]:
        raise HwsimError(f"the integer SNN's spike counts differ from the QAT model on "
                         f"{res['samples'] - res['equal_spike_counts']} of {res['samples']} "
                         f"samples")
    pred = integer_predict(integer_layers(q), x)
    return {**res, "accuracy_integer": float((pred == y).mean())}


def _layer_case(ctx: StepContext, li: int):
    """Layer ``li`` of the integer SNN with the real input events of test sample 0."""
    from hwsim.golden.snn.lif_array import events_from_counts
    from models.snn.classifier import integer_layers, spike_counts_int

    x, _ = _test(ctx)
    layers = integer_layers(_model(ctx))
    _, spikes = spike_counts_int(layers, x[0])
    w, p = layers[li]
    p = replace(p, lanes=max(d for d in range(1, ctx.options["lanes"] + 1)
                             if p.neurons % d == 0))
    if li == 0:
        steps = events_from_counts(x[0].reshape(x.shape[1], -1).astype(np.int64))
    else:
        steps = [np.flatnonzero(s) for s in spikes[li - 1]]
    lens = np.array([len(s) for s in steps])
    case = {"name": f"layer{li}", "arrays": {
        "W": w, "events": np.concatenate(steps).astype(np.int64), "lengths": lens}}
    return p, case, int(spikes[li].sum()), lens


def _rtl(ctx: StepContext) -> dict:
    from hwsim.kernels import get_kernel
    from rtl.emit import emit

    k = get_kernel("lif-array")
    files = []
    for li in ctx.options["sim_layers"]:
        p, _, _, _ = _layer_case(ctx, li)
        emit(k.component(p), k.top, ctx.folder / f"layer{li}", k.manifest(p))
        files.append(f"layer{li}/{k.top}.v")
    return {"verilog": files}


def _sim(ctx: StepContext) -> dict:
    from hwsim.golden.snn.lif_array import stream_cycles
    from hwsim.kernels import get_kernel
    from hwsim.sim.runner import simulate

    rows = []
    for li in ctx.options["sim_layers"]:
        p, case, want_spikes, lens = _layer_case(ctx, li)
        rep = simulate(get_kernel("lif-array"), p, [case], ctx.folder / f"layer{li}",
                       sim="icarus")
        c = rep.cases[0]
        rows.append({"kernel": "lif-array", "what": LAYER_NAMES[li], "layer": li,
                     "neurons": p.neurons, "inputs": p.inputs, "lanes": p.lanes,
                     "input_events": int(lens.sum()), "output_spikes": c["spikes"],
                     "golden_spikes": want_spikes,
                     "bit_exact": bool(rep.passed and c["bit_exact"]
                                       and c["spikes"] == want_spikes),
                     "cycles": c["cycles"], "formula_cycles": stream_cycles(p, lens),
                     "sim_cycles_per_s": rep.cycles_per_s})
    bad = [r["what"] for r in rows if not r["bit_exact"]]
    if bad:
        raise HwsimError(f"RTL differs from golden on real spikes: {', '.join(bad)}")
    return {"sim": "icarus", "runs": rows, "all_bit_exact": True}


def _estimate(ctx: StepContext) -> dict:
    from hwsim.bench.snn import PAPER
    from models.snn.classifier import integer_layers
    from models.snn.cost import estimate_energy, network_counts

    o = ctx.options
    x, _ = _test(ctx)
    counts = network_counts(integer_layers(_model(ctx)), x[:o["cost_samples"]], o["lanes"])
    e = estimate_energy(counts, o["target"])
    if not e.get("available"):
        raise HwsimError(e.get("reason", "no estimate"))
    calib = [{"kernel": r["kernel"], "what": r["what"], "simulated": r["cycles"],
              "estimated": r["formula_cycles"], "equal": r["cycles"] == r["formula_cycles"]}
             for r in ctx.artifacts["sim"]["runs"]]
    per_layer = [{"layer": LAYER_NAMES[i], "synaptic_ops": d.get("synaptic_op", 0.0),
                  "cycles": d.get("cycles", 0.0), "input_events": d.get("event_in", 0.0)}
                 for i, d in enumerate(counts["per_layer"])]
    metrics = {"target": o["target"], "clock_mhz": e["clock_hz"] / 1e6,
               "samples_averaged": counts["samples"], "lanes": o["lanes"],
               "synaptic_ops_per_inference": counts["synaptic_ops"],
               "cycles_per_inference": counts["cycles"],
               "latency_ms": e["latency_s"] * 1e3, "energy_per_inference_nj": e["energy_j"] * 1e9,
               "paper_spinnaker_power_mw": PAPER["spinnaker_power_w"] * 1e3,
               "paper_spinnaker_latency_ms": PAPER["spinnaker_latency_s"] * 1e3}
    return {"metrics": metrics, "calibration": calib, "per_layer": per_layer,
            "unmapped_actions": e["unmapped_actions"]}


def _plots(ctx: StepContext) -> list[tuple[Path, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pl = ctx.artifacts["estimate"]["per_layer"]
    names = [p["layer"] for p in pl]
    fig, ax = plt.subplots(1, 2, figsize=(9, 2.8), dpi=110, sharey=True)
    ax[0].barh(names, [p["synaptic_ops"] for p in pl], color="C0")
    ax[0].set_xlabel("SynOps per inference")
    ax[1].barh(names, [p["cycles"] for p in pl], color="C1")
    ax[1].set_xlabel("cycles per inference (LIFArray formula)")
    ax[0].invert_yaxis()
    for a in ax:
        a.grid(alpha=0.3, axis="x")
    fig.suptitle("SNN per layer (mean over test samples)")
    fig.tight_layout()
    fig.savefig(ctx.folder / "layers.png")
    plt.close(fig)
    return [(ctx.folder / "layers.png", "Synaptic operations and cycles per layer")]


def _report(ctx: StepContext) -> dict:
    from hwsim.report import Report

    a, o = ctx.artifacts, ctx.options
    tr, ex, g, s, es = a["train"], a["export"], a["golden"], a["sim"], a["estimate"]
    r = Report(f"hwsim run: spiking visual-attention classifier on {o['target']}")
    r.para(f"DVS events of scikit-learn's digits ({tr['train']} train / {tr['test']} test "
           f"samples, {tr['classes']} classes), 35 steps of 1 ms; {tr['epochs']} float epochs "
           f"then {tr['qat_epochs']} QAT epoch(s) at int{tr['bits']} weights, "
           f"int{tr['mem_bits']} membranes.")
    r.heading("Model metric: float vs quantized")
    r.table(["model", "test accuracy"],
            [["float (snnTorch)", tr["accuracy_float"]],
             [f"QAT int{tr['bits']} (torch)", tr["accuracy_quant"]],
             ["integer SNN (golden lif_array)", g["accuracy_integer"]]])
    r.heading("Bit-exactness at each level")
    r.table(["level", "compared with", "result"], [
        [f"ONNX `{ex['file']}` (onnxruntime, looped over steps)", "torch QAT model",
         f"spike counts == on {ex['equal_spike_counts']} of {ex['samples']} samples"],
        ["integer SNN (golden)", "torch QAT model",
         f"spike counts == on {g['equal_spike_counts']} of {g['samples']} samples"],
        *[[f"RTL (cocotb, {s['sim']}) {x['what']}, one real sample", "golden",
           f"{'==' if x['bit_exact'] else 'differs'}: {x['output_spikes']} spikes from "
           f"{x['input_events']} input events (golden {x['golden_spikes']})"]
          for x in s["runs"]]])
    r.heading("Cycles: estimated vs simulated")
    r.table(["kernel", "layer", "simulated", "estimated (formula)", "equal"],
            [[c["kernel"], c["what"], c["simulated"], c["estimated"], c["equal"]]
             for c in es["calibration"]])
    r.heading(f"Estimate on {o['target']}")
    r.table(["figure", "value"], [[k, v] for k, v in es["metrics"].items()])
    r.para("Dynamic energy per inference from the estimator's action energies of the target "
           "(`models/snn/cost.py::ESTIMATE_ACTIONS`; an accumulation priced as a 32-bit add, an "
           "upper bound) and the compute latency of the three layers one after the other on one "
           "LIFArray each; static power excluded. The paper's figures are SpiNNaker on "
           "ASL-DVS, a different platform and workload.")
    return close_report(r, ctx, _plots(ctx))


def snn_flow(build, target: str = "vitallm", limit: int | None = 500, epochs: int = 5,
             qat_epochs: int = 1, bits: int = 8, mem_bits: int = 16, lanes: int = 16,
             sim_layers=(1, 2), cost_samples: int = 8, seed: int = 0,
             sweep=None) -> Flow:
    check_target("snn", target, TARGETS)
    if not 2 <= bits <= 8:
        raise HwsimError(f"snn weight bits must be 2 … 8, not {bits}")
    if limit is not None and limit < 10:
        raise HwsimError(f"need at least 10 samples, not {limit}")
    bad = [li for li in sim_layers if li not in (0, 1, 2)]
    if bad:
        raise HwsimError(f"snn has layers 0, 1, 2; no layer {bad[0]}")
    o = {"target": target, "limit": limit, "epochs": epochs, "qat_epochs": qat_epochs,
         "bits": bits, "mem_bits": mem_bits, "lanes": lanes, "sim_layers": list(sim_layers),
         "cost_samples": cost_samples, "seed": seed, "sweep": check_sweep("snn", sweep)}
    steps = [
        Step("train", "DVS events, train float + QAT SNN", _train,
             ("limit", "epochs", "qat_epochs", "bits", "mem_bits", "seed")),
        Step("export", "export per-step ONNX, verify against torch", _export),
        Step("golden", "integer golden SNN == QAT model", _golden),
        Step("rtl", "emit RTL (LIFArray) per simulated layer", _rtl, ("sim_layers", "lanes")),
        Step("sim", "cocotb on real spikes: RTL == golden", _sim),
        Step("estimate", "estimate on the target, calibrated by simulation", _estimate,
             ("target", "cost_samples")),
        Step("report", "report", _report, ("sweep",)),
    ]
    return Flow("snn", steps, Path(build), o)
