"""``hwsim compile MODEL.onnx --target T -o DIR``: an ONNX model to verified hardware."""

from __future__ import annotations

from pathlib import Path

from ._common import build_dir, positive_int, print_json


def register(sub) -> None:
    p = sub.add_parser(
        "compile", help="compile a quantized ONNX model (QONNX or QCDQ) to verified RTL",
        description="Read a quantized ONNX model (QONNX or QCDQ), lower it to hwsim's integer "
                    "dialect (verified after every step), build a streaming dataflow design "
                    "of registry kernels, simulate it with cocotb against the golden graph, "
                    "estimate it on the target and write a report. Finished steps are reused "
                    "when the command is run again on the same folder.")
    p.add_argument("model", type=Path, help="the ONNX file (checked with onnx.checker first)")
    p.add_argument("--target", required=True,
                   help="estimator target: an architecture name (e.g. xczu28dr, vitallm) or "
                        "YAML path")
    p.add_argument("-o", "--out", type=build_dir, default="build/compile",
                   help="build folder: lowered.onnx, rtl/, report.md, report.html")
    p.add_argument("--input", type=Path, default=None,
                   help="a float input sample (.npy, the model's input shape), quantized by "
                        "the graph's own input quantizer; default: a seeded random sample "
                        "within that quantizer's range")
    p.add_argument("--sim", choices=("none", "icarus", "verilator"), default="icarus",
                   help="HDL simulator for the RTL == golden check (none: skip)")
    p.add_argument("--max-lanes", type=positive_int, default=8,
                   help="most multipliers per matrix–vector node")
    p.add_argument("--seed", type=int, default=0, help="seed of the default input sample")
    p.add_argument("--redo", metavar="STEP", default=None,
                   help="rerun from this step on (frontend, lower, rtl, sim, estimate)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_compile)


def run_compile(args) -> int:
    import sys

    from hwsim.compile.driver import compile_model

    progress = (lambda line: print(line, file=sys.stderr)) if args.json else print
    s = compile_model(args.model, args.target, args.out, input_path=args.input, sim=args.sim,
                      max_lanes=args.max_lanes, seed=args.seed, progress=progress,
                      start=args.redo)
    if args.json:
        print_json(s)
    else:
        print(f"{'node':<32} {'kernel':<10} {'vectors':>7} {'cycles/vec':>10}")
        for k in s["kernels"]:
            print(f"{k['name'][:32]:<32} {k['kernel']:<10} {k['vectors']:>7} "
                  f"{k['cycles_per_vector']:>10}")
        eq = s["rtl_equals_golden"]
        print(f"RTL == golden: {'not simulated' if eq is None else eq}; cycles {s['cycles']}"
              f"; max error vs {s['reference']}: {s['max_error_lsb_vs_onnxruntime']:.3g} LSB")
        for k in ("latency_us", "luts", "dsps", "brams", "fits", "area_mm2", "energy_uj",
                  "power_mw"):
            if s.get(k) is not None:
                print(f"  {k}: {s[k]}")
        print(f"report: {Path(args.out) / 'report.md'}")
    return 0 if s["rtl_equals_golden"] in (True, None) else 1
