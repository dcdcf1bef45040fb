"""The co-design flow of SwiftChannel (``hwsim run swiftchannel``) on the RFSoC targets.

Every step calls the model's own library (:mod:`models.swiftchannel.pipeline`,
:mod:`hwsim.kernels.swiftchannel`) and re-checks the level before it:

1. ``train``     float student (Conv3XC) → re-parameterization → int8 QAT (Brevitas scales,
                 integer forward), integer ONNX graphs (QCDQ in/out, codes for qonnx) executed
                 (onnxruntime / qonnx) against the QAT model's codes (``train_run``)
2. ``export``    both ONNX files through ``onnx.checker``; their output codes ``==`` the QAT
                 model's and the golden's
3. ``golden``    NMSE (dB) of LS, LMMSE, float and int8 students on fresh Sionna channels, the
                 int8 one through the integer golden (which equals the QAT model code for code:
                 its forward is the integer pipeline, ``tests/golden/test_swiftchannel.py``)
4. ``rtl``       Verilog of every hardware layer (conv engines, SPAB gating units)
5. ``sim``       every layer under cocotb on Icarus, fed with the real codes of one Sionna
                 channel's LS estimate: bit-exact with the golden, cycles == the formulas
6. ``estimate``  latency at the target's clock (composed dataflow pipeline, with the
                 layer-sequential schedule of the simulated engines beside it), energy from the estimator's
                 action energies, optional UltraScale+ synthesis (``--synth``)
7. ``report``    ``report.md`` + ``report.html``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

from .common import check_sweep, check_target, close_report, mac_energy
from .core import Flow, Step, StepContext

#: taps per cycle of the composed pipeline the latency is quoted for (the bench's default)
PIPELINE_TAPS = 3

__all__ = ["TARGETS", "swiftchannel_flow"]

#: the RFSoC parts (the paper's design is a 200 MHz PL design on an XCZU49DR); VitaLLM is an
#: ASIC for BitNet's ternary/int8 cores and has no conv engine
TARGETS = ("xczu49dr", "xczu48dr", "xczu28dr")

#: layers emitted and simulated by default: every kernel configuration the student has (the
#: later SPAB blocks repeat block 0's shapes with other weights; ``all_layers`` runs them too).
#: The layer-sequential latency always sums every layer's cycle formula.
DEFAULT_LAYERS = ("head", "block0.c1", "block0.c2", "block0.gate", "tail", "up")


def _geometry(o: dict):
    from models.channels import DEFAULT, Geometry

    return Geometry(**{**DEFAULT.to_dict(), **o["geometry"]})


def _run(ctx: StepContext) -> Path:
    return ctx.path_of("train", "run")


def _train(ctx: StepContext) -> dict:
    import torch

    from models.swiftchannel.pipeline import train_run

    torch.set_num_threads(1)
    o = ctx.options
    meta = train_run(ctx.folder / "run", _geometry(o), n_train=o["n_train"], epochs=o["epochs"],
                     qat_epochs=o["qat_epochs"], seed=o["seed"])
    return {"run": "run", "geometry": meta["geometry"], "n_train": meta["n_train"],
            "epochs": meta["epochs"], "qat_epochs": meta["qat_epochs"],
            "onnx": meta["onnx"], "output_scale": meta["output_scale"],
            "final_loss_db": meta["loss_db"][-1], "final_qat_loss_db": meta["qat_loss_db"][-1]}


def _export(ctx: StepContext) -> dict:
    from quant.onnx import check

    run = _run(ctx)
    for f in ("int8.qonnx.onnx", "int8.qcdq.onnx"):
        check(run / f)
    d = ctx.artifacts["train"]["onnx"]
    # both graphs are integer graphs: their output codes must equal the QAT model's exactly
    for k in ("golden_mismatches", "qcdq_mismatches", "qonnx_mismatches"):
        if d[k]:
            raise HwsimError(f"{d[k]} of {d['codes']} output codes differ ({k})")
    return {"checked": ["int8.qonnx.onnx", "int8.qcdq.onnx"], **d,
            "output_lsb": ctx.artifacts["train"]["output_scale"]}


def _real_input(ctx: StepContext):
    from hwsim.golden.swiftchannel import network as sc
    from models.channels import generate_channels, ls_observation, pack_real
    from models.swiftchannel.pipeline import load_run

    geom, _, im, _ = load_run(_run(ctx))
    H = generate_channels(geom, 1, seed=4242)
    X = pack_real(ls_observation(H, geom, ctx.options["snr"], np.random.default_rng(0)))
    return im, X, sc.quantize_input(X, im)[0]


def _golden(ctx: StepContext) -> dict:
    import torch

    from hwsim.golden.swiftchannel import network as sc
    from models.swiftchannel.pipeline import evaluate

    torch.set_num_threads(1)
    o = ctx.options
    row = evaluate(_run(ctx), [o["snr"]], n_test=o["n_test"])["rows"][0]
    im, X, codes = _real_input(ctx)
    out = sc.swiftchannel_int(codes[None], im)
    np.savez(ctx.folder / "golden.npz", x_codes=codes, y_codes=out)
    return {"snr_db": o["snr"], "n_test": o["n_test"],
            "nmse_db": {k: row[k] for k in ("ls", "lmmse", "float", "int8")},
            "file": "golden.npz", "input_shape": list(codes.shape),
            "macs": sc.macs(im, *X.shape[2:])}


def _layers(ctx: StepContext):
    from hwsim.kernels import swiftchannel as kern

    im, _, codes = _real_input(ctx)
    from hwsim.loading import read_npz

    z = read_npz(ctx.path_of("golden", "golden.npz"), {"x_codes": "int"}, "golden step output")
    if not np.array_equal(z["x_codes"], codes):
        raise HwsimError("the real input's codes differ from the golden step's")
    layers = kern.student_layers(im, codes, ocp=ctx.options["ocp"] or None)
    keep = ctx.options["rtl_layers"]
    if keep:
        unknown = sorted(set(keep) - {l["name"] for l in layers})
        if unknown:
            raise HwsimError(f"swiftchannel has no layer {unknown[0]!r}; layers: "
                             f"{', '.join(l['name'] for l in layers)}")
        layers = [l for l in layers if l["name"] in keep]
    return layers


def _rtl(ctx: StepContext) -> dict:
    from rtl.emit import emit

    files = []
    for layer in _layers(ctx):
        k, p = layer["kernel"], layer["params"]
        emit(k.component(p), k.top, ctx.folder / layer["name"], k.manifest(p))
        files.append(f"{layer['name']}/{k.top}.v")
    return {"verilog": files, "layers": len(files)}


def _sim(ctx: StepContext) -> dict:
    from hwsim.kernels import swiftchannel as kern
    from hwsim.sim.runner import simulate

    rows = []
    for layer in _layers(ctx):
        rep = simulate(layer["kernel"], layer["params"],
                       [{"name": "real", "arrays": layer["arrays"]}],
                       ctx.folder / layer["name"], sim="icarus")
        c = rep.cases[0]
        rows.append({"kernel": layer["kernel"].name, "what": layer["name"],
                     "bit_exact": bool(rep.passed and c["bit_exact"]), "cycles": c["cycles"],
                     "formula_cycles": kern.layer_cycles(layer),
                     "sim_cycles_per_s": rep.cycles_per_s})
    bad = [r["what"] for r in rows if not r["bit_exact"]]
    if bad:
        raise HwsimError(f"RTL differs from golden on real activations: {', '.join(bad)}")
    return {"sim": "icarus", "runs": rows, "all_bit_exact": True}


def _estimate(ctx: StepContext) -> dict:
    o, a = ctx.options, ctx.artifacts
    runs = a["sim"]["runs"]
    calib = [{"kernel": r["kernel"], "what": r["what"], "simulated": r["cycles"],
              "estimated": r["formula_cycles"], "equal": r["cycles"] == r["formula_cycles"]}
             for r in runs]
    from hwsim.kernels import swiftchannel as kern

    im0, _, codes = _real_input(ctx)
    every = kern.student_layers(im0, codes, ocp=o["ocp"] or None)
    per_layer = {l["name"]: kern.layer_cycles(l) for l in every}
    cycles = sum(per_layer.values())
    g = a["golden"]
    from models.swiftchannel.pipeline import load_run

    _, _, im, _ = load_run(_run(ctx))
    weights = sum(int(np.prod(c.w.shape)) for c in
                  [im.head, *(c for b in im.blocks for c in (b.c1, b.c2)), im.tail, im.up])
    pixels = int(np.prod(g["input_shape"][1:]))
    # weights live in the engines' memories and are read once per output pixel and MAC;
    # activations arrive once per MAC from the line buffer (8 bits each)
    e = mac_energy(o["target"], g["macs"], weight_bits_read=8 * g["macs"],
                   act_bits_read=8 * g["macs"])
    # the composed dataflow pipeline (all layers overlapped; its RTL is checked == this formula
    # by the swiftchannel-pipeline tests) at the benchmark's default of 3 taps per cycle
    from hwsim.golden.swiftchannel import pipeline as pipe_spec
    rows, cols = (int(v) for v in g["input_shape"][-2:])
    pp = pipe_spec.PipelineParams.from_model(im, rows, cols, taps=PIPELINE_TAPS)
    pipe_cycles = pipe_spec.frame_cycles(pp)
    metrics = {"target": o["target"], "clock_mhz": e["clock_hz"] / 1e6,
               "layers": len(per_layer), "layers_simulated": len(runs),
               "latency_cycles": pipe_cycles, "latency_us": pipe_cycles / e["clock_hz"] * 1e6,
               "pipeline_taps": PIPELINE_TAPS,
               "latency_cycles_layer_sequential": cycles,
               "latency_us_layer_sequential": cycles / e["clock_hz"] * 1e6,
               "macs_per_inference": g["macs"], "weights": weights, "input_pixels": pixels,
               "energy_per_inference_uj": e["energy_j"] * 1e6,
               "schedule": f"composed dataflow pipeline, {PIPELINE_TAPS} taps per cycle "
                           "(layer-sequential with the simulated engines given alongside)"}
    paper = {"latency_us_same_design_on_paper_input_108x32":
             pipe_spec.frame_cycles(pipe_spec.PipelineParams.from_model(
                 im, 108, 32, taps=PIPELINE_TAPS)) / e["clock_hz"] * 1e6,
             "paper_latency": "sub-millisecond (XCZU49DR, 200 MHz PL)",
             "paper_params": "≈7.8 k", "paper_macs": "≈26.6 M per inference"}
    out = {"metrics": metrics, "calibration": calib, "layer_cycles": per_layer, "paper": paper,
           "energy_parts_uj":
           {k: v * 1e6 for k, v in e.items() if k.endswith("_j") and k != "energy_j"}}
    if o["synth"]:
        from hwsim.bench.swiftchannel import _synth

        out["resources"] = _synth(_layers(ctx), ctx.folder / "synth")
    return out


def _plots(ctx: StepContext) -> list[tuple[Path, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = ctx.artifacts
    runs = a["sim"]["runs"]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(runs) + 1.5), dpi=110)
    names = [r["what"] for r in runs]
    ax.barh(names, [r["cycles"] for r in runs], color="C0", label="simulated (Icarus)")
    ax.scatter([r["formula_cycles"] for r in runs], names, color="C3", zorder=3, s=14,
               label="formula (estimator)")
    ax.invert_yaxis()
    ax.set_xlabel("cycles per inference")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=8)
    ax.set_title("SwiftChannel: cycles per layer")
    fig.tight_layout()
    fig.savefig(ctx.folder / "layers.png")
    plt.close(fig)
    nm = a["golden"]["nmse_db"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    ax.bar(list(nm), list(nm.values()), color=["0.6", "0.4", "C0", "C1"])
    ax.set_ylabel("NMSE (dB), lower is better")
    ax.set_title(f"NMSE at {a['golden']['snr_db']:g} dB SNR, {a['golden']['n_test']} channels")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(ctx.folder / "nmse.png")
    plt.close(fig)
    return [(ctx.folder / "nmse.png", "NMSE of the estimators (float vs int8 golden)"),
            (ctx.folder / "layers.png", "Cycles per layer: simulated vs formula")]


def _report(ctx: StepContext) -> dict:
    from hwsim.report import Report

    a, o = ctx.artifacts, ctx.options
    tr, g, ex, s, es = a["train"], a["golden"], a["export"], a["sim"], a["estimate"]
    geo = tr["geometry"]
    r = Report(f"hwsim run: SwiftChannel on {o['target']}")
    r.para(f"Geometry: {geo['bs_ant']}×{geo['ue_ant']} antennas, {geo['subcarriers']} "
           f"subcarriers, pilots every {geo['freq_comp']} subcarriers / {geo['space_comp']} "
           f"antennas (Sionna CDL-{geo['cdl_model']}); {tr['n_train']} training channels, "
           f"{tr['epochs']} float + {tr['qat_epochs']} QAT epochs.")
    r.heading("Model metric: float vs quantized")
    nm = g["nmse_db"]
    r.table(["estimator", f"NMSE (dB) at {g['snr_db']:g} dB SNR"],
            [["LS + linear interpolation", nm["ls"]], ["LMMSE", nm["lmmse"]],
             ["SwiftChannel float", nm["float"]], ["SwiftChannel int8 (integer golden)",
                                                   nm["int8"]],
             ["int8 − float", nm["int8"] - nm["float"]]])
    r.heading("Bit-exactness at each level")
    n = ex["codes"]
    r.table(["level", "compared with", "result"], [
        ["integer ONNX on codes (qonnx)", "torch QAT model codes",
         f"{n - ex['qonnx_mismatches']} of {n} codes equal"],
        ["integer ONNX, QCDQ in/out (onnxruntime)", "torch QAT model codes",
         f"{n - ex['qcdq_mismatches']} of {n} codes equal"],
        ["integer golden", "torch QAT model codes",
         f"{n - ex['golden_mismatches']} of {n} codes equal (the QAT forward is the integer "
         f"pipeline; tests/golden/test_swiftchannel.py)"],
        [f"RTL (cocotb, {s['sim']}), {len(s['runs'])} of {len(es['layer_cycles'])} layers, "
         "one real channel", "golden codes",
         f"== on {sum(x['bit_exact'] for x in s['runs'])} of {len(s['runs'])} layers"]])
    r.heading("Cycles: estimated vs simulated")
    r.table(["kernel", "layer", "simulated", "estimated (formula)", "equal"],
            [[c["kernel"], c["what"], c["simulated"], c["estimated"], c["equal"]]
             for c in es["calibration"]])
    r.heading(f"Estimate on {o['target']}")
    r.table(["figure", "value"], [[k, v] for k, v in es["metrics"].items()])
    r.para("Energy is dynamic only, priced with the target's action energies of "
           "`hwsim.estimate` (a MAC = `int8_mul` + `acc_add`; weight and activation reads per "
           "MAC): " + ", ".join(f"{k} {v:.4g} µJ" for k, v in es["energy_parts_uj"].items())
           + ".")
    r.heading("Paper (arXiv 2605.01931) beside this design")
    r.table(["figure", "value"], [[k, v] for k, v in es["paper"].items()])
    r.para("The first row runs the composed pipeline's cycle formula (same taps) on the paper's "
           "(2, 108, 32) input; the paper's own figures are from REFERENCE.md.")
    if "resources" in es:
        res = es["resources"]
        r.heading("UltraScale+ resources (Yosys synth_xilinx, summed over the simulated layers)")
        r.table(["resource", "value"], [[k, v] for k, v in res.items()
                                        if not isinstance(v, (dict, list))])
    else:
        r.para("FPGA resources: not synthesized in this run (`--synth` runs Yosys on "
               "the simulated layers; `hwsim bench swiftchannel` reports them).")
    return close_report(r, ctx, _plots(ctx))


def swiftchannel_flow(build, target: str = "xczu49dr", bs_ant: int = 4, subcarriers: int = 32,
                      space_comp: int = 1, n_train: int = 1024, epochs: int = 12,
                      qat_epochs: int = 2, snr: float = 10.0, n_test: int = 64, seed: int = 0,
                      ocp: int = 0, synth: bool = False, rtl_layers=DEFAULT_LAYERS,
                      sweep=None) -> Flow:
    from models.channels import DEFAULT, Geometry

    check_target("swiftchannel", target, TARGETS)
    geometry = {"bs_ant": bs_ant, "subcarriers": subcarriers, "space_comp": space_comp}
    Geometry(**{**DEFAULT.to_dict(), **geometry})  # validate before anything runs
    if n_train < 32:
        raise HwsimError(f"need at least 32 training channels, not {n_train}")
    steps = [
        Step("train", "train float student, QAT int8, export QONNX + QCDQ", _train,
             ("geometry", "n_train", "epochs", "qat_epochs", "seed")),
        Step("export", "check ONNX exports against torch", _export),
        Step("golden", "integer golden inference: NMSE float vs int8", _golden,
             ("snr", "n_test")),
        Step("rtl", "emit RTL for every layer", _rtl, ("ocp", "rtl_layers")),
        Step("sim", "cocotb on a real channel: RTL == golden", _sim),
        Step("estimate", "estimate on the target, calibrated by simulation", _estimate,
             ("target", "synth")),
        Step("report", "report", _report, ("sweep",)),
    ]
    return Flow("swiftchannel", steps, Path(build),
                {"target": target, "geometry": geometry, "n_train": n_train, "epochs": epochs,
                 "qat_epochs": qat_epochs, "snr": snr, "n_test": n_test, "seed": seed,
                 "ocp": ocp, "synth": synth, "rtl_layers": list(rtl_layers),
                 "sweep": check_sweep("swiftchannel", sweep)})

