"""Quantities with units, as the architecture and table YAML files write them.

A quantity is a string ``"<number> <unit>"`` (``"1 GHz"``, ``"120 KB"``, ``"0.03 pJ"``,
``"4 pJ/bit"``, ``"0.07 um2"``). :func:`parse` turns it into a float in the SI base unit of its
dimension (Hz, V, m, bit, bit/s, J, J/bit, m², W) and refuses a unit of the wrong dimension or
an unknown unit with one line that names the field.

Memory sizes are binary (``1 KB = 1024 bytes = 8192 bits``), as SRAM macro sizes are quoted;
bandwidths are decimal (``1 GB/s = 1e9 bytes/s``), as DRAM data sheets quote them.
"""

from __future__ import annotations

import math
import re

from hwsim.errors import HwsimError

__all__ = ["DIMENSIONS", "fmt", "parse"]

_KI = 1024
#: dimension → unit → factor to the SI base unit of that dimension
DIMENSIONS: dict[str, dict[str, float]] = {
    "frequency": {"Hz": 1.0, "kHz": 1e3, "MHz": 1e6, "GHz": 1e9},
    "voltage": {"V": 1.0, "mV": 1e-3},
    "length": {"nm": 1e-9, "um": 1e-6, "mm": 1e-3},
    "bits": {"bit": 1.0, "Kb": _KI, "Mb": _KI**2, "B": 8.0, "KB": 8.0 * _KI,
             "MB": 8.0 * _KI**2, "GB": 8.0 * _KI**3},
    "bandwidth": {"bit/s": 1.0, "Mb/s": 1e6, "Gb/s": 1e9, "B/s": 8.0, "MB/s": 8e6,
                  "GB/s": 8e9},
    "energy": {"fJ": 1e-15, "pJ": 1e-12, "nJ": 1e-9, "uJ": 1e-6, "mJ": 1e-3, "J": 1.0},
    "energy_per_bit": {"fJ/bit": 1e-15, "pJ/bit": 1e-12, "nJ/bit": 1e-9},
    "area": {"um2": 1e-12, "mm2": 1e-6},
    "power": {"uW": 1e-6, "mW": 1e-3, "W": 1.0},
    "power_density": {"mW/mm2": 1e-3 / 1e-6, "W/mm2": 1.0 / 1e-6},
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z/0-9]+)\s*$")


def parse(text, dimension: str, field: str, allow_zero: bool = False) -> float:
    """``"<number> <unit>"`` → float in the SI base unit of ``dimension``.

    Raises :class:`HwsimError` naming ``field`` on a missing unit, an unknown unit, a unit of
    another dimension, a negative value, or zero unless ``allow_zero``.
    """
    units = DIMENSIONS[dimension]
    if isinstance(text, bool) or not isinstance(text, str):
        raise HwsimError(f"{field}: expected a quantity like '1 {next(iter(units))}', "
                         f"got {text!r} (a number needs its unit)")
    m = _QUANTITY.match(text)
    if not m:
        raise HwsimError(f"{field}: cannot read {text!r} as '<number> <unit>'")
    value, unit = float(m.group(1)), m.group(2)
    if unit not in units:
        other = next((d for d, u in DIMENSIONS.items() if unit in u), None)
        why = f"a unit of {other}, not of {dimension}" if other else "an unknown unit"
        raise HwsimError(f"{field}: {unit!r} is {why}; use one of {', '.join(units)}")
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise HwsimError(f"{field}: must be {'≥' if allow_zero else '>'} 0, not {text!r}")
    return value * units[unit]


def fmt(value: float, dimension: str, unit: str) -> str:
    """A base-unit value written in ``unit`` (for reports)."""
    return f"{value / DIMENSIONS[dimension][unit]:.4g} {unit}"
