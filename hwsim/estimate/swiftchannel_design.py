"""Pricing of the SwiftChannel kernels (``swiftchannel-conv``, ``swiftchannel-gate``) in a
compiled design (:func:`hwsim.estimate.design.estimate_design`).

Assumed costs, not fitted to yosys: one DSP48E2 per 8×8 MAC lane, one per requantizer
multiply; LUTs and flip-flops from the inventories below; memories by the LUT-RAM / RAMB18E2
rule.
"""

from __future__ import annotations

from hwsim.golden.swiftchannel import conv as conv_spec
from hwsim.golden.swiftchannel.network import LUT_SIZE

from .design import Inventory, Pricing
from .fpga import memory_resources

__all__ = ["SWIFTCHANNEL_CONV", "SWIFTCHANNEL_GATE"]


def _conv_inventory(p) -> Inventory:
    """``ic·ocp·taps`` 9×8 multipliers and their adder tree, ``ocp`` accumulators and
    requantizers (acc × 16-bit M), the line buffer and the weight ROM (one word per step)."""
    macs = p.ic * p.ocp * p.taps
    return Inventory(
        adders=(20,) * macs + (p.acc_width, p.acc_width + 17) * p.ocp,
        multipliers=((9, 8),) * macs + ((p.acc_width, 16),) * p.ocp,
        register_bits=p.ocp * (2 * p.acc_width + 8) + 8 * p.ic * p.taps + 64,
        memories=(("line_buffer", conv_spec.LINE_ROWS * p.width, 8 * p.ic),
                  ("weights", p.groups * p.steps, 8 * p.ic * p.ocp * p.taps)))


def _conv_fpga(p, tables) -> dict:
    """Assumption, not fitted: a DSP48E2 per MAC lane and per requantizer, ~20 LUTs per MAC
    lane of adder tree and ~150 per output channel of rounding/clipping, the memories by the
    LUT-RAM / RAMB18E2 rule."""
    inv = _conv_inventory(p)
    mems = [memory_resources(d, w) for _, d, w in inv.memories]
    macs = p.ic * p.ocp * p.taps
    return {"luts": 20 * macs + 150 * p.ocp + 200 + sum(m["luts"] for m in mems),
            "ffs": inv.register_bits, "dsps": macs + p.ocp,
            "bram36": sum(m["bram36"] for m in mems)}


SWIFTCHANNEL_CONV = Pricing(
    actions={"mac_int8": {"int8_mul": 1, "acc_add": 1},
             "linebuf_read_bits": {"act_read_bits": 1},
             "linebuf_write_bits": {"act_write_bits": 1}, "requant": {"requant_mul": 1}},
    inventory=_conv_inventory, fpga=_conv_fpga)


def _gate_inventory(p) -> Inventory:
    """Per lane: the skip sum's two multiplies, the LUT index multiply, sum × gate and the
    rounding add; the 512-entry LUT ROM per lane."""
    return Inventory(adders=(34, 34, 48) * p.lanes,
                     multipliers=((9, 16), (9, 16), (9, 16), (34, 8)) * p.lanes,
                     register_bits=(34 + 8 + 8 + 9) * p.lanes + 2,
                     memories=(("lut", LUT_SIZE, 8 * p.lanes),))


def _gate_fpga(p, tables) -> dict:
    """Assumption, not fitted: four DSP48E2 and ~150 LUTs per lane, the LUT ROM by the memory
    rule."""
    mem = memory_resources(LUT_SIZE, 8 * p.lanes)
    return {"luts": 150 * p.lanes + mem["luts"], "ffs": _gate_inventory(p).register_bits,
            "dsps": 4 * p.lanes, "bram36": mem["bram36"]}


SWIFTCHANNEL_GATE = Pricing(
    actions={"skip_sum_mul": {"requant_mul": 1}, "lut_read_bits": {"weight_read_bits": 1},
             "mul_gate": {"requant_mul": 1}, "requant": {"add32": 1},
             "lut_index_mul": {"requant_mul": 1}},
    inventory=_gate_inventory, fpga=_gate_fpga, weight_memory="lut")
