"""Multi-threshold unit (a float activation between a layer's accumulator and its quantizer).

Specification: :mod:`hwsim.golden.common.threshold` (golden function, table, cycle formulas).
This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import threshold as spec

__all__ = ["Threshold"]


def _tree_sum(terms: list):
    """A balanced adder tree of ``terms`` (depth ``log2``; a chain would nest too deep)."""
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]


class Threshold(wiring.Component):
    """``y = codes[#{i : x ≥ breakpoints[i]}]`` on ``lanes`` codes per beat.

    Per lane, three register stages (:data:`hwsim.golden.common.threshold.PIPELINE_DEPTH`):

    1. ``m`` parallel comparators ``x ≥ B_i`` against the constant breakpoints (a thermometer
       code, the breakpoints being sorted);
    2. the count of comparators that passed (the index of the code);
    3. a ROM of the ``m + 1`` codes, read by that index (a registered read port).

    The ``y`` beat of an ``x`` beat accepted in cycle ``t`` is presented in cycle ``t + 3``
    (:func:`hwsim.golden.common.threshold.latency_cycles`); ``B`` back-to-back beats take
    ``B + 3`` cycles from the first ``x`` beat to the last ``y`` beat, both counted
    (:func:`hwsim.golden.common.threshold.stream_cycles`): one beat per cycle. Back-pressure:
    every stage advances on ``~y.valid | y.ready``, which is also ``x.ready``.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(in_bits), lanes)))``
        Input codes (accumulators), lane 0 in the low bits.
    y : ``Out(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Output codes.
    """

    def __init__(self, params: spec.ThresholdParams):
        if not isinstance(params, spec.ThresholdParams):
            self._MustUse__silence = True
            raise HwsimError(f"Threshold needs ThresholdParams, not {type(params).__name__}")
        self.params = p = params
        outs = signed(8) if p.out_signed else unsigned(8)
        super().__init__({
            "x": In(stream.Signature(data.ArrayLayout(signed(p.in_bits), p.lanes))),
            "y": Out(stream.Signature(data.ArrayLayout(outs, p.lanes))),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        n_bp = len(p.breakpoints)
        idx_bits = max(1, n_bp.bit_length())
        shape = signed(8) if p.out_signed else unsigned(8)

        advance = Signal()
        v1, v2 = Signal(), Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready), self.x.ready.eq(advance)]
        with m.If(advance):
            m.d.sync += [v1.eq(self.x.valid), v2.eq(v1), self.y.valid.eq(v2)]

        for lane in range(p.lanes):
            x = self.x.payload[lane]
            ge = Signal(max(1, n_bp), name=f"ge{lane}")
            count = Signal(idx_bits, name=f"count{lane}")
            if n_bp:
                with m.If(advance):
                    m.d.sync += ge.eq(Cat(*(x >= Const(b, signed(p.in_bits))
                                            for b in p.breakpoints)))
                    m.d.sync += count.eq(_tree_sum([ge[i] for i in range(n_bp)]))
            rom = Memory(shape=shape, depth=len(p.codes), init=list(p.codes))
            m.submodules[f"rom{lane}"] = rom
            rd = rom.read_port()
            m.d.comb += [rd.addr.eq(count), rd.en.eq(advance),
                         self.y.payload[lane].eq(rd.data)]
        return m
