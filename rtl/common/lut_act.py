"""LUT nonlinearity (the hardware of a quantized sigmoid, GELU, tanh, SiLU … activation).

Specification: :mod:`hwsim.golden.common.lut_act` (golden function, table order, cycle
formulas). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import lut_act as spec

__all__ = ["LutAct"]


class LutAct(wiring.Component):
    """``y = table[x]`` on ``lanes`` codes per beat: one 256-entry ROM per lane.

    Each lane's ROM (:class:`amaranth.lib.memory.Memory`, ``init`` the table, one synchronous
    read port) is addressed by the lane's input code minus the input's ``min_code`` (the code's
    bit pattern, its top bit inverted for int8 inputs). The read port's register is the only
    pipeline stage: the ``y`` beat of an ``x`` beat accepted in cycle ``t`` is presented in
    cycle ``t + 1`` (:func:`hwsim.golden.common.lut_act.latency_cycles`); ``B`` back-to-back
    beats take ``B + 1`` cycles from the first ``x`` beat to the last ``y`` beat, both counted
    (:func:`hwsim.golden.common.lut_act.stream_cycles`): one beat per cycle.

    Back-pressure: ``x.ready = ~y.valid | y.ready``; a stalled ``y`` holds its beat (the read
    port is disabled) and no ``x`` beat is taken until it leaves.

    Parameters
    ----------
    params : LutActParams
        ``lanes``, input/output signedness and the 256-entry ``table``.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Input codes, ``lanes`` per beat, lane 0 in the low 8 bits.
    y : ``Out(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Output codes, lane ``i`` the table entry of lane ``i`` of the matching ``x`` beat.
    """

    def __init__(self, params: spec.LutActParams):
        if not isinstance(params, spec.LutActParams):
            self._MustUse__silence = True  # never elaborated: no "created but never used" warning
            raise HwsimError(f"LutAct needs LutActParams, not {type(params).__name__}")
        self.params = p = params
        ins = signed(8) if p.in_signed else unsigned(8)
        outs = signed(8) if p.out_signed else unsigned(8)
        super().__init__({
            "x": In(stream.Signature(data.ArrayLayout(ins, p.lanes))),
            "y": Out(stream.Signature(data.ArrayLayout(outs, p.lanes))),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        shape = signed(8) if p.out_signed else unsigned(8)

        advance = Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready), self.x.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += self.y.valid.eq(self.x.valid)

        for lane in range(p.lanes):
            rom = Memory(shape=shape, depth=spec.CODES, init=list(p.table))
            m.submodules[f"rom{lane}"] = rom
            rd = rom.read_port()
            bits = self.x.payload.as_value()[8 * lane: 8 * lane + 8]  # the code's pattern
            m.d.comb += [
                rd.addr.eq(bits ^ 0x80 if p.in_signed else bits),  # code − min_code
                rd.en.eq(advance),
                self.y.payload[lane].eq(rd.data),
            ]
        return m
