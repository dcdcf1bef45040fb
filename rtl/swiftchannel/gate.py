"""SwiftChannel SPAB gating unit: wide skip sum, 512-entry sigmoid LUT, one requantized product.

Specification: :mod:`hwsim.golden.swiftchannel.gate`; golden function
:func:`hwsim.golden.swiftchannel.network.spab_gate`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.swiftchannel import gate as spec
from hwsim.golden.swiftchannel import network as sc
from quant.qtype import UINT8
from rtl.common import saturate

__all__ = ["SwiftChannelGate"]


def _requant_const(m: Module, value, shift: int, zp: int, name: str):
    """``clip((value + (zp << S) + 2**(S−1)) >> S, 0, 255)`` with a constant ``S``
    (:func:`hwsim.golden.swiftchannel.network.requant_mult` with ``M = 1``)."""
    # a constant shift: half up is + 2**(S−1), then an arithmetic (floor) shift; a Const
    # shift amount through round_shift would elaborate a barrel shifter's worth of cells
    v = value.as_signed() + ((zp << shift) + ((1 << shift) >> 1))
    out = Signal(8, name=name)
    m.d.comb += out.eq(saturate(v >> shift, UINT8))
    return out


class SwiftChannelGate(wiring.Component):
    """``out = (x + c2) · (sigmoid(c2) − 0.5)`` on uint8 codes, ``lanes`` elements per beat.

    Stage 1 centres ``x`` and ``c2`` by their zero points, multiplies each by its 16-bit
    multiplier and registers the wide sum (27 bits, not rounded); in parallel it computes the LUT
    index ``clip(floor((c2 − z)·M / 2**S) + 256, 0, 511)`` and reads the int8 gate code (one ROM
    read port per lane). Stage 2 multiplies the sum by the gate code (35 bits) and requantizes
    once with the sum's shift (``z_out << S`` and the rounding half added before the shift).
    Latency 2 cycles, throughput one beat per cycle; ``y`` back-pressure stalls both stages.

    Members
    -------
    x : ``In(stream.Signature(StructLayout({"x": ArrayLayout(unsigned(8), lanes), "c": …})))``
        The SPAB input codes ``x`` and the second conv's codes ``c`` of the same ``lanes``
        elements (uint8, lane 0 lowest).
    y : ``Out(stream.Signature(ArrayLayout(unsigned(8), lanes)))``
        The gated uint8 codes of the same elements, two cycles after their ``x`` beat.
    """

    def __init__(self, params: spec.GateParams):
        if not isinstance(params, spec.GateParams):
            raise HwsimError(f"SwiftChannelGate needs GateParams, not {type(params).__name__}")
        self.params = p = params
        lanes = data.ArrayLayout(unsigned(8), p.lanes)
        super().__init__({
            "x": In(stream.Signature(data.StructLayout({"x": lanes, "c": lanes}))),
            "y": Out(stream.Signature(lanes)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        advance = Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready), self.x.ready.eq(advance)]
        take = self.x.valid & advance

        lut = [int(v) & 0xFF for v in sc.sigmoid_lut()]
        s1_valid = Signal()
        with m.If(advance):
            m.d.sync += s1_valid.eq(self.x.valid)
        s1_sums = []
        reads = []
        for l in range(p.lanes):
            rom = Memory(shape=unsigned(8), depth=sc.LUT_SIZE, init=lut)
            m.submodules[f"lut{l}"] = rom
            rd = rom.read_port()
            xv = self.x.payload.x[l]
            cv = self.x.payload.c[l]
            dc = Signal(signed(10), name=f"dc{l}")
            dx = Signal(signed(10), name=f"dx{l}")
            m.d.comb += [dc.eq(cv - p.z_c), dx.eq(xv - p.z_x)]
            off = Signal(signed(40), name=f"lut_off{l}")
            m.d.comb += off.eq((dc * p.lut_mult) >> p.lut_shift)  # arithmetic shift: floor
            idx = Signal(signed(41), name=f"lut_idx{l}")
            m.d.comb += idx.eq(off + sc.LUT_SIZE // 2)
            m.d.comb += [rd.addr.eq(Mux(idx < 0, 0, Mux(idx > sc.LUT_SIZE - 1, sc.LUT_SIZE - 1,
                                                             idx[:9]))),
                         rd.en.eq(advance)]
            acc = Signal(signed(10 + sc.MULT_BITS + 1), name=f"sum_acc{l}")
            m.d.comb += acc.eq(dx * Const(p.sum_mult_x, sc.MULT_BITS)
                               + dc * Const(p.sum_mult_c, sc.MULT_BITS))
            s1 = Signal.like(acc, name=f"s1_sum{l}")
            with m.If(take):
                m.d.sync += s1.eq(acc)
            s1_sums.append(s1)
            reads.append(rd)

        with m.If(advance):
            m.d.sync += self.y.valid.eq(s1_valid)
        for l in range(p.lanes):
            prod = Signal(signed(10 + sc.MULT_BITS + 1 + 8), name=f"prod{l}")
            m.d.comb += prod.eq(s1_sums[l] * reads[l].data.as_signed())
            out = _requant_const(m, prod, p.sum_shift, p.z_out, f"out{l}")
            with m.If(advance & s1_valid):
                m.d.sync += self.y.payload[l].eq(out)
        return m
