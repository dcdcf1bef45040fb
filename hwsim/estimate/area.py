"""ASIC area from the architecture, the kernels' datapath widths and the area table.

* ternary core: ``tiles`` MVU tiles sized for the widest projection of the workload, each the
  datapath of :func:`mvu_inventory` (the matrix–vector skeleton of ``rtl/common/mvu.py`` with
  the ternary lane select);
* Booth core: per lane an 8-bit multiplier, a 32-bit adder and a 32-bit accumulator register;
* nonlinear units: per lane a 32-bit multiplier, two 32-bit adders and 64 register bits (an
  assumed datapath, not taken from the RTL), plus one absmax barrier
  (:mod:`hwsim.golden.vitallm.absmax_barrier`) at the accumulator width;
* logic area = cell area / ``area.placement_utilization``; SRAM area = bits × bitcell /
  ``area.sram_array_efficiency``; everything scaled to the node by the table's area rule.

A datapath is an :class:`Inventory` (adders, multipliers, 2:1 multiplexer bits, flip-flop
bits, memories) priced by :func:`inventory_cells`. Adder area is interpolated linearly in width
between the table's 8/16/32-bit adders (and extrapolated per bit beyond); multiplier area scales
with the product of operand widths from the 8×8 and 32×32 points. The table's adders and
multipliers are what hwsim's own cell flow builds for them (:mod:`hwsim.estimate.netlist`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from hwsim.golden.vitallm import absmax_barrier as _ab

from .arch import Arch
from .kernels import ternary_tile_params
from .tables import Tables

__all__ = ["Inventory", "asic_area", "booth_inventory", "inventory_cells", "mvu_inventory",
           "tint_tile_area"]


@dataclass(frozen=True)
class Inventory:
    """A kernel instance's datapath, for ASIC area: adder widths, multiplier operand widths,
    2:1 multiplexer bits, flip-flop bits and memories ``(name, depth, width)`` (SRAM macros)."""

    adders: tuple[int, ...] = ()
    multipliers: tuple[tuple[int, int], ...] = ()
    register_bits: int = 0
    memories: tuple[tuple[str, int, int], ...] = ()
    muxes: int = 0


def _adder(tables: Tables, bits: int) -> float:
    pts = [(8, tables.raw("area.add8")), (16, tables.raw("area.add16")),
           (32, tables.raw("area.add32"))]
    if bits <= 8:
        return pts[0][1] * bits / 8
    for (b0, a0), (b1, a1) in itertools.pairwise(pts):
        if bits <= b1:
            return a0 + (a1 - a0) * (bits - b0) / (b1 - b0)
    return pts[-1][1] * bits / 32


def _multiplier(tables: Tables, a_bits: int, b_bits: int) -> float:
    a8, a32 = tables.raw("area.mul8"), tables.raw("area.mul32")
    x = a_bits * b_bits
    return a8 + (a32 - a8) * (x - 64) / (1024 - 64)


def inventory_cells(tables: Tables, inv: Inventory) -> float:
    """Cell area (m², at the table's node) of ``inv``, memories excluded."""
    return (sum(_adder(tables, w) for w in inv.adders)
            + sum(_multiplier(tables, a, b) for a, b in inv.multipliers)
            + inv.muxes * tables.raw("area.mux2_bit")
            + inv.register_bits * tables.raw("area.dff_bit"))


def _clog2(n: int) -> int:
    return max(int(n) - 1, 1).bit_length()


def mvu_inventory(p, *, lane_width: int, lane_adders: tuple[int, ...] = (),
                  lane_muxes: int = 0, lane_multipliers: tuple[tuple[int, int], ...] = (),
                  multiplier: tuple[int, int], memories: tuple = (),
                  row_scale: bool = False) -> Inventory:
    """The short-pipeline datapath of ``rtl/common/mvu.py`` for unit parameters ``p`` (needs
    ``lanes``, ``rows``, ``chunks``, ``weight_depth``, ``acc_width``, ``mult_bits``,
    ``shift_bits``, ``out``): per lane the unit's own product (``lane_*``), an adder tree of
    ``lanes`` terms of ``lane_width`` bits (one bit wider per level), the row accumulator, the
    ``M`` product (``multiplier``), the rounding by ``S`` (a barrel shifter of the product's
    bits × ``shift_bits``, a remainder compare and an increment), the address/row counters, and
    the registers: accumulator and its stage copy, the product, the output code, ``M``/``S``
    carried down three stages (a per-row scale, ``row_scale``, is read from its memory: one
    ``M``/``S`` register and ``S`` once more), the counters, the controller's state and six valid/flag bits.
    ``memories`` are the unit's configuration memories, the weights first; the activation
    buffer (``chunks`` words of ``lanes`` codes) is added to them."""
    levels, terms, tree = 0, p.lanes, []
    while terms > 1:
        levels += 1
        tree += [lane_width + levels] * (terms // 2)
        terms = (terms + 1) // 2
    prod = p.acc_width + p.mult_bits + 1
    # x, row, chunk, and one write address per configuration memory (the weights first)
    counters = (_clog2(p.chunks), _clog2(p.rows), _clog2(p.chunks),
                *(_clog2(depth) for _, depth, _ in memories))
    fsm = _clog2(3 + len(memories))  # IDLE, LOAD_X, COMPUTE and a LOAD state per memory
    scale = (p.mult_bits + 2 * p.shift_bits if row_scale
             else 3 * (p.mult_bits + p.shift_bits) + p.shift_bits)
    return Inventory(
        adders=lane_adders * p.lanes + tuple(tree) + (p.acc_width, prod, prod) + counters,
        multipliers=lane_multipliers * p.lanes + (multiplier,),
        muxes=lane_muxes * p.lanes + prod * p.shift_bits,
        register_bits=2 * p.acc_width + prod + p.out.width + scale + sum(counters) + fsm + 6,
        memories=(*memories, ("x", p.chunks, p.act.width * p.lanes)))


def tint_tile_area(tables: Tables, p) -> float:
    """Cell area (m², at the table's node) of one ternary MVU tile of ``p``
    (:class:`~hwsim.golden.vitallm.ternary_mvu.TernaryMvuParams`), memories excluded."""
    return inventory_cells(tables, ternary_inventory(p))


def ternary_inventory(p) -> Inventory:
    """``rtl/vitallm/ternary_mvu.py``: per lane ``±x`` or 0 (a negation and a select of
    ``act + 1`` bits), the skeleton's tree, accumulator and shift-add ``M`` product."""
    w = p.act.width + 1
    return mvu_inventory(p, lane_width=w, lane_adders=(w,), lane_muxes=w,
                         multiplier=(p.mult_bits, p.acc_width),
                         memories=(("weights", p.weight_depth, 2 * p.lanes),))


def booth_inventory(lanes: int) -> Inventory:
    """The Booth core: per lane an 8 × 8 multiplier, a 32-bit adder and a 32-bit accumulator
    register (checked against the Booth engine harness by ``asic_calibration``)."""
    return Inventory(adders=(32,) * lanes, multipliers=((8, 8),) * lanes,
                     register_bits=32 * lanes)


def asic_area(arch: Arch, tables: Tables, max_cols: int) -> dict[str, float]:
    """Area in m² per part (``tint``, ``booth``, ``nonlinear``, ``logic``, ``sram``, ``total``)."""
    dff = tables.raw("area.dff_bit")
    lanes = arch["tint.lanes"]
    p = ternary_tile_params(1, max_cols, lanes)
    tint = arch["tint.tiles"] * tint_tile_area(tables, p)
    booth = inventory_cells(tables, booth_inventory(arch["booth.lanes"]))
    nonlinear = arch["nonlinear.lanes"] * (_multiplier(tables, 32, 32) + 2 * _adder(tables, 32)
                                           + 64 * dff)
    # one absmax barrier (hwsim.golden.vitallm.absmax_barrier): a×r multiplier, divider and compare
    # adders, the absmax/reciprocal/output registers; its token buffer is activation SRAM
    bar = _ab.AbsmaxBarrierParams(length=1, in_width=p.acc_width)
    nonlinear += (_multiplier(tables, bar.in_width, bar.r_bits)
                  + 2 * _adder(tables, bar.r_bits)
                  + dff * (2 * bar.in_width + bar.r_bits + bar.out.width))
    f = tables.area_factor(arch["technology.node"])
    cells = (tint + booth + nonlinear) * f
    logic = cells / arch["area.placement_utilization"]
    sram = arch.sram_bits * tables.raw("area.sram_bitcell") * f / arch["area.sram_array_efficiency"]
    return {"tint": tint * f, "booth": booth * f, "nonlinear": nonlinear * f, "cells": cells,
            "logic": logic, "sram": sram, "total": logic + sram}
