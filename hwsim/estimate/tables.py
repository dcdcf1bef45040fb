"""Energy and area tables: energy per action and area per unit, each with its unit and source.

Files live under ``hwsim/estimate/tables/`` (schema ``hwsim-table/1``). An ASIC table gives
its numbers at a *reference* node and voltage and a stated scaling rule to the target's node
(:meth:`Tables.energy`, :meth:`Tables.area`):

* energy ∝ C·V², with switched capacitance ∝ (node)^``scaling.capacitance_exponent``
  (classical scaling, Dennard et al., IEEE JSSC 1974; Stillmaker & Baas, Integration 58, 2017,
  show how far real nodes stray from it — the exponent is a named parameter for that reason);
* area ∝ (node)^``scaling.area_exponent``, derived from two published 6T SRAM bitcells.

An FPGA table gives energy per resource toggle/access on the part's own 16 nm fabric (no
scaling) and the per-kernel resource-model coefficients calibrated against yosys.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from pathlib import Path

from hwsim.errors import HwsimError

from .schema import Field, Param, open_checked, read_params

__all__ = ["TABLE_DIR", "Tables", "load_tables"]

TABLE_DIR = Path(__file__).parent / "tables"
SCHEMA_ID = "hwsim-table/1"

_ASIC = {
    "reference.node": Field("length"),
    "reference.voltage": Field("voltage"),
    "scaling.capacitance_exponent": Field("ratio"),
    "scaling.area_exponent": Field("ratio"),
    "energy.add8": Field("energy"),
    "energy.add16": Field("energy"),
    "energy.add32": Field("energy"),
    "energy.mul8": Field("energy"),
    "energy.mul32": Field("energy"),
    "energy.register_bit": Field("energy"),
    "energy.sram_8kb_bit": Field("energy"),
    "energy.sram_32kb_bit": Field("energy"),
    "energy.sram_1mb_bit": Field("energy"),
    "area.add8": Field("area"),
    "area.add16": Field("area"),
    "area.add32": Field("area"),
    "area.mul8": Field("area"),
    "area.mul32": Field("area"),
    "area.dff_bit": Field("area"),
    "area.mux2_bit": Field("area"),
    "area.sram_bitcell": Field("area"),
}
_FPGA = {
    "energy.lut_toggle": Field("energy"),
    "energy.ff_toggle": Field("energy"),
    "energy.carry_toggle": Field("energy"),
    "energy.dsp_mac": Field("energy"),
    "energy.bram_bit": Field("energy"),
    "energy.toggle_rate": Field("ratio", max=1),
    "resource.tint_lut_per_lane_bit": Field("ratio", allow_zero=True),
    "resource.tint_lut_per_acc_bit": Field("ratio", allow_zero=True),
    "resource.tint_lut_fixed": Field("ratio", allow_zero=True),
    "resource.tint_ff_per_lane_bit": Field("ratio", allow_zero=True),
    "resource.tint_ff_per_acc_bit": Field("ratio", allow_zero=True),
    "resource.tint_ff_fixed": Field("ratio", allow_zero=True),
    "resource.barrier_lut_fixed": Field("ratio"),
    "resource.barrier_lut_per_bit": Field("ratio"),
    "resource.barrier_lut_per_join_bit": Field("ratio", allow_zero=True),
    "resource.barrier_ff_fixed": Field("ratio"),
    "resource.barrier_ff_per_bit": Field("ratio"),
    "resource.booth_lut_fixed": Field("ratio", allow_zero=True),
    "resource.booth_lut_per_lane": Field("ratio", allow_zero=True),
    "resource.booth_ff_fixed": Field("ratio", allow_zero=True),
    "resource.booth_ff_per_lane": Field("ratio", allow_zero=True),
    "resource.booth_dsp_fixed": Field("ratio", allow_zero=True),
    "resource.booth_dsp_per_lane": Field("ratio", allow_zero=True),
    "resource.nonlinear_lut_fixed": Field("ratio", allow_zero=True),
    "resource.nonlinear_lut_per_lane": Field("ratio", allow_zero=True),
    "resource.nonlinear_ff_fixed": Field("ratio", allow_zero=True),
    "resource.nonlinear_ff_per_lane": Field("ratio", allow_zero=True),
    "resource.nonlinear_dsp_fixed": Field("ratio", allow_zero=True),
    "resource.nonlinear_dsp_per_lane": Field("ratio", allow_zero=True),
    **{f"resource.int8mvu_{res}_{k}": Field("ratio", allow_zero=True)
       for res in ("lut", "ff") for k in ("fixed", "per_lane", "per_requant_bit")},
}
SCHEMAS = {"asic": _ASIC, "fpga": _FPGA}
_TOP = {"schema", "name", "kind", "version", "description", "params"}


@dataclass(frozen=True)
class Tables:
    name: str
    kind: str
    version: int
    description: str
    params: dict[str, Param]

    def raw(self, key: str) -> float:
        return self.params[key].value

    # ---- ASIC scaling -------------------------------------------------------------------
    def energy_factor(self, node: float, voltage: float) -> float:
        """Energy at (node, voltage) / energy at the reference, by the stated rule."""
        c = (node / self.raw("reference.node")) ** self.raw("scaling.capacitance_exponent")
        return c * (voltage / self.raw("reference.voltage")) ** 2

    def area_factor(self, node: float) -> float:
        return (node / self.raw("reference.node")) ** self.raw("scaling.area_exponent")

    def energy(self, key: str, node: float, voltage: float) -> float:
        """Energy of action ``key`` (J) at the target's node and voltage."""
        return self.raw(f"energy.{key}") * self.energy_factor(node, voltage)

    def area(self, key: str, node: float) -> float:
        """Area of unit ``key`` (m²) at the target's node."""
        return self.raw(f"area.{key}") * self.area_factor(node)

    def sram_energy_bit(self, size_bits: float, node: float, voltage: float) -> float:
        """Energy per bit read or written in an SRAM of ``size_bits``: log-interpolated
        between the table's 8 KB, 32 KB and 1 MB points, clamped at the ends."""
        pts = [(8 * 1024 * 8, "sram_8kb_bit"), (32 * 1024 * 8, "sram_32kb_bit"),
               (1024 * 1024 * 8, "sram_1mb_bit")]
        if size_bits <= pts[0][0]:
            e = self.raw(f"energy.{pts[0][1]}")
        elif size_bits >= pts[-1][0]:
            e = self.raw(f"energy.{pts[-1][1]}")
        else:
            for (s0, k0), (s1, k1) in itertools.pairwise(pts):
                if size_bits <= s1:
                    t = math.log(size_bits / s0) / math.log(s1 / s0)
                    e0, e1 = self.raw(f"energy.{k0}"), self.raw(f"energy.{k1}")
                    e = math.exp(math.log(e0) + t * (math.log(e1) - math.log(e0)))
                    break
        return e * self.energy_factor(node, voltage)


def load_tables(name: str | Path) -> Tables:
    path, data = open_checked(name, TABLE_DIR, "energy/area table", "table", _TOP, SCHEMA_ID,
                              SCHEMAS)
    where = path.name
    if not isinstance(data["params"], dict):
        raise HwsimError(f"{where}: params must be a mapping")
    params = read_params(data["params"], SCHEMAS[data["kind"]], where)
    return Tables(data["name"], data["kind"], int(data["version"]),
                  str(data["description"]).strip(), params)
