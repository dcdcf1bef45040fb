"""The co-design flow of BitNet b1.58 (``hwsim run bitnet``, the default of ``make run``).

Steps, each under ``BUILD/<step>/`` and each re-checking the previous level's output:

1. ``train``     float baseline and ternary QAT model of BitNet-tiny on the embedded corpus
2. ``export``    QONNX + QCDQ of a decoder layer and the whole model; run by qonnx / onnxruntime
                 and compared with torch (verify ONNX against torch)
3. ``golden``    the whole model on the golden integer kernels, integer codes between layers;
                 greedy next-token agreement with the torch model of the same datapath
4. ``rtl``       Verilog of the kernels this model needs (ternary MVU per projection shape, the
                 attention head)
5. ``sim``       one decoder layer's real activation codes through that RTL under cocotb:
                 bit-exact with golden, and cycles == the kernel formulas
   ``compile``   the same layer with static int8 quantizers (calibrated on training text)
                 through ``hwsim compile`` on its real hidden state: RTL == the compiled golden,
                 cycles == the schedule, its estimate; its error against the QAT layer
6. ``estimate``  latency / throughput / energy / area on the target from the same formulas;
                 the simulated cycles are checked against the estimator's; the paper's silicon
                 figures for BitNet b1.58 3B on VitaLLM beside the estimator's
7. ``report``    ``report.md`` + self-contained ``report.html`` with plots and tool versions
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

from .core import Flow, Step, StepContext

__all__ = ["bitnet_flow", "rtl_layer"]


def _corpus():
    from models.bitnet.data import stdlib_corpus

    return stdlib_corpus()


def _load(ctx: StepContext, kind: str):
    from models.bitnet.checkpoint import load_checkpoint

    return load_checkpoint(ctx.path_of("train", kind))


def _calib(corpus, seq: int, n: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    starts = rng.integers(0, corpus.train.size - seq - 1, n)
    return np.stack([corpus.train[s:s + seq] for s in starts]).astype(np.int64)


# ------------------------------------------------------------------------------------------
def _train(ctx: StepContext) -> dict:
    import torch

    from models.bitnet.config import get_config
    from models.bitnet.train import TrainSettings, paper_ratios, train_bitnet

    torch.set_num_threads(1)
    o = ctx.options
    rep = train_bitnet(get_config(o["config"]), _corpus(),
                       TrainSettings(steps=o["steps"], seed=o["seed"], eval_windows=64),
                       ctx.folder, progress=True)
    return {"fp_ppl": rep["fp_ppl"], "ternary_ppl": rep["ternary_ppl"],
            "ppl_ratio": rep["ppl_ratio"], "paper_ratios": paper_ratios(),
            "steps": o["steps"], "corpus": rep["corpus"]}


def _export(ctx: StepContext) -> dict:
    from models.bitnet.export import export_agrees, export_bitnet, verify_export

    model, _ = _load(ctx, "ternary")
    exported = export_bitnet(model, ctx.folder / "onnx", seq=32)
    rows = verify_export(model, exported)
    for r in rows:  # the level contract: the exported graph computes what torch computes
        if not export_agrees(r):
            dflt = (f"; onnxruntime default options: max |Δ| "
                    f"{r['ort_default_max_abs_diff']:.3g}, {r['ort_default_positions_over_tol']}"
                    f" positions beyond" if "ort_default_max_abs_diff" in r else "")
            raise HwsimError(f"{r['file']} differs from torch: max |Δ| {r['max_abs_diff']:.3g} "
                             f"(peak {r['torch_peak']:.3g}), {r['positions_over_tol']} of "
                             f"{r['positions']} positions beyond 1e-4 · peak, argmax agreement "
                             f"{r['argmax_agreement']:.4f}{dflt}")
    return {"files": [Path(f).name for f in exported["files"]], "checks": rows,
            "tolerance": "per position max |Δ| ≤ 1e-4 · output peak (below one int8 step); "
                         "QCDQ (onnxruntime) may land one activation code away at a rounding "
                         "tie on ≤ 1 in 16 positions (≤ 5 % of the peak there); argmax "
                         "identical at every other position; QCDQ checked with graph "
                         "optimizations off and under onnxruntime's default session options"}


def _golden(ctx: StepContext) -> dict:
    import torch

    from models.bitnet.data import validation_windows
    from models.bitnet.integer_model import attach_datapath, build_integer_model, integer_forward

    model, meta = _load(ctx, "ternary")
    corpus = _corpus()
    seq = int(meta.get("settings", {}).get("seq", 128))
    im = build_integer_model(model, _calib(corpus, seq, 8))
    win = validation_windows(corpus.val, seq, ctx.options["windows"])[:, :-1]
    with torch.no_grad():
        ref_dp = attach_datapath(model, im)(torch.as_tensor(win)).argmax(-1).numpy()
        ref_qat = model(torch.as_tensor(win)).argmax(-1).numpy()
    got = np.stack([integer_forward(im, w).argmax(-1) for w in win])
    agree = float((got == ref_dp).mean())
    return {"positions": int(got.size), "greedy_agreement": agree,
            "greedy_agreement_vs_qat": float((got == ref_qat).mean()), "integer_model": im.info}


def _rtl(ctx: StepContext) -> dict:
    from hwsim.kernels import get_kernel
    from rtl.emit import emit

    model, _ = _load(ctx, "ternary")
    mvu = get_kernel("ternary-mvu")
    shapes = sorted({tuple(s) for s in model.config.projection_shapes().values()})
    files = []
    for rows, cols in shapes:
        p = mvu.params(lanes=16, rows=rows, cols=cols)
        top = f"ternary_mvu_{rows}x{cols}"
        emit(mvu.component(p), top, ctx.folder, mvu.manifest(p))
        files.append(f"{top}.v")
    att = get_kernel("attention-head")
    T = ctx.options["rtl_tokens"]
    ap = att.params(head_dim=model.config.head_dim, max_len=T,
                    lanes=min(16, model.config.head_dim), exp_lanes=min(4, T))
    emit(att.component(ap), "attention_head", ctx.folder, att.manifest(ap))
    files.append("attention_head.v")
    return {"verilog": files, "projection_shapes": [list(s) for s in shapes]}


def rtl_layer(model, im, tokens: np.ndarray, layer: int, build: Path,
              sim: str = "icarus") -> dict:
    """Every projection and every head of decoder ``layer`` on its RTL, fed with the real codes
    the golden integer model produces for ``tokens`` (1, T); bit-exact and cycle checks."""
    from hwsim.golden.common import attention_head as ah
    from hwsim.golden.vitallm import ternary_mvu as tm
    from hwsim.kernels import get_kernel
    from hwsim.kernels.attention_head import ops_to_arrays
    from hwsim.sim.runner import simulate
    from models.bitnet.integer import capture_projection, rtl_projection_case
    from models.bitnet.integer_model import integer_forward
    from models.bitnet.model import PROJECTIONS

    T = tokens.shape[1]
    rows = []
    mvu = get_kernel("ternary-mvu")
    for proj in PROJECTIONS:
        t = capture_projection(model, tokens, layer, proj)
        p = mvu.params(lanes=16, rows=t.W.shape[0], cols=t.W.shape[1])
        rep = simulate(mvu, p, [rtl_projection_case(t)], build / proj, sim=sim)
        c = rep.cases[0]
        rows.append({"kernel": "ternary-mvu", "what": proj, "shape": list(t.W.shape),
                     "vectors": T, "bit_exact": bool(rep.passed and c["bit_exact"]),
                     "cycles": c["cycles"], "formula_cycles": tm.stream_cycles(p, T),
                     "sim_cycles_per_s": rep.cycles_per_s})
    cap = {}
    integer_forward(im, tokens[0], capture=cap)
    att = get_kernel("attention-head")
    p = dataclasses.replace(im.attn, max_len=T, lanes=min(16, im.head_dim), exp_lanes=min(4, T))
    rep_kv = im.heads // im.kv_heads
    for h in range(im.heads):
        q, k = cap[layer]["q"][:, h], cap[layer]["k"][:, h // rep_kv]
        v = cap[layer]["v"][:, h // rep_kv]
        M, S = im.layers[layer].score_mult[h]
        ops = [("clear",), *[op for i in range(T) for op in (("kv", k[i], v[i]), ("q", q[i]))]]
        same = np.array_equal(np.stack([o for o, _ in ah.run_ops(ops, M, S, p)]),
                              cap[layer]["o"][:, h])
        case = {"name": f"head{h}", "arrays": {**ops_to_arrays(ops, p), "mult": M, "shift": S}}
        rep = simulate(att, p, [case], build / f"head{h}", sim=sim)
        rows.append({"kernel": "attention-head", "what": f"head {h}", "vectors": T,
                     "bit_exact": bool(rep.passed and all(c["bit_exact"] for c in rep.cases)
                                       and same),
                     "cycles": sum(c.get("cycles", 0) for c in rep.cases),
                     "formula_cycles": sum(c.get("expected_cycles", 0) for c in rep.cases),
                     "sim_cycles_per_s": rep.cycles_per_s})
    return {"layer": layer, "tokens": T, "sim": sim, "runs": rows,
            "all_bit_exact": all(r["bit_exact"] for r in rows)}


def _sim(ctx: StepContext) -> dict:
    from models.bitnet.integer_model import build_integer_model

    model, meta = _load(ctx, "ternary")
    corpus = _corpus()
    seq = int(meta.get("settings", {}).get("seq", 128))
    im = build_integer_model(model, _calib(corpus, seq, 8))
    T = ctx.options["rtl_tokens"]
    tokens = corpus.val[None, 1000:1000 + T].astype(np.int64)
    res = rtl_layer(model, im, tokens, ctx.options["rtl_layer"], ctx.folder, "icarus")
    if not res["all_bit_exact"]:
        bad = [r["what"] for r in res["runs"] if not r["bit_exact"]]
        raise HwsimError(f"RTL differs from golden on real activations: {', '.join(bad)}")
    return res


def _compile(ctx: StepContext) -> dict:
    """Decoder layer ``rtl_layer`` with static int8 quantizers (:mod:`models.bitnet.static_layer`,
    calibrated on training text) exported to QONNX and built by ``hwsim compile`` on the real
    hidden state of ``rtl_tokens`` validation tokens: RTL ``==`` the compiled golden on
    Icarus, cycles ``==`` the schedule, the compile's estimate on the flow's target; and what
    the static quantizers cost against the QAT layer on held-out text."""
    from hwsim.compile.driver import compile_model
    from models.bitnet.data import validation_windows
    from models.bitnet.static_layer import (
        export_static_layer,
        hidden_states,
        static_agreement,
        static_layer,
    )

    o = ctx.options
    model, _ = _load(ctx, "ternary")
    corpus = _corpus()
    T, li = o["rtl_tokens"], o["rtl_layer"]
    block = static_layer(model, li, _calib(corpus, T, 16))
    agree = static_agreement(model, li, block, validation_windows(corpus.val, T, 16)[:, :T])
    tokens = corpus.val[None, 1000:1000 + T].astype(np.int64)
    x = hidden_states(model, li, tokens)[0].numpy()
    onnx_file = export_static_layer(block, x, ctx.folder / f"layer{li}_static.qonnx.onnx",
                                    "qonnx")
    np.save(ctx.folder / "hidden.npy", x)
    s = compile_model(onnx_file, o["target"], ctx.folder / "compile",
                      input_path=ctx.folder / "hidden.npy", sim="icarus",
                      progress=lambda _line: None)
    if not (s["unsupported"] == [] and s["rtl_equals_golden"] and s["cycles_match"]):
        raise HwsimError(f"compiled static layer {li} on Icarus: RTL == golden "
                         f"{s['rtl_equals_golden']}, cycles == schedule {s['cycles_match']}")
    kernels = [k["kernel"] for k in s["kernels"]]
    keep = ("nodes", "rtl_equals_golden", "cycles_match", "cycles", "latency_us",
            "max_error_lsb_vs_onnxruntime", "area_mm2", "energy_uj", "power_mw", "luts",
            "dsps", "brams", "fits")
    return {"layer": li, "tokens": T, "file": onnx_file.name, "compile": "compile",
            "kernels": {k: kernels.count(k) for k in sorted(set(kernels))},
            "summary": {k: s[k] for k in keep if k in s}, "static_vs_qat": agree}


def _estimate(ctx: StepContext) -> dict:
    from hwsim.estimate import estimate
    from hwsim.estimate.validate import validation_table

    o = ctx.options
    est = estimate(f"bitnet-{o['config']}", o["target"]).to_dict()
    sim = ctx.artifacts["sim"]
    calib = [{"kernel": r["kernel"], "what": r["what"], "simulated": r["cycles"],
              "estimated": r["formula_cycles"], "equal": r["cycles"] == r["formula_cycles"]}
             for r in sim["runs"]]
    validation = validation_table() if o["target"] == "vitallm" else []
    (ctx.folder / "estimate.json").write_text(json.dumps(est, indent=1, default=str))
    keep = ("decode_tokens_per_s", "prefill_s", "energy_per_token_mj", "power_mw", "area_mm2",
            "luts", "dsps", "brams", "fits", "decode_bound", "prefill_bound", "target")
    return {"metrics": {k: est[k] for k in keep if k in est}, "calibration": calib,
            "validation": validation, "file": "estimate.json"}


# ------------------------------------------------------------------------------------------
def _plots(ctx: StepContext, est: dict) -> list[tuple[Path, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hwsim.estimate.arch import load_arch

    arch = load_arch(ctx.options["target"])
    clock = float(arch["clock"])
    # the sustained bandwidth of a weight stream (bits/s in the file → bytes/s)
    bw_bytes = float(arch.dram_bandwidth("sequential_read")) / 8
    out = []
    ops = [(f"{l['layer']}·{o['op']}" if len(est["layers"]["decode"]) > 1 else o["op"], o,
            l["repeat"]) for l in est["layers"]["decode"] for o in l["ops"]]
    names = [n for n, _, _ in ops]
    lat = [1e6 * max(o["compute_cycles"], o["memory_cycles"]) / clock * rep for _, o, rep in ops]
    energy = [(o["core_energy_uj"] + o["dram_energy_uj"]) * rep for _, o, rep in ops]
    fig, ax = plt.subplots(1, 2, figsize=(10, 0.28 * len(ops) + 1.6), dpi=110, sharey=True)
    ax[0].barh(names, lat, color=["C3" if o["bound"] == "memory" else "C0" for _, o, _ in ops])
    ax[0].set_xlabel("µs per decoded token (red: memory-bound)")
    ax[1].barh(names, energy, color="C1")
    ax[1].set_xlabel("µJ per decoded token (core + DRAM)")
    ax[0].invert_yaxis()
    for a in ax:
        a.grid(alpha=0.3, axis="x")
    fig.suptitle(f"{est['model']} on {est['target']}: decode latency and energy per op, "
                 f"all layers")
    fig.tight_layout()
    fig.savefig(ctx.folder / "layers.png")
    plt.close(fig)
    out.append((ctx.folder / "layers.png", "Decode latency and energy per op (estimator)"))

    pts = [(o["macs_per_byte"], o["macs"] / (max(o["compute_cycles"], o["memory_cycles"]) or 1)
            * clock, o["bound"], n) for n, o, _ in ops if o["macs"] and o["macs_per_byte"]]
    if pts:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
        xs = np.logspace(np.log10(min(p[0] for p in pts) / 2), np.log10(max(p[0] for p in pts)
                                                                          * 2), 50)
        ax.plot(xs, bw_bytes * xs, color="0.5", lw=2,
                label=f"memory roof: {bw_bytes / 1e9:.1f} GB/s × intensity")
        for x, y, bound, n in pts:
            ax.scatter(x, y, color="C3" if bound == "memory" else "C0", s=20)
            ax.annotate(n, (x, y), fontsize=7, xytext=(3, 2), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("operational intensity (MAC per off-chip byte)")
        ax.set_ylabel("achieved MAC/s")
        ax.set_title("Roofline of the decode ops (blue compute-, red memory-bound)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(ctx.folder / "roofline.png")
        plt.close(fig)
        out.append((ctx.folder / "roofline.png", "Roofline of the decode ops (estimator)"))
    return out


def _report(ctx: StepContext) -> dict:
    from hwsim.report import Report
    from hwsim.versions import tool_versions

    a, o = ctx.artifacts, ctx.options
    est = json.loads(ctx.path_of("estimate", a["estimate"]["file"]).read_text())
    r = Report(f"hwsim run: BitNet b1.58 {o['config']} on {o['target']}")
    tr = a["train"]
    r.para(f"Model: BitNet b1.58 `{o['config']}`, byte-level, trained {tr['steps']} steps on "
           f"{tr['corpus']['source']}. Target: `{o['target']}`.")
    r.heading("Model metric: float vs quantized")
    paper = ", ".join(f"{k} {v:.4f}" for k, v in tr["paper_ratios"].items())
    r.table(["model", "validation perplexity"],
            [["float baseline", tr["fp_ppl"]], ["ternary QAT (W1.58 A8)", tr["ternary_ppl"]],
             ["ratio ternary / float", f"{tr['ppl_ratio']:.4f} (paper: {paper})"]])
    r.heading("Bit-exactness at each level")
    rows = [[f"ONNX {c['format'].upper()} `{c['file']}`", "torch",
             f"max |Δ| {c['max_abs_diff']:.2e} (peak {c['torch_peak']:.3g}; "
             f"{c.get('positions_over_tol', 0)} of {c.get('positions', '?')} positions beyond "
             f"1e-4 · peak), argmax {c['argmax_agreement']:.4f}"
             + (f"; onnxruntime default options: max |Δ| {c['ort_default_max_abs_diff']:.2e}, "
                f"argmax {c['ort_default_argmax_agreement']:.4f}"
                if "ort_default_max_abs_diff" in c else "")] for c in a["export"]["checks"]]
    g = a["golden"]
    rows.append(["golden integer model", "torch model of the same integer datapath",
                 f"greedy next token identical on {g['greedy_agreement']:.4f} of "
                 f"{g['positions']} positions ({g['greedy_agreement_vs_qat']:.4f} vs the QAT "
                 f"model with float attention)"])
    s = a["sim"]
    n = len(s["runs"])
    rows.append([f"RTL (cocotb, {s['sim']}), layer {s['layer']}, {s['tokens']} real tokens",
                 "golden codes", f"== on {sum(x['bit_exact'] for x in s['runs'])} of {n} "
                                 f"kernel runs"])
    cp = a["compile"]
    rows.append([f"`hwsim compile` of layer {cp['layer']} with static int8 quantizers, "
                 f"{cp['tokens']} real tokens (Icarus)", "compiled golden graph",
                 f"RTL == golden {cp['summary']['rtl_equals_golden']}, cycles == schedule "
                 f"{cp['summary']['cycles_match']} ({cp['summary']['cycles']} cycles)"])
    r.table(["level", "compared with", "result"], rows)
    sq = cp["static_vs_qat"]
    r.heading("Static int8 layer (hwsim compile) vs the QAT layer")
    r.para(f"Layer {cp['layer']} with per-tensor static int8 quantizers in place of the "
           f"per-token absmax ones, on {sq['windows']} held-out windows of {sq['tokens']} "
           f"tokens: relative RMS error {sq['rel_rms_error']:.4f} (worst token "
           f"{sq['max_token_rel_error']:.4f}), cosine of the layer's update "
           f"{sq['update_cosine']:.4f}. Kernels: "
           + ", ".join(f"{k} × {n}" for k, n in cp["kernels"].items()) + ".")
    r.table(["figure", "value"], [[k, v] for k, v in cp["summary"].items()])
    r.heading("Cycles: estimated vs simulated")
    r.table(["kernel", "what", "simulated", "estimated (formula)", "equal"],
            [[c["kernel"], c["what"], c["simulated"], c["estimated"], c["equal"]]
             for c in a["estimate"]["calibration"]])
    r.heading(f"Estimate on {o['target']}")
    r.table(["figure", "value"], [[k, v] for k, v in a["estimate"]["metrics"].items()])
    for path, caption in _plots(ctx, est):
        r.figure(path, caption)
    if a["estimate"]["validation"]:
        r.heading("BitNet b1.58 3B on VitaLLM: estimator vs published silicon")
        val = a["estimate"]["validation"]
        cols = ["figure", "unit", "published", "estimated", "error_pct", "status", "source"]
        r.table(cols, [[row[c] for c in cols] for row in val])
    r.heading("Tools")
    r.table(["tool", "version"], list(tool_versions().items()))
    r.para("Step timings: " + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in a.items()) + ".")
    r.write(ctx.folder)
    ok = s["all_bit_exact"] and all(c["equal"] for c in a["estimate"]["calibration"]) \
        and cp["summary"]["rtl_equals_golden"] is True
    return {"report": "report.md", "html": "report.html", "bit_exact": ok}


def bitnet_flow(build, config: str = "tiny", target: str = "vitallm", steps: int = 300,
                seed: int = 0, windows: int = 16, rtl_tokens: int = 4, rtl_layer: int = 0) -> Flow:
    from hwsim.estimate.arch import known_targets
    from models.bitnet.config import get_config

    cfg = get_config(config)
    if target not in known_targets():
        raise HwsimError(f"unknown target {target!r}; targets: {', '.join(known_targets())}")
    if not 0 <= rtl_layer < cfg.layers:
        raise HwsimError(f"--rtl-layer {rtl_layer} does not exist ({cfg.layers} layers)")
    if not 1 <= rtl_tokens <= cfg.max_seq:
        raise HwsimError(f"--rtl-tokens must be 1 … {cfg.max_seq}")
    steps_ = [
        Step("train", "train float + ternary QAT BitNet", _train, ("config", "steps", "seed")),
        Step("export", "export QONNX + QCDQ, verify against torch", _export),
        Step("golden", "integer golden inference", _golden, ("windows",)),
        Step("rtl", "emit RTL for the model's kernels", _rtl, ("rtl_tokens",)),
        Step("sim", "cocotb on real activations: RTL == golden", _sim,
             ("rtl_tokens", "rtl_layer")),
        Step("compile", "static int8 decoder layer through hwsim compile", _compile,
             ("rtl_tokens", "rtl_layer", "target")),
        Step("estimate", "estimate on the target, calibrated by simulation", _estimate,
             ("target",)),
        Step("report", "report", _report),
    ]
    return Flow("bitnet", steps_, Path(build),
                {"config": config, "target": target, "steps": steps, "seed": seed,
                 "windows": windows, "rtl_tokens": rtl_tokens, "rtl_layer": rtl_layer})
