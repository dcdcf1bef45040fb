"""Time each step of Yosys ``synth_xilinx`` on one Verilog file (native pyosys, in this process).

    .venv/bin/python scripts/synth_steps.py DESIGN.v TOP [--family xcup] [--abc-verify]
        [--mfs-free] > yosys.log     # the step times go to stderr, Yosys's log to stdout

Runs ``synth_xilinx -run A:B`` for each pair of consecutive labels of the script (begin, prepare,
map_dsp, …, check) on one design in memory and prints the seconds each took, so a slow synthesis
can be pinned to its step. ``map_luts`` is ABC9's LUT mapping; ``--mfs-free`` runs it with
ABC9's default script minus ``&mfs`` (to see what that one command costs), ``--abc-verify``
keeps ABC9's closing ``&verify`` (``fpga.yosys.synth_xilinx`` turns it off). Names with
brackets are renamed first, as ``fpga.yosys.synth_xilinx`` does.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

LABELS = ["begin", "prepare", "map_dsp", "coarse", "map_memory", "map_ffram", "fine", "map_cells",
          "map_ffs", "map_luts", "finalize", "check"]
#: Yosys 0.70's abc9.script.default without its final ``&mfs``
MFS_FREE = "+&scorr;&sweep;&dc2;&dch,-f,-r;&ps;&if,{W},{D},{R},-v"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("verilog", type=Path)
    ap.add_argument("top")
    ap.add_argument("--family", default="xcup")
    ap.add_argument("--abc-verify", action="store_true")
    ap.add_argument("--mfs-free", action="store_true")
    a = ap.parse_args(argv)

    from pyosys import libyosys as ys

    from fpga.yosys import bracket_free_names

    d = ys.Design()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "design.v"
        src.write_text(bracket_free_names(a.verilog.read_text()))
        pre = f"scratchpad -set abc9.verify {int(a.abc_verify)}; "
        if a.mfs_free:
            pre += f"scratchpad -set abc9.script {MFS_FREE}; "
        ys.run_pass(pre + f"read_verilog {src}", d)
        total = 0.0
        for lo, hi in zip(LABELS, [*LABELS[1:], ""], strict=True):
            t = time.perf_counter()
            ys.run_pass(f"synth_xilinx -family {a.family} -top {a.top} -run {lo}:{hi}", d)
            dt = time.perf_counter() - t
            total += dt
            print(f"{lo:<11} {dt:8.1f} s", file=sys.stderr, flush=True)
    print(f"{'total':<11} {total:8.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
