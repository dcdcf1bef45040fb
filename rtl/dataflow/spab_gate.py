"""The ``swiftchannel-gate`` kernel with two input streams (the dataflow top's contract).

:class:`rtl.swiftchannel.gate.SwiftChannelGate` takes ``x`` and ``c`` in one struct beat;
:class:`SpabGateJoin` takes them on ``a`` (the SPAB input ``x``) and ``b`` (the second conv's
``c``), ``lanes`` uint8 codes each, and passes a beat to the gate when both are valid (both
consumed together). No register: the latency and throughput are the gate's.
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.dataflow.glue import _sig
from rtl.swiftchannel.gate import SwiftChannelGate

__all__ = ["SpabGateJoin"]


class SpabGateJoin(wiring.Component):
    """``a``, ``b``: ``In`` streams of ``lanes`` uint8 codes; ``y``: the gate's output."""

    def __init__(self, params):
        self.params = params
        super().__init__({"a": In(_sig(False, params.lanes)), "b": In(_sig(False, params.lanes)),
                          "y": Out(_sig(False, params.lanes))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.gate = gate = SwiftChannelGate(self.params)
        both = self.a.valid & self.b.valid
        m.d.comb += [gate.x.payload.x.eq(self.a.payload), gate.x.payload.c.eq(self.b.payload),
                     gate.x.valid.eq(both), self.a.ready.eq(gate.x.ready & both),
                     self.b.ready.eq(gate.x.ready & both)]
        wiring.connect(m, wiring.flipped(self.y), gate.y)
        return m
