"""Architecture descriptions: versioned YAML files under ``hwsim/estimate/arch/``.

A file names its schema (``hwsim-arch/1``), the target's ``name``, ``kind`` (``asic`` or
``fpga``), a ``version`` that changes whenever a number changes, the energy/area ``tables`` it
uses and its ``params``, each with its status and source (:mod:`hwsim.estimate.schema`).

The compute model shared by both kinds (what the estimator assumes the hardware is):

* ``tint`` — the ternary core: ``tiles`` copies of the ternary MVU (:mod:`hwsim.golden.vitallm.ternary_mvu`)
  of ``lanes`` ternary adds per cycle each; a projection's rows are split across the tiles,
  columns are zero-padded to a multiple of ``lanes``;
* ``booth`` — the int8 × int8 core (QKᵀ, AV): ``lanes`` multiply-accumulates per cycle;
* ``nonlinear`` — softmax / RMSNorm units: ``lanes`` elements per cycle;
* ``sram`` — on-chip buffers for weights, activations and the KV cache;
* ``dram`` — the off-chip memory: the interface's peak bandwidth, the fraction of it a
  controller sustains for each access pattern (``efficiency.sequential_read`` … ``random_write``),
  energy per bit, and the packed size of a ternary weight in it (``weight_bits``). FPGA files
  add the AXI ports through which the programmable logic reaches the memory (``axi_ports`` of
  ``axi_bits`` each at the core clock), a second bound on the sustained bandwidth.

ASIC files add the technology (node, voltage) and the area/power assumptions; FPGA files add
the part's capacities (LUT, FF, DSP48E2, 36 Kb BRAM, URAM).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import HwsimError

from .schema import Field, Param, known_names, open_checked, read_params

__all__ = ["ARCH_DIR", "Arch", "known_targets", "load_arch"]

ARCH_DIR = Path(__file__).parent / "arch"
SCHEMA_ID = "hwsim-arch/1"

_COMMON = {
    "clock": Field("frequency", doc="core clock"),
    "tint.tiles": Field("count", doc="ternary MVU tiles working on different rows"),
    "tint.lanes": Field("count", doc="ternary adds per cycle per tile"),
    "booth.lanes": Field("count", doc="int8 MACs per cycle of the Booth core"),
    "nonlinear.lanes": Field("count", doc="softmax/norm elements per cycle"),
    "sram.weights": Field("bits", doc="on-chip weight buffer"),
    "sram.activations": Field("bits", doc="on-chip activation buffer"),
    "sram.kv": Field("bits", doc="on-chip KV-cache buffer"),
    "dram.peak_bandwidth": Field("bandwidth", doc="interface peak: transfer rate × width"),
    "dram.efficiency.sequential_read": Field("ratio", max=1, doc="sustained / peak, long reads"),
    "dram.efficiency.random_read": Field("ratio", max=1, doc="sustained / peak, scattered rows"),
    "dram.efficiency.sequential_write": Field("ratio", max=1, doc="sustained / peak, long writes"),
    "dram.efficiency.random_write": Field("ratio", max=1, doc="sustained / peak, scattered rows"),
    "dram.energy": Field("energy_per_bit", doc="off-chip energy per bit moved"),
    "dram.weight_bits": Field("ratio", max=8, doc="bits per ternary weight in DRAM"),
    "schedule.hide_nonlinear": Field("bool", doc="softmax/norm overlap with the matrix work"),
    "schedule.overlap_attention": Field("bool", doc="attention overlaps the projections"),
}
_ASIC = {
    **_COMMON,
    "technology.node": Field("length"),
    "technology.voltage": Field("voltage"),
    "area.sram_array_efficiency": Field("ratio", max=1, doc="bitcell area / macro area"),
    "area.placement_utilization": Field("ratio", max=1, doc="cell area / placed area"),
    "power.leakage_fraction": Field("ratio", allow_zero=True, doc="static / dynamic power"),
}
_FPGA = {
    **_COMMON,
    "part": Field("name"),
    "capacity.luts": Field("count"),
    "capacity.ffs": Field("count"),
    "capacity.dsps": Field("count"),
    "capacity.bram36": Field("count"),
    "capacity.uram": Field("count", allow_zero=True),
    "dram.axi_ports": Field("count", doc="AXI ports from the logic to the memory"),
    "dram.axi_bits": Field("count", doc="data bits per AXI port (one beat per core cycle)"),
    "power.static": Field("power", doc="device static power"),
}
SCHEMAS = {"asic": _ASIC, "fpga": _FPGA}
_TOP = {"schema", "name", "kind", "version", "description", "tables", "params"}


@dataclass(frozen=True)
class Arch:
    """A target: parameters (SI base units) with their sources, and its energy/area tables."""

    name: str
    kind: str
    version: int
    description: str
    tables: str
    params: dict[str, Param]
    path: Path | None = None

    def __getitem__(self, key: str):
        return self.params[key].value

    def with_values(self, values: dict[str, object], status: str = "assumption",
                    source: str = "design-space sweep") -> Arch:
        """A copy with some parameters replaced (values in SI base units), checked again."""
        params = dict(self.params)
        for key, value in values.items():
            if key not in params:
                raise HwsimError(f"{self.name}: no parameter {key!r} to set")
            field = SCHEMAS[self.kind][key]
            if field.kind == "count" and (not isinstance(value, int) or value < 1):
                raise HwsimError(f"{key} must be a positive integer, not {value!r}")
            if field.kind not in ("bool", "name") and not value > 0:
                raise HwsimError(f"{key} must be > 0, not {value!r}")
            if field.max is not None and value > field.max:
                raise HwsimError(f"{key} must be ≤ {field.max}, not {value!r}")
            params[key] = dataclasses.replace(params[key], value=value, status=status,
                                              source=source, text=str(value), fitted_to="")
        return dataclasses.replace(self, params=params)

    def dram_bandwidth(self, pattern: str) -> float:
        """Sustained off-chip bits/s for ``pattern`` (``sequential_read``, ``random_read``,
        ``sequential_write``, ``random_write``): the peak × the controller's efficiency for it,
        and on an FPGA at most what the AXI ports carry at the core clock."""
        bw = self["dram.peak_bandwidth"] * self[f"dram.efficiency.{pattern}"]
        if self.kind == "fpga":
            bw = min(bw, self["dram.axi_ports"] * self["dram.axi_bits"] * self["clock"])
        return bw

    @property
    def sram_bits(self) -> float:
        return self["sram.weights"] + self["sram.activations"] + self["sram.kv"]


def known_targets() -> list[str]:
    return known_names(ARCH_DIR)


def load_arch(target: str | Path) -> Arch:
    """Load a target by name (``vitallm``, ``xczu28dr``…) or from a YAML path."""
    path, data = open_checked(target, ARCH_DIR, "target", "architecture", _TOP, SCHEMA_ID,
                              SCHEMAS)
    where = path.name
    kind = data["kind"]
    version = data["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise HwsimError(f"{where}: version must be a positive integer, not {version!r}")
    for key in ("name", "description", "tables"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise HwsimError(f"{where}: {key} must be a non-empty string")
    if not isinstance(data["params"], dict):
        raise HwsimError(f"{where}: params must be a mapping")
    params = read_params(data["params"], SCHEMAS[kind], where)
    return Arch(data["name"], kind, version, data["description"].strip(), data["tables"],
                params, path)
