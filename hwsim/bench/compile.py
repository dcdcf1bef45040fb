"""``hwsim compile`` on models no seed flow knows: compile time, RTL == golden, cycles,
deviation from onnxruntime, resources and how busy the generated multipliers are."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

DESCRIPTION = ("hwsim compile on the example models of hwsim.compile.examples (an MLP, a "
               "transformer encoder block, CNNs, BitNet-tiny's feed-forward half and a whole "
               "decoder layer with static quantizers), each exported to QONNX "
               "and QCDQ: compile time without simulation, simulation time, RTL == golden, "
               "cycles == formula, largest deviation from onnxruntime against the lowering's "
               "bound, FPGA resources, and the multipliers' utilization (MACs per inference / "
               "(cycles × MVU lanes))")


#: the models of :data:`hwsim.compile.examples.EXAMPLES` (named here: building the command
#: line must not import torch)
EXAMPLE_NAMES = ("mlp", "encoder", "gated-cnn", "cnn", "bitnet-ffn", "bitnet-layer")


def add_arguments(p) -> None:
    p.add_argument("--examples", nargs="+", choices=EXAMPLE_NAMES, default=list(EXAMPLE_NAMES),
                   help="which example models")
    p.add_argument("--formats", nargs="+", choices=("qonnx", "qcdq"),
                   default=["qonnx", "qcdq"], help="export formats")
    p.add_argument("--sim", choices=("none", "icarus", "verilator"), default="icarus",
                   help="simulator of the RTL == golden check")
    p.add_argument("--target", default="xczu28dr", help="estimator target")
    p.add_argument("--max-lanes", type=int, default=8, help="most lanes per MVU")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="keep the build folders here (default: a temporary folder)")


def _macs_and_lanes(kernels: list[dict]) -> tuple[int, int]:
    macs = lanes = 0
    for k in kernels:
        if k["kernel"] in ("int8-mvu", "ternary-mvu"):
            p = k["params"]
            macs += p["rows"] * p["cols"] * k["vectors"]
            lanes += p["lanes"]
    return macs, lanes


def _one(name: str, fmt: str, folder: Path, args) -> dict:
    from hwsim.compile.driver import compile_model
    from hwsim.compile.examples import export

    model = export(name, folder / f"{name}_{fmt}.onnx", fmt)
    quiet = lambda line: None  # noqa: E731
    t0 = time.perf_counter()
    s = compile_model(model, args.target, folder / f"{name}_{fmt}", sim="none",
                      max_lanes=args.max_lanes, progress=quiet)
    compile_s = time.perf_counter() - t0
    sim_s = None
    if args.sim != "none":  # the finished steps are reused: this runs the simulation only
        t0 = time.perf_counter()
        s = compile_model(model, args.target, folder / f"{name}_{fmt}", sim=args.sim,
                          max_lanes=args.max_lanes, progress=quiet)
        sim_s = time.perf_counter() - t0
    macs, lanes = _macs_and_lanes(s["kernels"])
    bound = max((max(st["bound_lsb"].values(), default=0) for st in s["lowering"]["steps"]),
                default=0)
    return {"example": name, "format": fmt, "nodes": s["nodes"],
            "kernels": len(s["kernels"]), "compile_s": round(compile_s, 2),
            "sim_s": None if sim_s is None else round(sim_s, 2),
            "rtl_equals_golden": s["rtl_equals_golden"], "cycles_match": s["cycles_match"],
            "cycles": s["cycles"], "latency_us": s["latency_us"],
            "max_error_lsb": s["max_error_lsb_vs_onnxruntime"], "bound_lsb": bound,
            "luts": s.get("luts"), "dsps": s.get("dsps"), "brams": s.get("brams"),
            "fits": s.get("fits"), "macs": macs, "mvu_lanes": lanes,
            "mac_utilization": round(macs / (s["cycles"] * lanes), 4) if lanes else None}


def run(args) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out) if args.out else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.examples:
            for fmt in args.formats:
                rows.append(_one(name, fmt, folder, args))
    return {"target": args.target, "sim": args.sim, "max_lanes": args.max_lanes, "rows": rows}


def table(r: dict) -> str:
    head = (f"{'example':<10} {'format':<6} {'nodes':>5} {'kern':>4} {'compile s':>9} "
            f"{'sim s':>6} {'RTL==gold':>9} {'cycles':>7} {'err/bound LSB':>13} {'LUT':>6} "
            f"{'DSP':>4} {'MAC util':>8}")
    lines = [f"target {r['target']}, simulator {r['sim']}, max lanes {r['max_lanes']}", head]
    for x in r["rows"]:
        eq = "-" if x["rtl_equals_golden"] is None else \
            ("yes" if x["rtl_equals_golden"] and x["cycles_match"] else "NO")
        util = "-" if x["mac_utilization"] is None else f"{x['mac_utilization']:.3f}"
        sim = "-" if x["sim_s"] is None else f"{x['sim_s']:.1f}"
        lines.append(
            f"{x['example']:<10} {x['format']:<6} {x['nodes']:>5} {x['kernels']:>4} "
            f"{x['compile_s']:>9.1f} {sim:>6} "
            f"{eq:>9} {x['cycles']:>7} {x['max_error_lsb']:>6.3g}/{x['bound_lsb']:<6} "
            f"{x['luts'] or 0:>6.0f} {x['dsps'] or 0:>4.0f} {util:>8}")
    return "\n".join(lines)
