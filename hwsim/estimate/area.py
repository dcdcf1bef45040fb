"""ASIC area from the architecture, the kernels' datapath widths and the area table.

* ternary core: ``tiles`` MVU tiles sized for the widest projection of the workload; a tile has
  ``lanes`` lane adders of the adder tree's width (:attr:`TernaryMvuParams.tree_width`), one
  accumulator adder and register of :attr:`~TernaryMvuParams.acc_width`, ``lanes`` int8
  activation registers, and a ``mult_bits × acc_width`` requantization multiplier;
* Booth core: per lane an 8-bit multiplier, a 32-bit adder and a 32-bit accumulator register;
* nonlinear units: per lane a 32-bit multiplier, two 32-bit adders and 64 register bits (an
  assumed datapath, not taken from the RTL: the ASIC area is not fitted), plus one absmax
  barrier (:mod:`hwsim.golden.vitallm.absmax_barrier`) at the accumulator width;
* logic area = cell area / ``area.placement_utilization``; SRAM area = bits × bitcell /
  ``area.sram_array_efficiency``; everything scaled to the node by the table's area rule.

Adder area is interpolated linearly in width between the table's 8/16/32-bit adders (and
extrapolated per bit beyond); multiplier area scales with the product of operand widths from
the 8×8 and 32×32 points.
"""

from __future__ import annotations

import itertools

from hwsim.golden.vitallm import absmax_barrier as _ab

from .arch import Arch
from .kernels import ternary_tile_params
from .tables import Tables

__all__ = ["asic_area", "tint_tile_area"]


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


def tint_tile_area(tables: Tables, p) -> float:
    """Cell area (m², at the table's node) of one ternary MVU tile of ``p``
    (:class:`~hwsim.golden.vitallm.ternary_mvu.TernaryMvuParams`), memories excluded."""
    return (p.lanes * _adder(tables, p.tree_width) + _adder(tables, p.acc_width)
            + tables.raw("area.dff_bit") * (p.acc_width + p.lanes * p.act.width + p.out.width)
            + _multiplier(tables, p.mult_bits, p.acc_width))


def asic_area(arch: Arch, tables: Tables, max_cols: int) -> dict[str, float]:
    """Area in m² per part (``tint``, ``booth``, ``nonlinear``, ``logic``, ``sram``, ``total``)."""
    dff = tables.raw("area.dff_bit")
    lanes = arch["tint.lanes"]
    p = ternary_tile_params(1, max_cols, lanes)
    tint = arch["tint.tiles"] * tint_tile_area(tables, p)
    booth = arch["booth.lanes"] * (_multiplier(tables, 8, 8) + _adder(tables, 32) + 32 * dff)
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
