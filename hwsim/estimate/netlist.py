"""Area of hwsim's own RTL as standard cells: the kernel's Verilog through Yosys onto a small
cell library (``tables/cells_nangate45.yaml``: NanGate FreePDK45 cell areas), memories kept
apart and priced as SRAM (``asic_horowitz45``'s 6T bitcell and an array efficiency).

This is the netlist face of the estimator's ASIC area: the same kernel and parameters as
``hwsim rtl emit`` give ``area_um2`` (logic, 45 nm, by cell type), ``memory_bits`` and their
SRAM area, and both scaled to 16 nm by the table's area rule (``area_mm2_16nm``). Flow:
``synth -flatten`` up to its fine stage (memories inferred, not mapped: ``$mem_v2`` cells,
whose bits are read from the design), generic techmap, ``dfflegalize`` (plain D flip-flops, their
reset and enable as logic), ``abc`` onto the combinational cells, ``ltp -noff`` (the logic depth:
cells on the longest path no flip-flop cuts), ``dfflibmap`` (``DFF_X1``), then ``stat -liberty``.
No delays, no power here: the cell description has areas and functions only (docs/asic.md).
"""

from __future__ import annotations

import json
import re
import tempfile
from functools import lru_cache
from pathlib import Path

import yaml

from hwsim.errors import HwsimError

__all__ = ["CELLS", "UNITS", "asic_area", "estimator_cells_um2", "liberty", "load_cells",
           "synth_cells", "unit_areas"]

CELLS = Path(__file__).parent / "tables" / "cells_nangate45.yaml"

@lru_cache(maxsize=4)
def load_cells(path: Path = CELLS) -> dict:
    """The cell description: ``{"name", "node_nm", "source", "cells": {name: {area_um2,
    inputs, output, function | flop}}}``."""
    d = yaml.safe_load(Path(path).read_text())
    if d.get("schema") != "hwsim-cells/1":
        raise HwsimError(f"{path}: not a hwsim cell description (schema hwsim-cells/1)")
    h = float(d["height_um"])
    cells = {n: {**c, "area_um2": round(float(c["width_um"]) * h, 6)}
             for n, c in d["cells"].items()}
    if sum(bool(c.get("flop")) for c in cells.values()) != 1:
        raise HwsimError(f"{path}: needs exactly one flip-flop cell")
    return {"name": d["name"], "node_nm": float(str(d["node"]).split()[0]),
            "source": d["source"], "cells": cells}


def liberty(cells: dict) -> str:
    """A Liberty library of ``cells`` (areas and functions only: what ``dfflibmap``, ``abc``
    and ``stat -liberty`` read)."""
    lines = [f"library ({cells['name']}) {{", "  delay_model : table_lookup ;",
             '  time_unit : "1ns" ;', "  capacitive_load_unit (1,ff) ;"]
    for name, c in cells["cells"].items():
        lines.append(f"  cell ({name}) {{")
        lines.append(f"    area : {c['area_um2']} ;")
        if c.get("flop"):
            d, ck = c["inputs"]
            lines += [f'    ff (IQ, IQN) {{ next_state : "{d}" ; clocked_on : "{ck}" ; }}',
                      f"    pin ({d}) {{ direction : input ; }}",
                      f"    pin ({ck}) {{ direction : input ; clock : true ; }}",
                      f'    pin ({c["output"]}) {{ direction : output ; function : "IQ" ; }}']
        else:
            lines += [f"    pin ({p}) {{ direction : input ; }}" for p in c["inputs"]]
            lines.append(f'    pin ({c["output"]}) {{ direction : output ; '
                         f'function : "{c["function"]}" ; }}')
        lines.append("  }")
    return "\n".join([*lines, "}", ""])


def _memory_bits(design: dict) -> list[dict]:
    out = []
    for mod in design["modules"].values():
        for name, c in mod["cells"].items():
            if c["type"].startswith("$mem"):
                width = int(c["parameters"]["WIDTH"], 2)
                size = int(c["parameters"]["SIZE"], 2)
                out.append({"name": name, "width": width, "depth": size, "bits": width * size})
    return out


def synth_cells(verilog: Path, top: str, cells: dict | None = None, workdir: Path | None = None,
                timeout: float = 3600) -> dict:
    """Map ``verilog`` (module ``top``) onto ``cells``: ``{"cells_by_type", "area_um2",
    "sequential_area_um2", "memories", "logic_depth"}`` (memories not mapped, listed with their
    bits; ``logic_depth``: cells on the longest path that no flip-flop cuts, Yosys ``ltp -noff``)."""
    from fpga.yosys import bracket_free_names, run_yosys

    cells = cells or load_cells()
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(workdir) if workdir else Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        (wd / "cells.lib").write_text(liberty(cells))
        (wd / "top.v").write_text(bracket_free_names(Path(verilog).read_text()))
        # flattening leaves $scopeinfo cells (hierarchy names only, no logic): drop them
        # the cells as black boxes with port directions, so that `ltp` can walk the netlist
        script = (f"read_liberty -lib cells.lib; read_verilog top.v; "
                  f"synth -top {top} -flatten -run begin:fine; "
                  "delete t:$scopeinfo; write_json design.json; opt -fast -full; techmap; opt -fast; "
                  "dfflegalize -cell $_DFF_P_ 01; abc -liberty cells.lib; opt_clean; "
                  "tee -q -o ltp.txt ltp -noff; dfflibmap -liberty cells.lib; opt_clean; "
                  "tee -q -o stat.json stat -liberty cells.lib -json")
        run_yosys(script, cwd=wd, log=wd / "yosys.log", timeout=timeout)
        stat = json.loads((wd / "stat.json").read_text())["design"]
        mems = _memory_bits(json.loads((wd / "design.json").read_text()))
        depth = re.search(r"Longest topological path in \S+ \(length=(\d+)\)",
                          (wd / "ltp.txt").read_text())
    by_type = {k: v for k, v in stat["num_cells_by_type"].items() if not k.startswith("$mem")}
    unknown = sorted(k for k in by_type if k not in cells["cells"])
    if unknown:
        raise HwsimError(f"cells left unmapped by the ASIC flow: {', '.join(unknown)}")
    return {"cells_by_type": by_type, "area_um2": float(stat["area"]),
            "sequential_area_um2": float(stat.get("sequential_area", 0.0)), "memories": mems,
            "logic_depth": int(depth.group(1)) if depth else None}


#: the arithmetic units the estimator's ASIC area tables price (``asic_horowitz45``'s ``area.*``),
#: as Verilog: a key's cell area is what this flow builds for it
UNITS = {
    "add8": "module add8(input [7:0] a, b, output [7:0] y); assign y = a + b; endmodule",
    "add16": "module add16(input [15:0] a, b, output [15:0] y); assign y = a + b; endmodule",
    "add32": "module add32(input [31:0] a, b, output [31:0] y); assign y = a + b; endmodule",
    "mul8": "module mul8(input signed [7:0] a, b, output signed [15:0] y); "
            "assign y = a * b; endmodule",
    "mul32": "module mul32(input signed [31:0] a, b, output signed [63:0] y); "
             "assign y = a * b; endmodule",
}


def unit_areas(workdir: Path | None = None) -> dict[str, float]:
    """Cell area (µm², 45 nm) of each :data:`UNITS` entry on the cells of ``CELLS``: the
    figures ``asic_horowitz45``'s adder and multiplier areas are taken from."""
    cells = load_cells()
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(workdir) if workdir else Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        for name, text in UNITS.items():
            v = wd / f"{name}.v"
            v.write_text(text + "\n")
            out[name] = synth_cells(v, name, cells, wd / name)["area_um2"]
    return out


#: the node the area is scaled to (VitaLLM's)
TARGET_NODE_NM = 16.0


def asic_area(kernel, params, workdir: Path | None = None) -> dict:
    """Cell-mapped area of one registered kernel (``hwsim.kernels.Kernel``) at ``params``, at
    the library's node and scaled to :data:`TARGET_NODE_NM` (``asic_horowitz45``'s area
    rule)."""
    from hwsim.estimate.arch import load_arch
    from hwsim.estimate.tables import load_tables
    from rtl.emit import to_verilog

    cells = load_cells()
    with tempfile.TemporaryDirectory() as tmp:
        wd = Path(workdir) if workdir else Path(tmp)
        wd.mkdir(parents=True, exist_ok=True)
        v = wd / f"{kernel.top}.v"
        v.write_text(to_verilog(kernel.component(params), kernel.top))
        r = synth_cells(v, kernel.top, cells, wd / "yosys")
    t = load_tables("asic_horowitz45")
    bits = sum(m["bits"] for m in r["memories"])
    # SRAM priced as the estimator prices VitaLLM's: bitcell area / array efficiency
    efficiency = load_arch("vitallm")["area.sram_array_efficiency"]
    mem_um2 = bits * t.raw("area.sram_bitcell") * 1e12 / efficiency
    scale = (TARGET_NODE_NM / cells["node_nm"]) ** t.raw("scaling.area_exponent")
    area_by_type = {k: round(n * cells["cells"][k]["area_um2"], 3)
                    for k, n in sorted(r["cells_by_type"].items())}
    est = estimator_cells_um2(kernel.name, params, t)
    return {
        "kernel": kernel.name, "library": cells["name"], "library_source": cells["source"],
        "node_nm": cells["node_nm"], "cells": sum(r["cells_by_type"].values()),
        "cells_by_type": dict(sorted(r["cells_by_type"].items())),
        "area_by_type_um2": area_by_type, "area_um2": r["area_um2"],
        "sequential_area_um2": r["sequential_area_um2"],
        # cells on the longest path between flip-flops, memories and ports (area-mapped)
        "logic_depth": r["logic_depth"],
        "memories": r["memories"], "memory_bits": bits, "memory_area_um2": mem_um2,
        "sram_array_efficiency": efficiency,
        "area_scale_16nm": scale,
        "logic_mm2_16nm": r["area_um2"] * scale / 1e6,
        "area_mm2_16nm": (r["area_um2"] + mem_um2) * scale / 1e6,
        # the estimator's own cell area for the same unit (45 nm), where it has a model
        "estimator_area_um2": est,
        "estimator_over_netlist": est / r["area_um2"] if est else None,
    }


def estimator_cells_um2(kernel: str, params, tables=None) -> float | None:
    """The estimator's own cell area (µm², 45 nm) of a kernel instance: its datapath inventory
    (``hwsim.estimate.design.PRICING``) priced by ``asic_horowitz45``; ``None`` for a kernel it
    does not price or a deep pipeline (the inventories describe the short one)."""
    from hwsim.estimate.area import inventory_cells
    from hwsim.estimate.design import PRICING
    from hwsim.estimate.tables import load_tables

    if kernel not in PRICING or getattr(params, "pipeline", "short") != "short":
        return None
    tables = tables or load_tables("asic_horowitz45")
    return inventory_cells(tables, PRICING[kernel].inventory(params)) * 1e12
