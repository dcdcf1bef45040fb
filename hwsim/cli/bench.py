"""``hwsim bench NAME [--json]``: measured figures for a kernel, a model or a flow."""

from __future__ import annotations

import argparse
from pathlib import Path

from hwsim.bench import BENCHES, load

from ._common import output_dir, print_json


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure figures (cycles, utilization, resources, speed)",
                       description="Run a benchmark and print its figures as a table, or as one "
                                   "JSON object with --json. Figures are measured in this run.")
    bsub = p.add_subparsers(dest="bench_name", metavar="NAME", required=True)
    for name in BENCHES:
        mod = load(name)
        bp = bsub.add_parser(name, help=mod.DESCRIPTION, description=mod.DESCRIPTION,
                             formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        bp.add_argument("--json", action="store_true", help="print one JSON object")
        mod.add_arguments(bp)
        for action in bp._actions:  # a bench's output folder is checked like every command's
            if action.dest == "out" and action.type is Path:
                action.type = output_dir
        bp.set_defaults(func=_run, bench_module=mod)


def _run(args) -> int:
    result = args.bench_module.run(args)
    if args.json:
        print_json(result)
    else:
        print(args.bench_module.table(result))
    return 0
