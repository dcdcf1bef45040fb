"""``hwsim run``: the end-to-end co-design flow as resumable steps, ending in a report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import positive_int

FLOWS = ("ternary-mvu",)


def register(sub) -> None:
    p = sub.add_parser(
        "run", help="run the end-to-end flow (resumable steps) and write a report",
        description="Run a co-design flow as named steps under one build folder: stimulus, "
                    "golden model, RTL, cocotb on Icarus and Verilator (bit-exact, cycles), "
                    "synthesis, report. Finished steps are not redone; --from reruns from a step.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", nargs="?", default="ternary-mvu", choices=FLOWS,
                   help="what to carry through the flow")
    p.add_argument("-o", "--out", type=Path, default=Path("build/run"), help="build folder")
    p.add_argument("--from", dest="start", default=None, metavar="STEP",
                   help="rerun from this step on")
    p.add_argument("--lanes", type=positive_int, default=16)
    p.add_argument("--rows", type=positive_int, default=256)
    p.add_argument("--cols", type=positive_int, default=256)
    p.add_argument("--vectors", type=positive_int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sim", action="append", choices=("icarus", "verilator"),
                   help="simulators to run (default: both)")
    p.add_argument("--no-synth", action="store_true", help="skip synthesis")
    p.set_defaults(func=run)


def run(args) -> int:
    from hwsim.flow.ternary_slice import ternary_slice

    flow = ternary_slice(args.out, lanes=args.lanes, rows=args.rows, cols=args.cols,
                         vectors=args.vectors, seed=args.seed,
                         sims=tuple(args.sim or ("icarus", "verilator")),
                         synth=not args.no_synth)
    artifacts = flow.run(args.start)
    report = args.out / "report" / artifacts["report"]["report"]
    print(f"report: {report}")
    return 0 if artifacts["report"]["bit_exact"] else 1
