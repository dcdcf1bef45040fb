"""``hwsim compile`` on the SwiftChannel student in its integer-ONNX form: compile time and the
compiled design's cycles next to the hand-composed ``swiftchannel-pipeline`` kernel's formula
on the same geometry."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

DESCRIPTION = ("hwsim compile on the SwiftChannel student (untrained, initialised; default "
               "geometry) exported as integer ONNX: compile time without simulation, "
               "optionally RTL == golden with a simulator, and cycles per inference next to the "
               "swiftchannel-pipeline kernel's cycle formula on the same geometry and taps")


def add_arguments(p) -> None:
    p.add_argument("--rows", type=int, default=24, help="input rows (default geometry: 96 "
                   "subcarriers / rf 4)")
    p.add_argument("--cols", type=int, default=32, help="input columns (16 BS × 2 UE antennas)")
    p.add_argument("--blocks", type=int, default=4, help="SPAB blocks")
    p.add_argument("--rf", type=int, default=4, help="PixelShuffle rows")
    p.add_argument("--sim", choices=("none", "icarus", "verilator"), default="none",
                   help="simulator of the RTL == golden check (after the timed compile)")
    p.add_argument("--target", default="xczu28dr", help="estimator target")
    p.add_argument("--seed", type=int, default=0, help="torch seed of the initialisation")
    p.add_argument("-o", "--out", type=Path, default=None,
                   help="keep the build folder and write figures.json here (default: a "
                        "temporary folder)")


def _student(args, folder: Path) -> tuple[Path, object]:
    import numpy as np
    import torch

    from models.swiftchannel.model import StudentConfig
    from models.swiftchannel.onnx_int import export_int_onnx
    from models.swiftchannel.qat import QuantSwiftChannel, int_model

    torch.manual_seed(args.seed)
    q = QuantSwiftChannel(StudentConfig(blocks=args.blocks, rf=args.rf, rs=1))
    x = np.random.default_rng(args.seed).normal(0, 1, (1, 2, args.rows, args.cols))
    im = int_model(q, torch.from_numpy(x.astype(np.float32)))
    return export_int_onnx(im, args.rows, args.cols, folder, batch=1)["qcdq"], im


def run(args) -> dict:
    from hwsim.compile.backend.swiftchannel import TAPS
    from hwsim.compile.driver import compile_model
    from hwsim.golden.swiftchannel import pipeline as pipe_spec

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.out) if args.out else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        model, im = _student(args, folder)
        quiet = lambda line: None  # noqa: E731
        t0 = time.perf_counter()
        s = compile_model(model, args.target, folder / "build", sim="none", progress=quiet)
        compile_s = time.perf_counter() - t0
        sim_s = None
        if args.sim != "none":  # the finished steps are reused: this runs the simulation
            t0 = time.perf_counter()
            s = compile_model(model, args.target, folder / "build", sim=args.sim,
                              progress=quiet)
            sim_s = time.perf_counter() - t0
        pipe = pipe_spec.frame_cycles(pipe_spec.PipelineParams.from_model(
            im, args.rows, args.cols, taps=TAPS))
        r = {"rows": args.rows, "cols": args.cols, "blocks": args.blocks, "rf": args.rf,
             "taps": TAPS, "target": args.target, "sim": args.sim,
             "compile_s": round(compile_s, 2), "sim_s": None if sim_s is None else round(sim_s, 2),
             "rtl_equals_golden": s["rtl_equals_golden"], "cycles_match": s["cycles_match"],
             "kernels": len(s["kernels"]), "compiled_cycles": s["cycles"],
             "pipeline_cycles": pipe, "ratio": round(s["cycles"] / pipe, 4),
             "luts": s.get("luts"), "dsps": s.get("dsps"), "brams": s.get("brams")}
        if args.out:
            (folder / "figures.json").write_text(json.dumps(r, indent=1))
    return r


def table(r: dict) -> str:
    eq = "-" if r["rtl_equals_golden"] is None else \
        ("yes" if r["rtl_equals_golden"] and r["cycles_match"] else "NO")
    sim = "-" if r["sim_s"] is None else f"{r['sim_s']:.1f}"
    return "\n".join([
        f"SwiftChannel student {r['rows']}×{r['cols']}, {r['blocks']} blocks, rf {r['rf']}, "
        f"taps {r['taps']}, target {r['target']}, simulator {r['sim']}",
        f"{'compile s':>9} {'sim s':>6} {'RTL==gold':>9} {'compiled cyc':>12} "
        f"{'pipeline cyc':>12} {'ratio':>6} {'LUT':>7} {'DSP':>5}",
        f"{r['compile_s']:>9.1f} {sim:>6} {eq:>9} {r['compiled_cycles']:>12} "
        f"{r['pipeline_cycles']:>12} {r['ratio']:>6.3f} {r['luts'] or 0:>7.0f} "
        f"{r['dsps'] or 0:>5.0f}"])
