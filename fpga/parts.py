"""FPGA parts and their capacities, and the check that a design fits one.

Capacities are public datasheet figures; the source of every number is given beside it.
Resource names are the ones the reports use:

* UltraScale+: ``luts`` (CLB LUTs), ``ffs`` (CLB flip-flops), ``dsp48e2``, ``bram36`` (36 Kb block
  RAMs; a RAMB18 counts one half), ``uram`` (288 Kb UltraRAMs);
* ECP5: ``luts`` (LUT4s), ``ffs``, ``dsp`` (18×18 multipliers, MULT18X18D), ``bram`` (18 Kb
  EBR blocks, DP16KD).
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.errors import HwsimError

__all__ = ["PARTS", "RESOURCE_LABELS", "Part", "check_fit", "get_part", "utilization"]

#: How each resource is named in a report.
RESOURCE_LABELS = {
    "luts": "LUT", "ffs": "FF", "dsp48e2": "DSP48E2", "bram36": "BRAM36", "uram": "URAM",
    "dsp": "MULT18X18", "bram": "EBR (18 Kb)",
}


@dataclass(frozen=True)
class Part:
    """One FPGA part: its vendor name, family and capacity per resource."""

    name: str            # vendor part number, e.g. "xczu28dr-ffvg1517-2-e"
    family: str          # "xcup" (Xilinx UltraScale+) or "ecp5"
    capacity: dict       # resource -> units available
    source: str          # where the capacity figures come from

    @property
    def short(self) -> str:
        """The device without package and speed grade, e.g. ``xczu28dr`` or ``LFE5U-85F``."""
        return self.name.split("-")[0] if self.family == "xcup" else "-".join(self.name.split("-")[:2])


# Zynq UltraScale+ RFSoC programmable logic, Xilinx DS889 "Zynq UltraScale+ RFSoC Data Sheet:
# Overview", Table 1 (Gen 1 ZU28DR; Gen 3 ZU48DR, ZU49DR): all three carry the same PL —
# 930,300 system logic cells, 425,280 CLB LUTs, 850,560 CLB flip-flops, 4,272 DSP48E2 slices,
# 1,080 36 Kb block RAMs (38.0 Mb), 80 UltraRAMs (22.5 Mb).
_RFSOC_PL = {"luts": 425_280, "ffs": 850_560, "dsp48e2": 4_272, "bram36": 1_080, "uram": 80}
_DS889 = "Xilinx DS889 (Zynq UltraScale+ RFSoC Data Sheet: Overview), Table 1"


def _ecp5(size: str, luts: int, ebr: int, mults: int) -> Part:
    # Lattice FPGA-DS-02012 "ECP5 and ECP5-5G Family Data Sheet", Table 1.1: LUTs 12K/24K/44K/84K,
    # sysMEM EBR blocks (18 Kb) 32/56/108/208, 18×18 multipliers 28/28/72/156. The exact LUT
    # counts (one flip-flop per LUT4 in an ECP5 slice) are the datasheet's rounded figures as
    # counted in Project Trellis's device database, which nextpnr-ecp5 reports as available.
    return Part(f"LFE5U-{size}F-6BG381C", "ecp5",
                {"luts": luts, "ffs": luts, "dsp": mults, "bram": ebr},
                "Lattice FPGA-DS-02012 (ECP5 and ECP5-5G Family Data Sheet), Table 1.1")


PARTS: dict[str, Part] = {
    "xczu28dr": Part("xczu28dr-ffvg1517-2-e", "xcup", dict(_RFSOC_PL), _DS889),
    "xczu48dr": Part("xczu48dr-ffvg1517-2-e", "xcup", dict(_RFSOC_PL), _DS889),
    "xczu49dr": Part("xczu49dr-ffvf1760-2-e", "xcup", dict(_RFSOC_PL), _DS889),
    "lfe5u-12f": _ecp5("12", 12_144, 32, 28),
    "lfe5u-25f": _ecp5("25", 24_288, 56, 28),
    "lfe5u-45f": _ecp5("45", 43_848, 108, 72),
    "lfe5u-85f": _ecp5("85", 83_640, 208, 156),
}


def get_part(name: str) -> Part:
    try:
        return PARTS[name.lower()]
    except KeyError:
        raise HwsimError(f"unknown FPGA part {name!r}; known: {', '.join(PARTS)}") from None


def utilization(used: dict, part: Part) -> dict[str, dict]:
    """``{resource: {"used", "available", "fraction"}}`` for every resource the part has."""
    out = {}
    for res, cap in part.capacity.items():
        u = used.get(res, 0)
        out[res] = {"used": u, "available": cap, "fraction": u / cap}
    return out


def check_fit(used: dict, part: Part, design: str) -> None:
    """Raise one :class:`HwsimError` line naming every resource ``design`` needs beyond ``part``."""
    over = [f"{RESOURCE_LABELS[r]} {_fmt(used.get(r, 0))} > {cap:,}"
            for r, cap in part.capacity.items() if used.get(r, 0) > cap]
    if over:
        raise HwsimError(f"{design} does not fit {part.name}: needs " + ", ".join(over)
                         + " available")


def _fmt(v) -> str:
    return f"{v:,.1f}" if isinstance(v, float) and not float(v).is_integer() else f"{int(v):,}"
