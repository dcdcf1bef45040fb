"""A LIF neuron array (:class:`rtl.snn.lif_array.LIFArray`) as a node of the dataflow top.

The array takes address events; a dataflow edge carries vectors of 8-bit codes. The node turns
each input vector (one time step: ``inputs`` event counts, ``in_lanes`` per beat) into events:
code ``c`` at address ``a`` gives ``c`` events with address ``a``, then the vector's end gives
the end-of-step beat; the array's weights are baked in. Each step's spikes leave on ``y``,
``lanes`` neurons per beat (one code 0/1 per neuron); the membranes stay in the array's
registers from one step to the next (the compiled graph's membrane state pair).

Timing (what :func:`hwsim.compile.backend.lif.schedule_lif` models), ``C = neurons/lanes``:
the node looks at one code per cycle; a code ``c > 0`` issues its events one per ``C``
cycles (the array's event rate) and is taken with its last event; a zero code is taken in
one cycle; the end-of-step beat follows the vector's last code; the array gives chunk ``k``
of the step's spikes ``PIPELINE_DEPTH + k`` cycles after it took that beat.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.golden.snn import lif_array as spec
from rtl.dataflow.glue import _sig
from rtl.snn.lif_array import LIFArray

__all__ = ["LifNode"]


class LifNode(wiring.Component):
    """Event-count vectors on ``x`` (``in_lanes`` uint8 codes per beat) → the LIF array's spikes
    on ``y`` (``params.lanes`` uint8 codes 0/1 per beat); see the module docstring."""

    def __init__(self, params: spec.LifParams, weights, in_lanes: int = 1):
        self.params, self.weights, self.in_lanes = params, weights, in_lanes
        super().__init__({"x": In(_sig(False, in_lanes)), "y": Out(_sig(False, params.lanes))})

    def elaborate(self, platform):
        p, L_in = self.params, self.in_lanes
        m = Module()
        m.submodules.lif = lif = LIFArray(p, self.weights)
        addr = Signal(range(max(p.inputs, 2)))
        lane = Signal(range(max(L_in, 2)))
        sent = Signal(8)
        closing = Signal()
        code = Signal(8)
        m.d.comb += [
            lif.w.valid.eq(0),
            code.eq(self.x.payload.as_value().word_select(lane, 8)),
            self.y.valid.eq(lif.out.valid),
            lif.out.ready.eq(self.y.ready),
        ]
        for i in range(p.lanes):
            m.d.comb += self.y.payload[i].eq(lif.out.payload.spikes[i])

        take = Signal()  # the current code is done this cycle
        with m.If(closing):
            m.d.comb += [lif.ev.valid.eq(1), lif.ev.payload.last.eq(1)]
            with m.If(lif.ev.ready):
                m.d.sync += closing.eq(0)
        with m.Elif(self.x.valid):
            with m.If(code == 0):
                m.d.comb += take.eq(1)
            with m.Else():
                m.d.comb += [lif.ev.valid.eq(1), lif.ev.payload.addr.eq(addr)]
                with m.If(lif.ev.ready):
                    with m.If(sent + 1 == code):
                        m.d.comb += take.eq(1)
                    with m.Else():
                        m.d.sync += sent.eq(sent + 1)
        with m.If(take):
            m.d.sync += sent.eq(0)
            m.d.comb += self.x.ready.eq(lane == L_in - 1)
            m.d.sync += lane.eq(Mux(lane == L_in - 1, 0, lane + 1))
            with m.If(addr == p.inputs - 1):
                m.d.sync += [addr.eq(0), closing.eq(1)]
            with m.Else():
                m.d.sync += addr.eq(addr + 1)
        return m
