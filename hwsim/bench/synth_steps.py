"""Time each step of Yosys ``synth_xilinx`` on one Verilog design, to pin a slow synthesis down.

Runs ``synth_xilinx -run A:B`` for each pair of consecutive labels of the script (begin,
prepare, map_dsp, …, check) on one design held in the native libyosys (``pyosys``), in a child
process, and reports the seconds each step took and its share of the total. ``map_luts`` is
ABC9's LUT mapping; ``--mfs-free`` runs it with ABC9's default script minus ``&mfs`` (to see
what that one command costs), ``--abc-verify`` keeps ABC9's closing ``&verify``
(:func:`fpga.yosys.synth_xilinx` turns it off). Names with brackets are renamed first, as
:func:`fpga.yosys.synth_xilinx` does. ``--log`` keeps Yosys's log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from hwsim.errors import HwsimError, ToolMissingError

DESCRIPTION = ("seconds per step of Yosys synth_xilinx (begin … check) on one Verilog design, "
               "and each step's share of the total")

LABELS = ["begin", "prepare", "map_dsp", "coarse", "map_memory", "map_ffram", "fine", "map_cells",
          "map_ffs", "map_luts", "finalize", "check"]
#: Yosys 0.70's abc9.script.default without its final ``&mfs``
MFS_FREE = "+&scorr;&sweep;&dc2;&dch,-f,-r;&ps;&if,{W},{D},{R},-v"

# The child: one design in the native libyosys, one timed pass per step; the times go to a
# JSON file, Yosys's log to the child's stdout. A failing pass exits the child (log_error).
_CHILD = ("import json, sys, time\n"
          "from pyosys import libyosys as ys\n"
          "d = ys.Design()\n"
          "ys.run_pass(sys.argv[1], d)\n"
          "times = []\n"
          "for cmd in json.loads(sys.argv[2]):\n"
          "    t = time.perf_counter()\n"
          "    ys.run_pass(cmd, d)\n"
          "    times.append(time.perf_counter() - t)\n"
          "open(sys.argv[3], 'w').write(json.dumps(times))\n")


def add_arguments(p) -> None:
    p.add_argument("verilog", type=Path, help="the design's Verilog file")
    p.add_argument("top", help="top module")
    p.add_argument("--family", default="xcup", help="synth_xilinx -family")
    p.add_argument("--abc-verify", action="store_true", help="keep ABC9's closing &verify")
    p.add_argument("--mfs-free", action="store_true", help="ABC9's default script minus &mfs")
    p.add_argument("--log", type=Path, default=None, help="write Yosys's log here")


def run(args) -> dict:
    import importlib.util

    from fpga.yosys import bracket_free_names

    if importlib.util.find_spec("pyosys") is None:
        raise ToolMissingError("pyosys is not installed (run `make setup`)")
    if not Path(args.verilog).is_file():
        raise HwsimError(f"Verilog file {args.verilog} is not a file")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "design.v"
        src.write_text(bracket_free_names(Path(args.verilog).read_text()))
        pre = f"scratchpad -set abc9.verify {int(args.abc_verify)}; "
        if args.mfs_free:
            pre += f"scratchpad -set abc9.script {MFS_FREE}; "
        steps = [f"synth_xilinx -family {args.family} -top {args.top} -run {lo}:{hi}"
                 for lo, hi in zip(LABELS, [*LABELS[1:], ""], strict=True)]
        times = Path(tmp) / "times.json"
        proc = subprocess.run([sys.executable, "-c", _CHILD, pre + f"read_verilog {src.name}",
                               json.dumps(steps), str(times)], cwd=tmp, text=True,
                              capture_output=True)
        if args.log is not None:
            Path(args.log).write_text(proc.stdout + proc.stderr)
        if proc.returncode != 0 or not times.is_file():
            errors = [line for line in (proc.stdout + proc.stderr).splitlines()
                      if "ERROR" in line]
            raise HwsimError(f"yosys (pyosys) failed: "
                             f"{errors[-1] if errors else f'exit {proc.returncode}'}")
        seconds = json.loads(times.read_text())
    total = sum(seconds)
    return {"verilog": str(args.verilog), "top": args.top, "family": args.family,
            "abc_verify": args.abc_verify, "mfs_free": args.mfs_free, "total_s": total,
            "steps": [{"step": lo, "seconds": s, "share": s / total if total else 0.0}
                      for lo, s in zip(LABELS, seconds, strict=True)]}


def table(r: dict) -> str:
    lines = [f"{'step':<11} {'seconds':>8} {'share':>7}"]
    lines += [f"{s['step']:<11} {s['seconds']:8.2f} {s['share']:7.1%}" for s in r["steps"]]
    lines.append(f"{'total':<11} {r['total_s']:8.2f}")
    return "\n".join(lines)
