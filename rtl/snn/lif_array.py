"""Spike-driven LIF neuron array: event-addressed weight accumulation and integer LIF update.

Specification: :mod:`hwsim.golden.snn.lif_array` (golden function, cycle formulas, weight memory
format). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.snn import lif_array as spec
from rtl.common import round_shift, saturate

__all__ = ["LIFArray"]

_NONE, _ACC, _UPD = 0, 1, 2


class LIFArray(wiring.Component):
    """An array of ``neurons`` integer LIF neurons fed by an address-event stream.

    Weights sit in on-chip memory, one word of ``lanes`` weight codes per (input address,
    neuron chunk). An input event with address ``a`` adds column ``W[:, a]`` to the neurons'
    current accumulators, ``lanes`` neurons per cycle (additions only: the spiking accumulate).
    A beat with ``last`` set closes the time step: every neuron leaks, integrates its current,
    fires against the threshold, resets and clears its accumulator, ``lanes`` neurons per cycle,
    and each chunk's spikes and new membrane codes leave on ``out``. Membranes, refractory
    counters and accumulators are registers.

    Latency and throughput (:mod:`hwsim.golden.snn.lif_array`, ``C = neurons/lanes``, no idle input
    and no back-pressure):

    * an event takes ``C`` cycles; a step's update takes ``C`` cycles and produces ``C`` beats;
    * a stream of steps with ``E_t`` events each takes ``Σ_t (E_t + 1)·C + 2`` cycles from the
      first accepted ``ev`` beat to the last ``out`` beat (weight-memory read + update stage);
    * a weight matrix loads in ``inputs · C`` cycles, one ``w`` beat per cycle.

    Back-pressure on ``out`` stalls the whole array; idle cycles on ``ev`` only delay it.

    Parameters
    ----------
    params : LifParams
    weights : (neurons, inputs) weight codes, optional
        Baked into the weight memory's initial contents (a compiled design's constant layer);
        without them the memory starts empty and loads through ``w``.

    Members
    -------
    w : ``In(stream.Signature(unsigned(lanes · weight.width)))``
        Weight words in memory order (:func:`hwsim.golden.snn.lif_array.weight_words`); a matrix is
        ``inputs · C`` beats, accepted only between events, and once started blocks ``ev``.
    ev : ``In(stream.Signature(StructLayout({"addr": unsigned, "last": 1})))``
        Input events (``last`` = 0, ``addr`` < inputs) and end-of-step markers (``last`` = 1).
    out : ``Out(stream.Signature(StructLayout({"spikes": lanes, "mem": ArrayLayout})))``
        Per step, ``C`` beats: chunk ``k`` carries neurons ``k·lanes …`` (lane 0 lowest).
    busy : ``Out(1)``
        High while an event or an update is in progress.
    """

    def __init__(self, params: spec.LifParams, weights=None):
        if not isinstance(params, spec.LifParams):
            raise HwsimError(f"LIFArray needs LifParams, not {type(params).__name__}")
        self.params = p = params
        self.init = [] if weights is None else spec.weight_words(weights, p)
        self.out_layout = data.StructLayout({
            "spikes": unsigned(p.lanes),
            "mem": data.ArrayLayout(signed(p.mem.width), p.lanes),
        })
        super().__init__({
            "w": In(stream.Signature(unsigned(p.lanes * p.weight.width))),
            "ev": In(stream.Signature(data.StructLayout({
                "addr": unsigned(max((p.inputs - 1).bit_length(), 1)), "last": 1}))),
            "out": Out(stream.Signature(self.out_layout)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, L = p.chunks, p.lanes
        ww, mw, aw, rw = p.weight.width, p.mem.width, p.acc_width, p.ref_width

        wmem = Memory(shape=unsigned(L * ww), depth=p.weight_depth, init=self.init)
        m.submodules.wmem = wmem
        wr, rd = wmem.write_port(), wmem.read_port()

        advance = Signal()
        m.d.comb += advance.eq(~self.out.valid | self.out.ready)

        # ---- stage 0: weight load, event accept, issue ------------------------------------
        w_addr = Signal(range(max(p.weight_depth, 2)))
        k_cnt = Signal(range(max(C, 2)))
        cur_addr = Signal.like(self.ev.payload.addr)
        issue_op = Signal(2)
        issue_k = Signal(range(max(C, 2)))
        issue_addr = Signal.like(cur_addr)
        m.d.comb += [
            wr.addr.eq(w_addr),
            wr.data.eq(self.w.payload),
            rd.addr.eq(issue_addr * C + issue_k),
            rd.en.eq(advance),
        ]
        last_w = w_addr == p.weight_depth - 1
        last_k = k_cnt == C - 1
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.w.ready.eq(1), self.ev.ready.eq(advance & ~self.w.valid)]
                with m.If(self.w.valid):
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += w_addr.eq(Mux(last_w, 0, w_addr + 1))
                    with m.If(~last_w):
                        m.next = "LOAD_W"
                with m.Elif(self.ev.valid & advance):
                    m.d.comb += [issue_k.eq(0), issue_addr.eq(self.ev.payload.addr),
                                 issue_op.eq(Mux(self.ev.payload.last, _UPD, _ACC))]
                    m.d.sync += [cur_addr.eq(self.ev.payload.addr), k_cnt.eq(1)]
                    if C > 1:
                        with m.If(self.ev.payload.last):
                            m.next = "UPD"
                        with m.Else():
                            m.next = "ACC"
            with m.State("LOAD_W"):
                m.d.comb += self.w.ready.eq(1)
                with m.If(self.w.valid):
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += w_addr.eq(Mux(last_w, 0, w_addr + 1))
                    with m.If(last_w):
                        m.next = "IDLE"
            for name, op in (("ACC", _ACC), ("UPD", _UPD)):
                with m.State(name):
                    m.d.comb += [self.busy.eq(1), issue_k.eq(k_cnt), issue_addr.eq(cur_addr)]
                    with m.If(advance):
                        m.d.comb += issue_op.eq(op)
                        m.d.sync += k_cnt.eq(k_cnt + 1)
                        with m.If(last_k):
                            m.next = "IDLE"

        # ---- stage 1: accumulate a weight word, or update a chunk of neurons --------------
        s1_op = Signal(2)
        s1_k = Signal(range(max(C, 2)))
        with m.If(advance):
            m.d.sync += [s1_op.eq(issue_op), s1_k.eq(issue_k)]

        acc = [Signal(data.ArrayLayout(signed(aw), L), name=f"acc{k}") for k in range(C)]
        mem = [Signal(data.ArrayLayout(signed(mw), L), name=f"mem{k}") for k in range(C)]
        ref = [Signal(data.ArrayLayout(unsigned(rw), L), name=f"ref{k}") for k in range(C)]
        acc_rd = Signal(data.ArrayLayout(signed(aw), L))
        mem_rd = Signal(data.ArrayLayout(signed(mw), L))
        ref_rd = Signal(data.ArrayLayout(unsigned(rw), L))
        with m.Switch(s1_k):
            for k in range(C):
                with m.Case(k):
                    m.d.comb += [acc_rd.eq(acc[k]), mem_rd.eq(mem[k]), ref_rd.eq(ref[k])]

        acc_new = Signal(data.ArrayLayout(signed(aw), L))
        mem_new = Signal(data.ArrayLayout(signed(mw), L))
        ref_new = Signal(data.ArrayLayout(unsigned(rw), L))
        spikes = Signal(L)
        theta = Const(p.threshold, signed(mw + 1))
        for l in range(L):
            wl = rd.data[ww * l: ww * (l + 1)].as_signed()
            v, cur, r = mem_rd[l], acc_rd[l], ref_rd[l]
            m.d.comb += acc_new[l].eq(cur + wl)
            if p.leak_mode == "mul":
                vl = round_shift(v * Const(p.leak_mult, unsigned(p.leak_frac)),
                                 Const(p.leak_frac, unsigned(5)), p.mem.rounding)
            else:
                vl = v - (v >> p.leak_shift)
            active = r == 0
            u = Signal(signed(mw), name=f"u{l}")
            m.d.comb += u.eq(Mux(active, saturate(vl + cur, p.mem), vl))
            fire = Signal(name=f"fire{l}")
            m.d.comb += fire.eq(active & (u > theta))
            after = (u - theta) if p.reset == "subtract" else Const(0, signed(mw))
            m.d.comb += [
                spikes[l].eq(fire),
                mem_new[l].eq(Mux(fire, after, u)),
                ref_new[l].eq(Mux(fire, p.refractory, Mux(r != 0, r - 1, 0))),
            ]

        with m.If(advance):
            m.d.sync += self.out.valid.eq(s1_op == _UPD)
            with m.Switch(s1_k):
                for k in range(C):
                    with m.Case(k):
                        with m.If(s1_op == _ACC):
                            m.d.sync += acc[k].eq(acc_new)
                        with m.If(s1_op == _UPD):
                            m.d.sync += [acc[k].eq(0), mem[k].eq(mem_new), ref[k].eq(ref_new)]
            with m.If(s1_op == _UPD):
                m.d.sync += [self.out.payload.spikes.eq(spikes),
                             self.out.payload.mem.eq(mem_new)]
        return m
