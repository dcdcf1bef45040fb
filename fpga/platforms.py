"""Amaranth platforms for the boards hwsim builds for, and the build targets that name them.

Every platform has one clock resource (``default_clk``) and one ``leds`` resource, which is all
the :class:`fpga.harness.StreamHarness` top level needs. Pin locations come from each board's
public constraint files (cited per class); a board this module does not know stays out — no
invented pins.

Targets (``hwsim fpga build … --target NAME``):

==================  ===========================  ==========================================
target              part                         board
==================  ===========================  ==========================================
``zcu111``          xczu28dr-ffvg1517-2-e        AMD/Xilinx ZCU111 (RFSoC Gen 1)
``rfsoc4x2``        xczu48dr-ffvg1517-2-e        Real Digital RFSoC 4x2 (RFSoC Gen 3)
``xczu49dr``        xczu49dr-ffvf1760-2-e        XCZU49DR on the AMD/Xilinx ZCU216 pinout
``ecp5-ulx3s-12f``  LFE5U-12F-6BG381C            Radiona ULX3S (12F … 85F assemblies)
``ecp5-ulx3s-25f``  LFE5U-25F-6BG381C
``ecp5-ulx3s-45f``  LFE5U-45F-6BG381C
``ecp5-ulx3s-85f``  LFE5U-85F-6BG381C            the embedded default
==================  ===========================  ==========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from amaranth.build import Attrs, Clock, DiffPairs, Pins, Resource
from amaranth.vendor import LatticePlatform, XilinxPlatform

from hwsim.errors import HwsimError

from .parts import PARTS, Part

__all__ = ["DEFAULT_ECP5", "TARGETS", "Target", "get_target"]


# ---- Xilinx Zynq UltraScale+ RFSoC boards ---------------------------------------------------
class ZCU111Platform(XilinxPlatform):
    """AMD/Xilinx ZCU111 (XCZU28DR-2FFVG1517E).

    Pins as in the board's XDC (UG1271): 125 MHz LVDS system clock on AL17/AM17 (bank 66),
    user LEDs DS11…DS18 on AR13 AP13 AR16 AP16 AP15 AN16 AN17 AV15 (LVCMOS18).
    """

    device, package, speed = "xczu28dr", "ffvg1517", "2-e"
    default_clk = "clk125"
    resources: ClassVar[list] = [
        Resource("clk125", 0, DiffPairs("AL17", "AM17", dir="i"), Clock(125e6),
                 Attrs(IOSTANDARD="LVDS")),
        Resource("leds", 0, Pins("AR13 AP13 AR16 AP16 AP15 AN16 AN17 AV15", dir="o"),
                 Attrs(IOSTANDARD="LVCMOS18", DRIVE="8", SLEW="SLOW")),
    ]
    connectors: ClassVar[list] = []


class RFSoC4x2Platform(XilinxPlatform):
    """Real Digital RFSoC 4x2 (XCZU48DR-2FFVG1517E).

    Pins from the board's constraint files (RFSoC-PYNQ ``boards/RFSoC4x2/base`` and the Real
    Digital master XDC): 100 MHz LVDS PL clock SYS_CLK_100M on AM15/AN15; the two RGB LEDs'
    six lines on AN8 AM7 AM8 AT10 AP8 AR12 (LVCMOS18).
    """

    device, package, speed = "xczu48dr", "ffvg1517", "2-e"
    default_clk = "clk100"
    resources: ClassVar[list] = [
        Resource("clk100", 0, DiffPairs("AM15", "AN15", dir="i"), Clock(100e6),
                 Attrs(IOSTANDARD="LVDS")),
        Resource("leds", 0, Pins("AN8 AM7 AM8 AT10 AP8 AR12", dir="o"),
                 Attrs(IOSTANDARD="LVCMOS18")),
    ]
    connectors: ClassVar[list] = []


class XCZU49DRPlatform(XilinxPlatform):
    """XCZU49DR-2FFVF1760E, the RFSoC Gen 3 part of SwiftChannel's board.

    SwiftChannel ran on an Avnet XCZU49DR board whose pinout is not public; this platform uses
    the pinout of AMD/Xilinx's ZCU216, which carries the same part and package (as in CASPER's
    ``mlib_devel`` zcu216 platform): 100 MHz LVDS clock on G12/G11 (LVDS_25), the eight red
    user LEDs on AN14 AP16 AP14 AU16 AW12 AY16 BB12 E25 (LVCMOS12, drive 8). For another board
    only this class changes; resources and timing from synthesis do not depend on the pins.
    """

    device, package, speed = "xczu49dr", "ffvf1760", "2-e"
    default_clk = "clk100"
    resources: ClassVar[list] = [
        Resource("clk100", 0, DiffPairs("G12", "G11", dir="i"), Clock(100e6),
                 Attrs(IOSTANDARD="LVDS_25")),
        Resource("leds", 0, Pins("AN14 AP16 AP14 AU16 AW12 AY16 BB12 E25", dir="o"),
                 Attrs(IOSTANDARD="LVCMOS12", DRIVE="8")),
    ]
    connectors: ClassVar[list] = []


# ---- Lattice ECP5: Radiona ULX3S ------------------------------------------------------------
class _ULX3SPlatform(LatticePlatform):
    """Radiona ULX3S (LFE5U-xxF-6BG381C), an open-hardware ECP5 board.

    Pins from the board's ``ulx3s_v20.lpf``: 25 MHz oscillator on G2, LEDs D0…D7 on
    B2 C2 C1 D2 D1 E2 E1 H3, all LVCMOS33.
    """

    package, speed = "BG381", "6"
    default_clk = "clk25"
    resources: ClassVar[list] = [
        Resource("clk25", 0, Pins("G2", dir="i"), Clock(25e6), Attrs(IO_TYPE="LVCMOS33")),
        Resource("leds", 0, Pins("B2 C2 C1 D2 D1 E2 E1 H3", dir="o"),
                 Attrs(IO_TYPE="LVCMOS33", DRIVE="4")),
    ]
    connectors: ClassVar[list] = []


def _ulx3s(size: str) -> type:
    return type(f"ULX3S{size}FPlatform", (_ULX3SPlatform,), {"device": f"LFE5U-{size}F"})


# ---- targets ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """A build target: a board platform and the part whose capacity it is checked against."""

    name: str
    board: str
    platform_cls: type
    part: Part
    flow: str            # "vivado" (plan + open-source UltraScale+ synthesis) or "ecp5"

    @property
    def clock_hz(self) -> float:
        plat = self.platform_cls(toolchain="Vivado" if self.flow == "vivado" else "Trellis")
        return plat.lookup(plat.default_clk).clock.frequency

    def platform(self):
        return self.platform_cls(toolchain="Vivado" if self.flow == "vivado" else "Trellis")


TARGETS: dict[str, Target] = {
    "zcu111": Target("zcu111", "AMD/Xilinx ZCU111", ZCU111Platform, PARTS["xczu28dr"], "vivado"),
    "rfsoc4x2": Target("rfsoc4x2", "Real Digital RFSoC 4x2", RFSoC4x2Platform, PARTS["xczu48dr"],
                       "vivado"),
    "xczu49dr": Target("xczu49dr", "XCZU49DR (ZCU216 pinout)", XCZU49DRPlatform,
                       PARTS["xczu49dr"], "vivado"),
    **{f"ecp5-ulx3s-{s}f": Target(f"ecp5-ulx3s-{s}f", f"Radiona ULX3S-{s}F", _ulx3s(s),
                                  PARTS[f"lfe5u-{s}f"], "ecp5")
       for s in ("12", "25", "45", "85")},
}

#: The embedded default: the largest ULX3S.
DEFAULT_ECP5 = "ecp5-ulx3s-85f"


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise HwsimError(f"unknown FPGA target {name!r}; known: {', '.join(TARGETS)}") from None
