"""Attention head: KV cache, int8 QKᵀ / A·V engine, integer softmax, absmax requantizer.

Specification: :mod:`hwsim.golden.common.attention_head` (golden function, operation stream, cycle
formulas), :mod:`hwsim.golden.common.softmax_int` and :mod:`hwsim.golden.common.int8_matmul`. This module only
builds the hardware: the KV cache, the control and the shared multiplier array; the phases are the
components :class:`rtl.common.qk_engine.QkEngine`, :class:`rtl.common.softmax.SoftmaxExp`,
:class:`rtl.common.recip.Reciprocal`, :class:`rtl.common.av_engine.AvEngine` and
:class:`rtl.common.requant_out.OutRequant`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from rtl.common.av_engine import AvEngine
from rtl.common.booth import multiply
from rtl.common.qk_engine import PRODUCT_WIDTH, QkEngine
from rtl.common.recip import Reciprocal
from rtl.common.requant_out import OutRequant, out_layout
from rtl.common.softmax import SoftmaxExp

__all__ = ["AttentionHead"]


class AttentionHead(wiring.Component):
    """One attention head with its KV cache, streaming decode steps and prefills.

    The input is one stream of operations (:func:`hwsim.golden.common.attention_head.op_words`): a
    ``kv`` operation (``C = head_dim/lanes`` beats of ``lanes`` k and v codes) appends a token
    to the cache, a ``q`` operation (``C`` beats) runs a query against every cached token, a
    ``clear`` beat empties the cache. A query runs in phases on one array of ``lanes``
    multipliers (``"dsp"``: plain ``a * b``; ``"booth"``: radix-4 Booth, no DSP):

    1. QKᵀ (:class:`~rtl.common.qk_engine.QkEngine`): one (token, chunk) per cycle, adder
       tree, exact accumulator, score requantizer (``score_mult · 2**-score_shift``), score
       memory and running row max;
    2. exponentials (:class:`~rtl.common.softmax.SoftmaxExp`): ``exp_lanes`` scores per cycle
       through the shift-and-LUT ``2**-x`` units, the row sum accumulated, the exponentials
       stored;
    3. reciprocal of the sum (restoring divider, :class:`rtl.common.recip.Reciprocal`);
    4. A·V (:class:`~rtl.common.av_engine.AvEngine`): one (chunk, token) per cycle, each
       exponential normalized on the fly to a probability code and multiplied with ``lanes``
       V codes into ``lanes`` accumulators; the row absmax is tracked;
    5. reciprocal of the absmax (the same divider), then ``C`` output words through the
       absmax requantizer (:class:`~rtl.common.requant_out.OutRequant`).

    Latency and throughput (no idle input, no back-pressure; :func:`~hwsim.golden.
    attention_head.query_cycles`): a query against ``L`` tokens takes
    ``2·L·C + ⌈L/E⌉ + 2·C + 2·recip_bits + 19`` cycles from its first q beat to its last
    output beat, i.e. ``lanes`` multiplies per cycle for ``2·L·C`` of them; a kv operation takes
    ``C`` cycles, a clear one. Operations run back to back. Back-pressure on ``out`` stalls only
    the output phase; idle input cycles only delay the operation.

    Parameters
    ----------
    params : AttentionParams

    Members
    -------
    inp : ``In(stream.Signature(StructLayout({op: 2, a: lanes × int8, b: lanes × int8})))``
        One operation word per beat (:func:`hwsim.golden.common.attention_head.op_words`): ``op``
        is the op code (kv, q, clear); kv: ``C`` beats, ``a`` = k and ``b`` = v chunk ``c``
        of the token (lane 0 lowest); q: ``C`` beats, ``a`` = q chunk ``c``, ``b`` unused;
        clear: one beat.
    out : ``Out(stream.Signature(StructLayout({o: lanes × out, amax: unsigned})))``
        ``C`` beats per query: the requantized context, and the row's absmax in every beat.
    score_mult : ``In(unsigned(mult_bits))``, score_shift : ``In(unsigned(shift_bits))``
        Folded score requantization, sampled with the last q beat of each query.
    length : ``Out(range(max_len + 1))``
        Tokens in the cache. A kv operation on a full cache is accepted and dropped; a query on
        an empty cache answers ``C`` zero beats with ``amax = 0`` (the golden model rejects both).
    busy : ``Out(1)``
        High while a query runs.
    """

    def __init__(self, params: spec.AttentionParams):
        if not isinstance(params, spec.AttentionParams):
            raise HwsimError(f"AttentionHead needs AttentionParams, not {type(params).__name__}")
        self.params = p = params
        self.in_layout = data.StructLayout({
            "op": unsigned(2),
            "a": data.ArrayLayout(signed(8), p.lanes),
            "b": data.ArrayLayout(signed(8), p.lanes),
        })
        self.out_layout = out_layout(p)
        super().__init__({
            "inp": In(stream.Signature(self.in_layout)),
            "out": Out(stream.Signature(self.out_layout)),
            "score_mult": In(unsigned(p.mult_bits)),
            "score_shift": In(unsigned(p.shift_bits)),
            "length": Out(range(p.max_len + 1)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, M, LN = p.chunks, p.max_len, p.lanes
        m.submodules.qk = qk = QkEngine(p)
        m.submodules.softmax = smx = SoftmaxExp(p)
        m.submodules.av = av = AvEngine(p)
        m.submodules.requant = req = OutRequant(p)
        m.submodules.recip = recip = Reciprocal(av.recip_width, p.recip_bits)
        wiring.connect(m, wiring.flipped(self.out), req.out)

        # ---- KV cache and query memories ----------------------------------------------------
        kmem = Memory(shape=unsigned(8 * LN), depth=M * C, init=[])
        vmem = Memory(shape=unsigned(8 * LN), depth=M * C, init=[])
        qmem = Memory(shape=unsigned(8 * LN), depth=C, init=[])
        m.submodules.kmem, m.submodules.vmem, m.submodules.qmem = kmem, vmem, qmem
        k_wr, k_rd = kmem.write_port(), kmem.read_port()
        v_wr, v_rd = vmem.write_port(), vmem.read_port()
        q_wr, q_rd = qmem.write_port(), qmem.read_port()

        # ---- phase memories between the engines ---------------------------------------------
        m.d.comb += [smx.s_data.eq(qk.rd_data), qk.rd_addr.eq(smx.s_addr),
                     smx.row_max.eq(qk.row_max), av.exp_word.eq(smx.rd_data),
                     req.rd_data.eq(av.rd_data), av.rd_addr.eq(req.rd_addr),
                     av.rd_en.eq(req.rd_en), req.amax.eq(av.amax),
                     av.r.eq(recip.r), av.k.eq(recip.k), req.r.eq(recip.r), req.k.eq(recip.k),
                     qk.mult.eq(self.score_mult), qk.shift.eq(self.score_shift),
                     smx.length.eq(self.length)]

        # ---- control registers --------------------------------------------------------------
        length = self.length
        waddr = Signal(range(M * C + 1))     # next K/V write address
        kv_c = Signal(range(C))
        q_c = Signal(range(C))
        L = Signal(range(M + 1))             # tokens this query attends to
        i = Signal(range(M))                 # token counter (QK, AV)
        c = Signal(range(C))                 # chunk (QK) / output group (AV)
        addr = Signal(range(M * C))          # K address (QK) / V address (AV)
        ew_addr = Signal(range(-(-M // p.exp_lanes)))  # exponential word, lane (AV)
        ew_lane = Signal(range(p.exp_lanes))
        started = Signal()                   # reciprocal started (RECIP_*)
        # QKᵀ issue register: products of (i, c) leave the multipliers in the next cycle
        s1_valid, s1_first, s1_last, s1_end = Signal(), Signal(), Signal(), Signal()

        payload = self.inp.payload
        m.d.comb += [
            k_wr.addr.eq(waddr), k_wr.data.eq(payload.a.as_value()),
            v_wr.addr.eq(waddr), v_wr.data.eq(payload.b.as_value()),
            q_wr.addr.eq(q_c), q_wr.data.eq(payload.a.as_value()),
            k_rd.addr.eq(addr), q_rd.addr.eq(c),
            smx.rd_addr.eq(ew_addr), v_rd.addr.eq(av.v_addr),
            qk.valid.eq(s1_valid), qk.first.eq(s1_first), qk.last.eq(s1_last),
            qk.end.eq(s1_end),
        ]
        # the QKᵀ issue flag falls unless the FSM's current state raises it (later statements win)
        m.d.sync += s1_valid.eq(0)

        # ---- control ------------------------------------------------------------------------
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.inp.ready.eq(1)
                with m.If(self.inp.valid), m.Switch(payload.op):
                    with m.Case(spec.OP_KV):
                        with m.If(length != M):
                            m.d.comb += [k_wr.en.eq(1), v_wr.en.eq(1)]
                            m.d.sync += waddr.eq(waddr + 1)
                            with m.If(kv_c == C - 1):
                                m.d.sync += length.eq(length + 1)
                        m.d.sync += kv_c.eq(Mux(kv_c == C - 1, 0, kv_c + 1))
                    with m.Case(spec.OP_Q):
                        m.d.comb += q_wr.en.eq(1)
                        m.d.sync += q_c.eq(Mux(q_c == C - 1, 0, q_c + 1))
                        with m.If(q_c == C - 1):
                            m.d.comb += [qk.start.eq(1), smx.start.eq(1), av.start.eq(1)]
                            m.d.sync += [L.eq(length), i.eq(0), c.eq(0), addr.eq(0)]
                            with m.If(length == 0):
                                # nothing to attend to: answer zeros (r = 0), amax = 0
                                m.d.comb += [req.start.eq(1), req.r.eq(0),
                                             req.k.eq(p.recip_bits)]
                                m.next = "OUT"
                            with m.Else():
                                m.next = "QK"
                    with m.Case(spec.OP_CLEAR):
                        m.d.sync += [length.eq(0), waddr.eq(0), kv_c.eq(0)]
            with m.State("QK"):
                last_c, last_i = c == C - 1, i == L - 1
                m.d.sync += [s1_valid.eq(1), s1_first.eq(c == 0), s1_last.eq(last_c),
                             s1_end.eq(last_c & last_i), addr.eq(addr + 1),
                             c.eq(Mux(last_c, 0, c + 1))]
                with m.If(last_c):
                    m.d.sync += i.eq(i + 1)
                    with m.If(last_i):
                        m.next = "QK_WAIT"
            with m.State("QK_WAIT"), m.If(qk.done):
                m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += smx.issue.eq(1)
                with m.If(smx.last):
                    m.next = "EXP_WAIT"
            with m.State("EXP_WAIT"), m.If(smx.done):
                m.d.sync += started.eq(0)
                m.next = "RECIP_SUM"
            with m.State("RECIP_SUM"):
                m.d.comb += [recip.value.eq(smx.sum), recip.start.eq(~started)]
                m.d.sync += started.eq(1)
                with m.If(started & recip.done):
                    m.d.comb += av.norm.eq(1)
                    m.d.sync += [i.eq(0), c.eq(0), addr.eq(0), ew_addr.eq(0), ew_lane.eq(0)]
                    m.next = "AV"
            with m.State("AV"):
                last_i, last_c, last_lane = i == L - 1, c == C - 1, ew_lane == p.exp_lanes - 1
                m.d.comb += [av.valid.eq(1), av.first.eq(i == 0), av.last.eq(last_i),
                             av.end.eq(last_i & last_c), av.lane.eq(ew_lane), av.group.eq(c),
                             av.v_issue.eq(addr)]
                with m.If(last_i):
                    m.d.sync += [i.eq(0), c.eq(c + 1), addr.eq(c + 1), ew_addr.eq(0),
                                 ew_lane.eq(0)]
                    with m.If(last_c):
                        m.next = "AV_WAIT"
                with m.Else():
                    m.d.sync += [i.eq(i + 1), addr.eq(addr + C),
                                 ew_lane.eq(Mux(last_lane, 0, ew_lane + 1)),
                                 ew_addr.eq(Mux(last_lane, ew_addr + 1, ew_addr))]
            with m.State("AV_WAIT"), m.If(av.done):
                m.d.sync += started.eq(0)
                m.next = "RECIP_MAX"
            with m.State("RECIP_MAX"):
                m.d.comb += [recip.value.eq(av.amax), recip.start.eq(~started)]
                m.d.sync += started.eq(1)
                with m.If(started & recip.done):
                    m.d.comb += req.start.eq(1)
                    m.next = "OUT"
            with m.State("OUT"), m.If(req.done):
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~self.inp.ready)

        # ---- shared multiplier array: QKᵀ (q × k), A·V (p × v) while av.active ------------
        q_lanes = [q_rd.data[8 * l:8 * (l + 1)].as_signed() for l in range(LN)]
        k_lanes = [k_rd.data[8 * l:8 * (l + 1)].as_signed() for l in range(LN)]
        v_lanes = [v_rd.data[8 * l:8 * (l + 1)].as_signed() for l in range(LN)]
        prob9 = Cat(av.prob, Const(0, 9 - p.prob.width)).as_signed()
        for l in range(LN):
            a = Signal(signed(9), name=f"mul_a{l}")
            b = Signal(signed(8), name=f"mul_b{l}")
            prod = Signal(signed(PRODUCT_WIDTH), name=f"prod{l}")
            m.d.comb += [a.eq(Mux(av.active, prob9, q_lanes[l])),
                         b.eq(Mux(av.active, v_lanes[l], k_lanes[l])),
                         prod.eq(multiply(a, b, p.multiplier)),
                         qk.products[l].eq(prod), av.products[l].eq(prod)]
        return m
