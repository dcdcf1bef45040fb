"""Weight-streamed ternary projection: an AXI4 read manager feeding a ternary MAC array.

Specification: :mod:`hwsim.golden.vitallm.weight_stream` (DRAM layout, burst plan, cycle
formula). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import weight_stream as spec
from rtl.common import adder_tree, round_shift, saturate, shift_add_multiply
from rtl.common.axi import BURST_INCR, axi4_read_signature, size_code

__all__ = ["TernaryStream"]


class TernaryStream(wiring.Component):
    """``y = requant(W · x)`` with ``W`` streamed from DRAM over AXI4 for every vector.

    The weights are read in the Hugging Face 2-bit packed layout (four rows per byte,
    :func:`hwsim.golden.vitallm.weight_stream.pack_rows`), so each ``data_bytes``-wide R beat
    holds ``data_bytes`` columns of rows ``j, j+P, j+2P, j+3P`` (``P = rows/4``): four adder
    trees of ``data_bytes`` ternary lanes (add, subtract or skip: no multiplier) take one beat
    per cycle into four row accumulators. After a packed row's ``cols/data_bytes`` beats the
    four accumulators are rescaled by ``M · 2**-S`` (shift-add, no DSP), rounded, saturated and
    sent as one ``y`` beat.

    Sequence: the first ``x`` beat samples ``M``/``S`` and starts the AR bursts (one per cycle
    from the next cycle, :func:`~hwsim.golden.vitallm.weight_stream.burst_plan`); ``x`` loads
    into a ``cols/data_bytes``-word buffer while the first burst's latency runs; R beats are
    taken once ``x`` is loaded. Latency and throughput
    (:func:`~hwsim.golden.vitallm.weight_stream.projection_cycles`): one R beat per cycle when
    the DRAM delivers one, ``4·data_bytes`` ternary MACs per beat; a projection takes
    ``max(2 + latency, cols/data_bytes) + (beats − 1)·T + 5`` cycles from its first ``x`` beat
    to its last ``y`` beat. Back-pressure on ``y`` stalls the pipeline and ``rready``; a new
    vector is taken once the last ``y`` beat has left.

    Parameters
    ----------
    params : WeightStreamParams

    Members
    -------
    m_axi : ``Out(axi4_read_signature(addr_width, data_bytes))``
        AXI4 read manager (:mod:`rtl.common.axi`): INCR bursts of full-width beats, ID 0;
        ``rresp`` and ``rlast`` are not checked (beats are counted).
    x : ``In(stream.Signature(ArrayLayout(signed(8), data_bytes)))``
        Activations, ``data_bytes`` per beat, ``cols/data_bytes`` beats per vector.
    y : ``Out(stream.Signature(ArrayLayout(signed(out.width), 4)))``
        Beat ``j`` holds rows ``j, j+P, j+2P, j+3P`` (lane 0 first).
    mult, shift : ``In``
        ``M`` and ``S``, sampled with the first ``x`` beat.
    busy : ``Out(1)``
        High from the first ``x`` beat to the last ``y`` beat.
    """

    def __init__(self, params: spec.WeightStreamParams):
        if not isinstance(params, spec.WeightStreamParams):
            self._MustUse__silence = True
            raise HwsimError(f"TernaryStream needs WeightStreamParams, not "
                             f"{type(params).__name__}")
        self.params = p = params
        out_shape = signed(p.out.width) if p.out.signed else unsigned(p.out.width)
        super().__init__({
            "m_axi": Out(axi4_read_signature(p.addr_width, p.data_bytes)),
            "x": In(stream.Signature(data.ArrayLayout(signed(p.act.width), p.data_bytes))),
            "y": Out(stream.Signature(data.ArrayLayout(out_shape, 4))),
            "mult": In(unsigned(p.mult_bits)),
            "shift": In(unsigned(p.shift_bits)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        p, m = self.params, Module()
        D, C, P, aw = p.data_bytes, p.chunks, p.packed_rows, p.act.width
        plan = spec.burst_plan(p)
        axi = self.m_axi

        # ---- AR: one burst per cycle from the cycle after the first x beat --------------------
        ar_on = Signal()
        ar_k = Signal(range(len(plan)))
        ar_addr = Signal(p.addr_width)
        last_burst = ar_k == len(plan) - 1
        m.d.comb += [axi.arvalid.eq(ar_on), axi.araddr.eq(ar_addr), axi.arid.eq(0),
                     axi.arsize.eq(size_code(D)), axi.arburst.eq(BURST_INCR),
                     axi.arlen.eq(Mux(last_burst, plan[-1][1] - 1, p.burst_beats - 1))]
        with m.If(axi.arvalid & axi.arready):
            m.d.sync += [ar_k.eq(ar_k + 1), ar_addr.eq(ar_addr + p.burst_beats * D)]
            with m.If(last_burst):
                m.d.sync += [ar_on.eq(0), ar_k.eq(0)]

        # ---- x buffer, control ---------------------------------------------------------------
        xmem = Memory(shape=unsigned(aw * D), depth=C, init=[])
        m.submodules.xmem = xmem
        x_wr = xmem.write_port()
        x_rd = xmem.read_port(transparent_for=(x_wr,))
        x_k = Signal(range(C))
        chunk = Signal(range(C))        # column chunk of the next R beat
        prow = Signal(range(P))         # packed row of the next R beat
        y_k = Signal(range(P))
        mult = Signal.like(self.mult)
        shift = Signal.like(self.shift)
        y_taken = self.y.valid & self.y.ready
        adv = ~self.y.valid | self.y.ready   # the pipeline moves unless y holds a beat
        take = Signal()                      # an R beat is taken this cycle
        m.d.comb += [x_wr.data.eq(self.x.payload.as_value()), x_wr.addr.eq(x_k),
                     take.eq(axi.rvalid & axi.rready)]
        last_chunk = chunk == C - 1
        m.d.comb += x_rd.addr.eq(Mux(take, Mux(last_chunk, 0, chunk + 1), chunk))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.x.ready.eq(1)
                with m.If(self.x.valid):
                    m.d.comb += x_wr.en.eq(1)
                    m.d.sync += [mult.eq(self.mult), shift.eq(self.shift), ar_on.eq(1),
                                 ar_addr.eq(p.base_addr), ar_k.eq(0), x_k.eq(1 % C)]
                    m.next = "RUN" if C == 1 else "LOAD"
            with m.State("LOAD"):
                m.d.comb += [self.x.ready.eq(1), self.busy.eq(1)]
                with m.If(self.x.valid):
                    m.d.comb += x_wr.en.eq(1)
                    m.d.sync += x_k.eq(Mux(x_k == C - 1, 0, x_k + 1))
                    with m.If(x_k == C - 1):
                        m.next = "RUN"
            with m.State("RUN"):
                m.d.comb += [axi.rready.eq(adv), self.busy.eq(1)]
                with m.If(take):
                    m.d.sync += chunk.eq(Mux(last_chunk, 0, chunk + 1))
                    with m.If(last_chunk):
                        m.d.sync += prow.eq(Mux(prow == P - 1, 0, prow + 1))
                        with m.If(prow == P - 1):
                            m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.comb += self.busy.eq(1)
                with m.If(y_taken & (y_k == P - 1)):
                    m.next = "IDLE"
        with m.If(y_taken):
            m.d.sync += y_k.eq(Mux(y_k == P - 1, 0, y_k + 1))

        # ---- datapath: 4 adder trees → accumulators → × M → round, saturate -----------------
        s1_valid, s1_last = Signal(), Signal()
        s1_sum = [Signal(signed(p.tree_width), name=f"s1_sum{i}") for i in range(4)]
        acc = [Signal(signed(p.acc_width), name=f"acc{i}") for i in range(4)]
        s2_valid = Signal()
        s2_acc = [Signal(signed(p.acc_width), name=f"s2_acc{i}") for i in range(4)]
        prod_width = p.acc_width + p.mult_bits + 1
        s3_valid = Signal()
        s3_prod = [Signal(signed(prod_width), name=f"s3_prod{i}") for i in range(4)]
        with m.If(adv):
            m.d.sync += [s1_valid.eq(take), s1_last.eq(last_chunk), s2_valid.eq(0),
                         s3_valid.eq(s2_valid), self.y.valid.eq(s3_valid)]
            for i in range(4):
                terms = []
                for c in range(D):
                    code = axi.rdata[8 * c + 2 * i: 8 * c + 2 * i + 2]
                    xl = x_rd.data[aw * c: aw * (c + 1)].as_signed()
                    term = Signal(signed(aw + 1), name=f"term{i}_{c}")
                    # packed code c = w + 1: 0 → −x, 1 → skip, 2 → +x, 3 → skip
                    m.d.comb += term.eq(Mux(code == 2, xl, Mux(code == 0, -xl, 0)))
                    terms.append(term)
                total = acc[i] + s1_sum[i]
                m.d.sync += [s1_sum[i].eq(adder_tree(terms)),
                             s3_prod[i].eq(shift_add_multiply(s2_acc[i], mult)),
                             self.y.payload[i].eq(saturate(round_shift(s3_prod[i], shift,
                                                                       p.out.rounding), p.out))]
                with m.If(s1_valid):
                    m.d.sync += [acc[i].eq(Mux(s1_last, 0, total)), s2_acc[i].eq(total)]
            with m.If(s1_valid & s1_last):
                m.d.sync += s2_valid.eq(1)
        return m
