"""``hwsim sweep MODEL``: accuracy versus bit width, with the cost of each point on a target."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import output_dir, positive_int


def register(sub) -> None:
    from hwsim.sweep.models import SWEEP_MODELS

    p = sub.add_parser(
        "sweep", help="accuracy-versus-bit-width sweep with costs and a Pareto front",
        description="For each (weight bits, activation bits) point: quantize the model (PTQ "
                    "calibration or a short QAT fine-tune from the float checkpoint), evaluate "
                    "its own metric on validation data and ask the estimator for the cost on the "
                    "target. Finished points are saved at once; an interrupted sweep resumes. "
                    f"Models: {', '.join(SWEEP_MODELS) or 'none yet'}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("model", help="model to sweep")
    p.add_argument("--weights", default=None, help="weight bit widths, e.g. 2,3,4,8 "
                                                   "(default: the model's)")
    p.add_argument("--acts", default=None, help="activation bit widths, e.g. 4,6,8")
    p.add_argument("--method", default="ptq", choices=("ptq", "qat"))
    p.add_argument("--target", default=None, help="hardware target (default: the model's)")
    p.add_argument("--train-steps", type=positive_int, default=None,
                   help="steps of the float model the points start from (default: the model's)")
    p.add_argument("--jobs", type=positive_int, default=1, help="parallel worker processes")
    p.add_argument("--dask", default=None, metavar="ADDRESS",
                   help="dispatch points to a Dask scheduler (tcp://HOST:PORT), or 'local' for a "
                        "local cluster of --jobs workers")
    p.add_argument("-o", "--out", type=output_dir, default=None, help="sweep folder "
                                                                "(default: build/sweep/MODEL)")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from hwsim.files import check_output_dir
    from hwsim.sweep.run import model_sweep, parse_bits

    from ._common import print_json

    weights = parse_bits(args.weights, "weight") if args.weights is not None else None
    acts = parse_bits(args.acts, "activation") if args.acts is not None else None
    out = check_output_dir(args.out or Path("build/sweep") / args.model)
    res = model_sweep(args.model, out, weights, acts,
                      args.method, args.target, args.jobs, args.dask,
                      progress=not args.json,
                      options={"steps": args.train_steps} if args.train_steps else None)
    if args.json:
        print_json(res["rows"])
        return 0
    widths = [max(len(str(c)), *(len(_fmt(r[i])) for r in res["table"]))
              for i, c in enumerate(res["columns"])]
    print("  ".join(str(c).rjust(w) for c, w in zip(res["columns"], widths, strict=True)))
    for r in res["table"]:
        print("  ".join(_fmt(v).rjust(w) for v, w in zip(r, widths, strict=True)))
    print(f"report: {res['report']}")
    return 0


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "*" if v else ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
