"""The co-design flow of the spiking visual-attention classifier (``hwsim run snn``).

Training, the integer golden, the SynOps and the report call the model's own library
(:mod:`models.snn.train`, :mod:`models.snn.export`, :mod:`models.snn.classifier`,
:mod:`models.snn.cost`); the hardware steps are ``hwsim compile``
(:func:`hwsim.compile.driver.compile_model`) on the exported per-step ONNX, the membranes on
chip over the time steps of one real sample. Every step re-checks the level before it:

1. ``train``     DVS events of the bundled digits → float snnTorch classifier → QAT at the
                 chosen weight width (fixed-point membranes); test frames kept for later steps
2. ``export``    the per-step ONNX graph through ``onnx.checker``, looped in onnxruntime over
                 the time steps: output spike counts ``==`` torch on every test sample; the
                 batch-1 step graph ``hwsim compile`` reads (``int{bits}_step_b1.onnx``) and the
                 real input ``x.npy``: the first ``sim_steps`` event frames of one test sample,
                 ``(sim_steps, 1, 1, side, side)`` (of the samples whose output layer spikes
                 within those steps, the one with the fewest input events); its spike counts
                 on them ``==`` torch's
3. ``golden``    the integer SNN (golden ``lif_array`` layer after layer): spike counts ``==``
                 the QAT model's on every test sample (the model guarantees it)
4. ``rtl``       ``hwsim compile --sim SIM`` of that file on that input (one call: the
                 compiler lowers once): three ``lif-array`` nodes in one dataflow top
                 (``rtl/compile/rtl/compiled_top.v``), its schedule, cocotb, its estimate
5. ``sim``       the compile's simulation checked: RTL ``==`` the compiled golden, simulated
                 cycles ``==`` the schedule, and the compiled golden's spikes of every layer
                 ``==`` the integer SNN's and its output spike counts ``==`` torch's on the
                 sample's simulated steps; any miss stops the flow
6. ``estimate``  the compile's estimate on the target (latency, resources or area, energy),
                 the cycles of a whole inference (all time steps of the sample) from the same
                 cycle model the simulation matched; SynOps per inference averaged over
                 ``cost_samples`` test samples and the paper's SpiNNaker figures beside them
7. ``report``    ``report.md`` + ``report.html``

Cost: the compile's RTL of the default model (conv as a dense 256×2304 ``lif-array``) takes
about a minute to elaborate and a minute to start simulating; then Icarus takes about 0.1 s
per input event of the sample (a step of a digit holds 100–450), Verilator about 4 minutes to
build and then about 2 s per step. ``sim_steps`` (``--sim-steps``, default 8) bounds the steps
simulated and ``sim`` (``--sim``) picks the simulator; the checks stay ``==``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

from .common import check_sweep, check_target, close_report
from .core import Flow, Step, StepContext

__all__ = ["TARGETS", "snn_flow"]

TARGETS = ("vitallm", "xczu28dr", "xczu48dr", "xczu49dr")
LAYER_NAMES = ("conv (as dense 256×2304)", "fc1", "fc2")
#: simulators the flow's compile may run
SIMS = ("icarus", "verilator")


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


def _sample(layers, x: np.ndarray, steps: int) -> int:
    """The test sample the compile simulates: of those whose output layer spikes within their
    first ``steps`` steps (so the RTL's output is not all zeros), the one with the fewest input
    events there (the simulation's time grows with them); if none spikes, the fewest events."""
    from models.snn.classifier import spike_counts_int

    silent = [int(spike_counts_int(layers, f[:steps])[0].sum() == 0) for f in x]
    events = x[:, :steps].reshape(len(x), -1).sum(1)
    return min(range(len(x)), key=lambda i: (silent[i], int(events[i]), i))


def _export(ctx: StepContext) -> dict:
    """The per-step ONNX (dynamic batch) checked against torch on every test sample; the
    batch-1 step graph ``hwsim compile`` reads and the real input ``x.npy`` (the chosen test
    sample's first ``sim_steps`` frames), its spike counts on them ``==`` torch's."""
    import torch

    from models.snn.classifier import integer_layers
    from models.snn.export import export_onnx, run_onnx
    from models.snn.train import onnx_agreement
    from quant.onnx import check

    x, _ = _test(ctx)
    q = _model(ctx)
    f = ctx.folder / f"int{ctx.options['bits']}_step.onnx"
    res = onnx_agreement(q, x, f)
    check(f)
    if res["equal_spike_counts"] != res["samples"]:
        raise HwsimError(f"onnxruntime's spike counts differ from torch on "
                         f"{res['samples'] - res['equal_spike_counts']} of {res['samples']} "
                         f"samples")
    steps = min(ctx.options["sim_steps"], x.shape[1])
    k = _sample(integer_layers(q), x, steps)
    frames = x[k:k + 1, :steps].astype(np.float32)  # (1, S, H, W)
    b1 = export_onnx(q, ctx.folder / f"int{ctx.options['bits']}_step_b1.onnx", batch=1)
    check(b1)
    np.save(ctx.folder / "x.npy", frames[0][:, None, None])  # (S, 1, 1, H, W): compile's --input
    with torch.no_grad():
        want = q(torch.from_numpy(frames)).numpy()[0].astype(np.int64)
    got = run_onnx(b1, frames)[0].astype(np.int64)
    if not np.array_equal(got, want):
        raise HwsimError(f"the batch-1 step graph's spike counts {got.tolist()} on test sample "
                         f"{k} differ from torch's {want.tolist()}")
    return {"file": f.name, **res, "compile_model": b1.name, "input": "x.npy", "sample": k,
            "sim_steps": steps, "input_shape": [steps, 1, 1, *x.shape[2:]],
            "sample_counts_torch": want.tolist()}


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


def _rtl(ctx: StepContext) -> dict:
    """``hwsim compile --sim SIM`` of the batch-1 step graph on the real input (one call: the
    compiler lowers once): the dataflow top's Verilog, its schedule, cocotb and the compile's
    estimate, under ``rtl/compile/``."""
    from hwsim.compile.driver import compile_model

    o, ex = ctx.options, ctx.artifacts["export"]
    s = compile_model(ctx.path_of("export", ex["compile_model"]), o["target"],
                      ctx.folder / "compile", input_path=ctx.path_of("export", ex["input"]),
                      sim=o["sim"], max_lanes=o["lanes"], progress=lambda _line: None)
    return {"compile": "compile", "verilog": "compile/rtl/compiled_top.v",
            "schedule": "compile/rtl/compiled_top.json",
            "kernels": s["kernels"],
            "summary": {k: v for k, v in s.items() if k not in ("lowering", "kernels")}}


def _sim(ctx: StepContext) -> dict:
    """The compile's simulation on the real input: RTL ``==`` the compiled golden, cycles
    ``==`` the schedule, the compiled golden's spikes of every layer ``==`` the integer SNN's
    (:func:`models.snn.classifier.spike_counts_int`) and its output spike counts ``==``
    torch's; any miss stops the flow."""
    from models.snn.classifier import integer_layers, spike_counts_int

    ex = ctx.artifacts["export"]
    s = ctx.artifacts["rtl"]["summary"]
    if not (s["rtl_equals_golden"] and s["cycles_match"]):
        raise HwsimError(f"compiled SNN on {s['sim']}: RTL == golden {s['rtl_equals_golden']}, "
                         f"cycles == schedule {s['cycles_match']}")
    measured = json.loads(ctx.path_of("rtl", "compile/sim/step.json").read_text()
                          )["artifact"]["cycles_measured"]
    if measured != s["cycles"]:
        raise HwsimError(f"compiled SNN: {measured} cycles simulated, the schedule says "
                         f"{s['cycles']}")
    if s["max_error_lsb_vs_onnxruntime"] != 0:
        raise HwsimError(f"compiled SNN: the lowered graph's spikes differ from onnxruntime's "
                         f"by {s['max_error_lsb_vs_onnxruntime']}")
    x, _ = _test(ctx)
    frames = x[ex["sample"], :ex["sim_steps"]]
    _, spikes = spike_counts_int(integer_layers(_model(ctx)), frames)
    smp = np.load(ctx.path_of("rtl", "compile/lower/sample.npz"), allow_pickle=False)
    compiled = [smp["c1"], smp["c2"], smp["Y"]]  # each layer's spikes, stream order
    layers = []
    for name, got, want in zip(LAYER_NAMES, compiled, spikes, strict=True):
        got, want = np.asarray(got, np.int64), want.astype(np.int64).ravel()
        if got.shape != want.shape or not np.array_equal(got, want):
            raise HwsimError(f"compiled SNN: the spikes of {name} differ from the integer SNN's "
                             f"on test sample {ex['sample']}")
        layers.append({"layer": name, "spikes": int(want.sum())})
    counts = np.asarray(smp["y"], np.int64).sum(0).ravel()
    if counts.tolist() != ex["sample_counts_torch"]:
        raise HwsimError(f"compiled SNN: output spike counts {counts.tolist()} differ from "
                         f"torch's {ex['sample_counts_torch']} on test sample {ex['sample']}")
    return {"sim": s["sim"], "rtl_equals_golden": True, "cycles": s["cycles"],
            "cycles_measured": measured, "cycles_match": True, "sample": ex["sample"],
            "sim_steps": ex["sim_steps"], "input_events": int(frames.sum()),
            "layers": layers, "output_counts": counts.tolist(), "counts_equal_torch": True,
            "all_bit_exact": True}


def _inference_cycles(ctx: StepContext) -> tuple[int, int]:
    """Cycles of the compiled design over all time steps of the simulated sample, and over
    its simulated steps, from the cycle model the simulation matched
    (:func:`hwsim.compile.backend.lif.schedule_lif`) on the integer SNN's codes."""
    from qonnx.core.modelwrapper import ModelWrapper

    from hwsim.compile import backend
    from hwsim.compile.backend.lif import schedule_lif
    from models.snn.classifier import integer_layers, spike_counts_int

    ex = ctx.artifacts["export"]
    design = backend.plan(ModelWrapper(str(ctx.path_of("rtl", "compile/lower/lowered.onnx"))),
                          max_lanes=ctx.options["lanes"])
    x, _ = _test(ctx)
    layers = integer_layers(_model(ctx))

    def cycles(frames):
        _, spikes = spike_counts_int(layers, frames)
        codes = [frames.reshape(len(frames), -1), *spikes[:-1]]
        return schedule_lif(design, {n.inputs[0][1]: np.ravel(c).astype(np.int64)
                                     for n, c in zip(design.nodes, codes, strict=True)})["cycles"]

    f = x[ex["sample"]]
    return cycles(f), cycles(f[:ex["sim_steps"]])


def _estimate(ctx: StepContext) -> dict:
    """The compile's estimate of the compiled design on the target, a whole inference's cycles
    from the matched cycle model; SynOps and the paper's SpiNNaker figures beside them."""
    from hwsim.bench.snn import PAPER
    from models.snn.classifier import integer_layers
    from models.snn.cost import network_counts

    o, a = ctx.options, ctx.artifacts
    s, ex = a["rtl"]["summary"], a["export"]
    x, _ = _test(ctx)
    try:
        full, window = _inference_cycles(ctx)
    except HwsimError as e:  # back-pressure on the whole sample: outside the cycle model
        full, window, note = None, s["cycles"], str(e)
    else:
        note = None
    if window != s["cycles"]:
        raise HwsimError(f"the cycle model gives {window} cycles on the simulated steps, the "
                         f"compile's schedule {s['cycles']}")
    clock_mhz = s["cycles"] / s["latency_us"]  # the target's clock, as the compile priced it
    counts = network_counts(integer_layers(_model(ctx)), x[:o["cost_samples"]])
    metrics = {"target": o["target"], "clock_mhz": clock_mhz, "lanes": o["lanes"],
               "sample": ex["sample"], "simulated_steps": ex["sim_steps"],
               "simulated_cycles": s["cycles"], "simulated_latency_us": s["latency_us"],
               "inference_steps": int(x.shape[1]), "inference_cycles": full,
               "inference_latency_ms": full / clock_mhz / 1e3 if full else None,
               **({"inference_cycles_note": note} if note else {}),
               **{k: s[k] for k in ("luts", "ffs", "dsps", "brams", "fits", "area_mm2")
                  if k in s},
               "energy_uj": s.get("energy_uj"), "power_mw": s.get("power_mw"),
               "samples_averaged": counts["samples"],
               "synaptic_ops_per_inference": counts["synaptic_ops"],
               "paper_spinnaker_power_mw": PAPER["spinnaker_power_w"] * 1e3,
               "paper_spinnaker_latency_ms": PAPER["spinnaker_latency_s"] * 1e3}
    # the shared report's contract: the simulated cycles against the estimator's
    calib = [{"kernel": "compiled", "what": f"3 lif-array nodes, {ex['sim_steps']} steps",
              "simulated": a["sim"]["cycles_measured"], "estimated": s["cycles"],
              "equal": a["sim"]["cycles_measured"] == s["cycles"]}]
    per_layer = [{"layer": LAYER_NAMES[i], "synaptic_ops": d.get("synaptic_op", 0.0),
                  "input_events": d.get("event_in", 0.0)}
                 for i, d in enumerate(counts["per_layer"])]
    return {"metrics": metrics, "calibration": calib, "per_layer": per_layer}


def _plots(ctx: StepContext) -> list[tuple[Path, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pl = ctx.artifacts["estimate"]["per_layer"]
    names = [p["layer"] for p in pl]
    fig, ax = plt.subplots(1, 2, figsize=(9, 2.8), dpi=110, sharey=True)
    ax[0].barh(names, [p["synaptic_ops"] for p in pl], color="C0")
    ax[0].set_xlabel("SynOps per inference")
    ax[1].barh(names, [p["input_events"] for p in pl], color="C1")
    ax[1].set_xlabel("input events per inference")
    ax[0].invert_yaxis()
    for a in ax:
        a.grid(alpha=0.3, axis="x")
    fig.suptitle("SNN per layer (mean over test samples)")
    fig.tight_layout()
    fig.savefig(ctx.folder / "layers.png")
    plt.close(fig)
    return [(ctx.folder / "layers.png", "Synaptic operations and input events per layer")]


def _report(ctx: StepContext) -> dict:
    from hwsim.report import Report

    a, o = ctx.artifacts, ctx.options
    tr, ex, g, s, es = a["train"], a["export"], a["golden"], a["sim"], a["estimate"]
    m = es["metrics"]
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
    where = f"test sample {s['sample']}, first {s['sim_steps']} steps"
    r.table(["level", "compared with", "result"], [
        [f"ONNX `{ex['file']}` (onnxruntime, looped over steps)", "torch QAT model",
         f"spike counts == on {ex['equal_spike_counts']} of {ex['samples']} samples"],
        ["integer SNN (golden)", "torch QAT model",
         f"spike counts == on {g['equal_spike_counts']} of {g['samples']} samples"],
        [f"batch-1 ONNX `{ex['compile_model']}` (the compiled file), {where}",
         "torch QAT model", "spike counts =="],
        [f"compiled golden (lowered graph), {where}", "integer SNN",
         "spikes == in every layer (" + ", ".join(f"{x['layer']}: {x['spikes']}"
                                                  for x in s["layers"]) + ")"],
        [f"compiled RTL (`hwsim compile`, {s['sim']}), {where}",
         "compiled golden", f"== ({s['input_events']} input events, output counts "
                            f"{s['output_counts']} == torch)"]])
    r.heading("Cycles: estimated vs simulated")
    r.table(["design", "cycles", "source"], [
        [f"compiled, {s['sim_steps']} steps of test sample {s['sample']}", s["cycles"],
         f"{s['sim']} == schedule: {s['cycles_match']}"],
        [f"compiled, all {m['inference_steps']} steps of test sample {s['sample']}",
         m["inference_cycles"], "the same cycle model (schedule_lif) on the golden's codes"]])
    r.heading(f"Estimate on {o['target']} (hwsim compile)")
    r.table(["figure", "value"], [[k, v] for k, v in m.items()])
    r.para("Latency, resources or area and energy are the compile's estimate (`estimate_design`"
           ", `lif-array` pricing; its energy prices one step with every input firing once); "
           "SynOps are the integer SNN's, averaged over the test samples. The paper's figures "
           "are SpiNNaker on ASL-DVS, a different platform and workload.")
    return close_report(r, ctx, _plots(ctx))


def snn_flow(build, target: str = "vitallm", limit: int | None = 500, epochs: int = 5,
             qat_epochs: int = 1, bits: int = 8, mem_bits: int = 16, sim_steps: int = 8,
             sim: str = "icarus", lanes: int = 8, cost_samples: int = 8, seed: int = 0,
             sweep=None) -> Flow:
    """``sim_steps``: time steps of the sample simulated (at most the sample's); ``sim``: the
    compile's simulator; ``lanes``: the compile's ``max_lanes`` (neurons per cycle of each
    ``lif-array``)."""
    check_target("snn", target, TARGETS)
    if not 2 <= bits <= 8:
        raise HwsimError(f"snn weight bits must be 2 … 8, not {bits}")
    if limit is not None and limit < 10:
        raise HwsimError(f"need at least 10 samples, not {limit}")
    if sim not in SIMS:
        raise HwsimError(f"snn simulates on {' or '.join(SIMS)}, not {sim!r}")
    for name, v in (("sim steps", sim_steps), ("lanes", lanes), ("cost samples", cost_samples)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise HwsimError(f"snn {name} must be a positive integer, not {v!r}")
    o = {"target": target, "limit": limit, "epochs": epochs, "qat_epochs": qat_epochs,
         "bits": bits, "mem_bits": mem_bits, "sim_steps": sim_steps, "sim": sim,
         "lanes": lanes, "cost_samples": cost_samples, "seed": seed,
         "sweep": check_sweep("snn", sweep)}
    steps = [
        Step("train", "DVS events, train float + QAT SNN", _train,
             ("limit", "epochs", "qat_epochs", "bits", "mem_bits", "seed")),
        Step("export", "export per-step ONNX, verify against torch; batch-1 graph + sample",
             _export, ("sim_steps",)),
        Step("golden", "integer golden SNN == QAT model", _golden),
        Step("rtl", f"hwsim compile --sim {sim} of the exported step graph", _rtl,
             ("target", "sim", "lanes")),
        Step("sim", "compiled RTL on a real sample: == golden, == integer SNN, == torch", _sim),
        Step("estimate", "the compile's estimate on the target, SynOps beside", _estimate,
             ("cost_samples",)),
        Step("report", "report", _report, ("sweep",)),
    ]
    return Flow("snn", steps, Path(build), o)
