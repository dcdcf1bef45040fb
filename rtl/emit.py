"""Verilog emission of hwsim components, with a JSON manifest beside each module.

The manifest lists the ports (Amaranth's ``name__member`` names, direction, width), the
elaboration parameters and the cycle formulas, so a tool downstream (cocotb runner, FPGA flow,
a user's SoC integration) needs nothing but the two files.
"""

from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from hwsim.files import staged_dir

__all__ = ["emit", "port_list", "to_verilog"]


def port_list(component: wiring.Component) -> list[dict]:
    """Ports as Verilog sees them: clk and rst first, then the signature's members."""
    ports = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        ports.append({
            "name": "__".join(str(p) for p in path),
            "dir": "in" if member.flow == wiring.In else "out",
            "width": len(value.as_value() if hasattr(value, "as_value") else value),
        })
    return ports


def to_verilog(component: wiring.Component, name: str) -> str:
    return verilog.convert(component, name=name, emit_src=False)


def emit(component: wiring.Component, name: str, out_dir: Path, manifest: dict) -> dict[str, Path]:
    """Write ``<name>.v`` and ``<name>.json`` into ``out_dir`` atomically; return their paths.

    ``manifest`` carries kernel-specific entries (parameters, cycle formulas); the port list,
    top-level name and file names are added here.
    """
    text = to_verilog(component, name)
    full = {"top": name, "verilog": f"{name}.v", "ports": port_list(component), **manifest}
    out_dir = Path(out_dir)
    with staged_dir(out_dir) as stage:
        (stage / f"{name}.v").write_text(text)
        (stage / f"{name}.json").write_text(json.dumps(full, indent=2) + "\n")
    return {"verilog": out_dir / f"{name}.v", "manifest": out_dir / f"{name}.json"}
