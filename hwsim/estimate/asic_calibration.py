"""The estimator's ASIC area beside the cell-mapped area of hwsim's own RTL.

Two checks, both run by ``hwsim bench estimate --calibration``:

* **units** — every adder and multiplier area of ``asic_horowitz45`` is what the cell flow
  (:mod:`hwsim.estimate.netlist`) builds for it (:func:`unit_rows`): the table's source;
* **kernels** — for each configuration of :data:`CONFIGS`, the kernel's Verilog mapped onto the
  NanGate45 cells beside the estimator's inventory of the same instance priced by the table
  (:func:`kernel_rows`): cell area, flip-flop bits, their ratio. A configuration of a kernel whose
  inventory is derived from its RTL (``model: "rtl datapath"``) is held to ±20 %
  (:data:`TOLERANCE`); the other inventories are assumptions and their ratio is what the table
  shows, not a goal.

Memories are left out on both sides (the netlist keeps them as memories; the estimator prices
them as SRAM). Every configuration synthesizes in about a minute or less on one core.
"""

from __future__ import annotations

from hwsim.errors import HwsimError

__all__ = ["CONFIGS", "ECP5_TARGET", "TOLERANCE", "kernel_rows", "unit_rows"]

#: the largest |estimator / netlist − 1| of a kernel whose inventory follows its RTL
TOLERANCE = 0.20
#: inventories built from the RTL's structure (``hwsim.estimate.area.mvu_inventory``)
RTL_DATAPATH = ("ternary-mvu", "int8-mvu", "booth-core")
#: (kernel, parameters) of every calibration row; ``booth-core`` is the Booth engine harness of
#: ``hwsim bench estimate`` (``lanes`` radix-4 Booth products, tree, accumulator) beside the
#: estimator's per-lane Booth core of ``hwsim.estimate.area``
CONFIGS: tuple[tuple[str, dict], ...] = (
    ("ternary-mvu", {"lanes": 4, "rows": 8, "cols": 16}),
    ("ternary-mvu", {"lanes": 8, "rows": 64, "cols": 64}),
    ("ternary-mvu", {}),
    ("ternary-mvu", {"lanes": 32, "rows": 64, "cols": 256}),
    ("ternary-mvu", {"rows": 128, "cols": 512, "mult_bits": 8}),
    ("ternary-mvu", {"rows": 64, "cols": 64, "mult_bits": 24}),
    ("int8-mvu", {"lanes": 2, "rows": 8, "cols": 16, "mult_bits": 8}),
    ("int8-mvu", {"lanes": 4, "rows": 8, "cols": 16}),
    ("int8-mvu", {"lanes": 2, "rows": 8, "cols": 16, "mult_bits": 8, "bias": True}),
    ("int8-mvu", {"lanes": 2, "rows": 4, "cols": 8, "per_row_scale": True}),
    ("booth-core", {"lanes": 4}),
    ("rope", {}),
    ("concat", {}),
    ("eltwise", {}),
    ("lut-act", {}),
    ("threshold", {}),
    ("maxpool", {}),
)


def unit_rows() -> list[dict]:
    """Each table adder/multiplier area beside what the cell flow builds for it (µm², 45 nm)."""
    from hwsim.estimate.netlist import unit_areas
    from hwsim.estimate.tables import load_tables

    t = load_tables("asic_horowitz45")
    return [{"unit": k, "netlist_um2": v, "table_um2": t.raw(f"area.{k}") * 1e12,
             "equal": abs(t.raw(f"area.{k}") * 1e12 - v) < 1e-3}
            for k, v in unit_areas().items()]


#: the ECP5 target of the calibration's place-and-route Fmax
ECP5_TARGET = "ecp5-ulx3s-85f"


def _ecp5_fmax(kernel, params, workdir) -> float:
    from fpga.build import build
    from fpga.platforms import get_target

    return build(kernel, params, get_target(ECP5_TARGET), workdir, force=True)["fmax_mhz"]


def _booth_row(lanes: int, workdir) -> dict:
    from hwsim.bench.estimate import booth_engine
    from hwsim.estimate.area import booth_inventory, inventory_cells
    from hwsim.estimate.netlist import load_cells, synth_cells
    from hwsim.estimate.tables import load_tables
    from rtl.emit import to_verilog

    v = workdir / "booth_engine.v"
    v.write_text(to_verilog(booth_engine(lanes), "booth_engine"))
    r = synth_cells(v, "booth_engine", workdir=workdir / "yosys")
    inv = booth_inventory(lanes)  # what hwsim.estimate.area.asic_area prices
    est = inventory_cells(load_tables("asic_horowitz45"), inv) * 1e12
    dff = load_cells()["cells"]["DFF_X1"]["area_um2"]
    return {"netlist": r, "est_um2": est, "est_ffs": inv.register_bits, "dff": dff}


def kernel_rows(configs=CONFIGS, progress=None, fmax: bool = False) -> list[dict]:
    """One row per configuration: ``kernel``, ``config``, ``area_um2_rtl``, ``area_um2_est``,
    ``ratio``, ``ffs_rtl``, ``ffs_est``, ``logic_depth_rtl`` (cells on the netlist's longest
    path), ``model`` and, for an RTL-datapath model, ``within``. ``fmax``: also build each
    registered kernel for the ECP5-85F of :data:`ECP5_TARGET` (Yosys + nextpnr) and add its
    ``fmax_mhz_ecp5`` (``None`` for the Booth harness, which is not a registered kernel)."""
    import tempfile
    from pathlib import Path

    from hwsim.estimate.design import PRICING
    from hwsim.estimate.netlist import asic_area, load_cells
    from hwsim.kernels import get_kernel

    dff = load_cells()["cells"]["DFF_X1"]["area_um2"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, kw) in enumerate(configs):
            wd = Path(tmp) / f"{i}_{name}"
            wd.mkdir()
            if name == "booth-core":
                b = _booth_row(kw["lanes"], wd)
                rtl, est, ffs_est = b["netlist"]["area_um2"], b["est_um2"], b["est_ffs"]
                depth = b["netlist"]["logic_depth"]
                ffs_rtl = round(b["netlist"]["sequential_area_um2"] / dff)
            else:
                k = get_kernel(name)
                p = k.params(**kw)
                r = asic_area(k, p, workdir=wd)
                rtl, est = r["area_um2"], r["estimator_area_um2"]
                depth = r["logic_depth"]
                if est is None:
                    raise HwsimError(f"the estimator does not price {name}")
                ffs_rtl = r["cells_by_type"].get("DFF_X1", 0)
                ffs_est = PRICING[name].inventory(p).register_bits
            config = ", ".join(f"{k}={v}" for k, v in kw.items()) or "defaults"
            row = {"kernel": name, "config": config, "area_um2_rtl": rtl,
                   "area_um2_est": est, "ratio": est / rtl, "ffs_rtl": ffs_rtl,
                   "ffs_est": ffs_est, "logic_depth_rtl": depth,
                   "model": "rtl datapath" if name in RTL_DATAPATH else "assumed inventory"}
            if name in RTL_DATAPATH:
                row["within"] = abs(row["ratio"] - 1) <= TOLERANCE
            if fmax:
                row["fmax_mhz_ecp5"] = (None if name == "booth-core"
                                        else _ecp5_fmax(k, p, wd / "ecp5"))
            rows.append(row)
            if progress:
                progress(row)
    return rows
