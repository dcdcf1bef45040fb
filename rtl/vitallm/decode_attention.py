"""The attention phase of a VitaLLM decode step: every query head against an on-chip KV cache,
with the leading-one top-K selector and the int8 attention engine pipelined one head apart.

Specification: :mod:`hwsim.golden.vitallm.decode_attention` (:func:`~hwsim.golden.vitallm.decode_attention.
decode_attention`, :func:`~hwsim.golden.vitallm.decode_attention.decode_attention_cycles`).
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import decode_attention as spec
from rtl.common.attention_head import AttentionHead
from rtl.vitallm.lo_topk import LoTopK

__all__ = ["DecodeAttention"]


class DecodeAttention(wiring.Component):
    """One decode step's attention for ``H`` query heads over ``G`` KV heads of the first
    ``L ≤ M`` of ``M`` cache slots (``L``, the step's run-time length, on ``length``).

    On-chip memories: the K and V caches (``G·M`` rows of ``d`` int8 codes each, written by
    the ``kv`` stream, KV head-major) and a buffer of the ``H`` queries with their score
    scales. Two controllers run concurrently:

    * the selector stage streams head ``h``'s query and its KV head's first ``L`` key rows
      into the leading-one top-K selector (:class:`rtl.vitallm.lo_topk.LoTopK`, which keeps
      ``min(K, L)``) and puts the ``M``-bit mask in a one-entry buffer;
    * the attention stage takes a mask, clears the attention engine's KV buffer
      (:class:`rtl.common.attention_head.AttentionHead`, capacity ``K``), writes the
      ``min(K, L)`` kept tokens' K and V rows into it in token order (a priority encoder finds
      the next kept token each cycle, no scan of the ``M`` tokens) and sends the query; the
      engine's output is the component's output.

    So the selector works on head ``h+1`` while the engine attends head ``h`` (head-level
    pipelining). Cycles from the first ``q`` beat to the last output beat, no idle input and no
    back-pressure: :func:`hwsim.golden.vitallm.decode_attention.decode_attention_cycles` of ``L``.

    Members
    -------
    kv : ``In(stream.Signature(StructLayout({k: d × int8, v: d × int8, addr})))``
        Writes one cached token's k and v rows at ``addr = g·M + token`` (KV head ``g``);
        always ready.
    q : ``In(stream.Signature(StructLayout({q: d × int8, mult, shift})))``
        ``H`` beats per decode step: each head's query and score scale ``mult · 2**-shift``.
    out : ``Out(stream.Signature(StructLayout({o: lanes × int8, amax})))``
        ``C = d/lanes`` beats per head, heads in order (the attention engine's output words).
    length : ``In(unsigned(bits(M)), init=M)``
        ``L``, the tokens this step attends to (slots ``0 … L − 1`` of every KV head), ``1 …
        M`` (other values: undefined). Sampled with the step's first ``q`` beat and used
        until its last ``out`` beat; undriven it stays ``M``.
    """

    def __init__(self, params: spec.DecodeAttentionParams):
        if not isinstance(params, spec.DecodeAttentionParams):
            self._MustUse__silence = True
            raise HwsimError(f"DecodeAttention needs DecodeAttentionParams, not "
                             f"{type(params).__name__}")
        self.params = p = params
        self.engine = AttentionHead(p.attention())
        self.selector = LoTopK(p.selector())
        ap = p.attention()
        row = data.ArrayLayout(signed(8), p.head_dim)
        super().__init__({
            "kv": In(stream.Signature(data.StructLayout({
                "k": row, "v": row, "addr": unsigned(max(1, (p.kv_heads * p.tokens - 1)
                                                           .bit_length()))}))),
            "q": In(stream.Signature(data.StructLayout({
                "q": row, "mult": unsigned(ap.mult_bits), "shift": unsigned(ap.shift_bits)}))),
            "out": Out(stream.Signature(self.engine.out_layout)),
            "length": In(unsigned(p.tokens.bit_length()), init=p.tokens),
        })

    def elaborate(self, platform):
        p = self.params
        H, G, M, d = p.heads, p.kv_heads, p.tokens, p.head_dim
        ap = p.attention()
        LN, C = ap.lanes, ap.chunks
        rep = H // G
        m = Module()
        m.submodules.engine = eng = self.engine
        m.submodules.selector = sel = self.selector
        wiring.connect(m, wiring.flipped(self.out), eng.out)

        # ---- on-chip memories ------------------------------------------------------------
        kmem = Memory(shape=unsigned(8 * d), depth=G * M, init=[])
        vmem = Memory(shape=unsigned(8 * d), depth=G * M, init=[])
        m.submodules.kmem, m.submodules.vmem = kmem, vmem
        k_wr, v_wr = kmem.write_port(), vmem.write_port()
        k_sel = kmem.read_port(domain="comb")    # selector stage: key rows
        k_att = kmem.read_port(domain="comb")    # attention stage: kept key rows
        v_att = vmem.read_port(domain="comb")
        m.d.comb += [self.kv.ready.eq(1), k_wr.addr.eq(self.kv.payload.addr),
                     v_wr.addr.eq(self.kv.payload.addr),
                     k_wr.data.eq(self.kv.payload.k.as_value()),
                     v_wr.data.eq(self.kv.payload.v.as_value())]
        with m.If(self.kv.valid):
            m.d.comb += [k_wr.en.eq(1), v_wr.en.eq(1)]

        qlay = self.q.payload.shape()
        qbuf = [Signal(qlay, name=f"qbuf{h}") for h in range(H)]
        qcount = Signal(range(H + 1))
        step_done = Signal()

        # the step's length, sampled with its first q beat (the stages of the previous step
        # have finished by then: qcount is cleared at step_done)
        length = Signal.like(self.length)
        with m.If(self.q.valid & self.q.ready & (qcount == 0)):
            m.d.sync += length.eq(self.length)
        m.d.comb += sel.length.eq(length)

        # ---- selector stage ----------------------------------------------------------------
        s_head = Signal(range(H))
        s_idx = Signal(range(M))
        mfull = Signal()
        mbuf = Signal(M)
        mhead = Signal(range(H))
        s_grp = Signal(range(G))
        m.d.comb += s_grp.eq(s_head // rep)
        q_of_s = Signal(qlay)
        with m.Switch(s_head):
            for h in range(H):
                with m.Case(h):
                    m.d.comb += q_of_s.eq(qbuf[h])
        m.d.comb += [sel.q.payload.eq(q_of_s.q), k_sel.addr.eq(s_grp * M + s_idx),
                     sel.k.payload.eq(k_sel.data), sel.sel.ready.eq(~mfull)]
        with m.FSM(name="sel_fsm"):
            with m.State("QUERY"):
                m.d.comb += sel.q.valid.eq(qcount > s_head)
                with m.If(sel.q.valid & sel.q.ready):
                    m.d.sync += s_idx.eq(0)
                    m.next = "KEYS"
            with m.State("KEYS"):
                m.d.comb += sel.k.valid.eq(1)
                with m.If(sel.k.ready):
                    m.d.sync += s_idx.eq(s_idx + 1)
                    with m.If(s_idx == length - 1):
                        m.next = "MASK"
            with m.State("MASK"):
                with m.If(sel.sel.valid & ~mfull):
                    m.d.sync += [mbuf.eq(sel.sel.payload), mhead.eq(s_head), mfull.eq(1)]
                    with m.If(s_head == H - 1):
                        m.next = "DONE"
                    with m.Else():
                        m.d.sync += s_head.eq(s_head + 1)
                        m.next = "QUERY"
            with m.State("DONE"):
                with m.If(step_done):
                    m.d.sync += s_head.eq(0)
                    m.next = "QUERY"

        # ---- attention stage ---------------------------------------------------------------
        rem = Signal(M)
        a_head = Signal(range(H))
        a_c = Signal(range(C))
        # lowest kept token still to load (priority encoder: later assignments win)
        nxt = Signal(range(M))
        for j in reversed(range(M)):
            with m.If(rem[j]):
                m.d.comb += nxt.eq(j)
        a_grp = Signal(range(G))
        m.d.comb += [a_grp.eq(a_head // rep), k_att.addr.eq(a_grp * M + nxt),
                     v_att.addr.eq(a_grp * M + nxt)]
        q_of_a = Signal(qlay)
        with m.Switch(a_head):
            for h in range(H):
                with m.Case(h):
                    m.d.comb += q_of_a.eq(qbuf[h])
        m.d.comb += [eng.score_mult.eq(q_of_a.mult), eng.score_shift.eq(q_of_a.shift)]
        ip = eng.inp.payload
        krow = data.ArrayLayout(signed(8), d)(k_att.data)
        vrow = data.ArrayLayout(signed(8), d)(v_att.data)
        with m.FSM(name="att_fsm"):
            with m.State("TAKE"):
                with m.If(mfull):
                    m.d.sync += [rem.eq(mbuf), a_head.eq(mhead), mfull.eq(0), a_c.eq(0)]
                    m.next = "CLEAR"
            with m.State("CLEAR"):
                m.d.comb += [eng.inp.valid.eq(1), ip.op.eq(ah.OP_CLEAR)]
                with m.If(eng.inp.ready):
                    m.next = "KV"
            with m.State("KV"):
                m.d.comb += [eng.inp.valid.eq(1), ip.op.eq(ah.OP_KV)]
                with m.Switch(a_c):
                    for c in range(C):
                        with m.Case(c):
                            m.d.comb += [ip.a[i].eq(krow[c * LN + i]) for i in range(LN)]
                            m.d.comb += [ip.b[i].eq(vrow[c * LN + i]) for i in range(LN)]
                with m.If(eng.inp.ready):
                    m.d.sync += a_c.eq(Mux(a_c == C - 1, 0, a_c + 1))
                    with m.If(a_c == C - 1):
                        m.d.sync += rem.eq(rem & ~(Const(1, M) << nxt))
                        with m.If((rem & ~(Const(1, M) << nxt)) == 0):
                            m.next = "Q"
            with m.State("Q"):
                m.d.comb += [eng.inp.valid.eq(1), ip.op.eq(ah.OP_Q)]
                with m.Switch(a_c):
                    for c in range(C):
                        with m.Case(c):
                            m.d.comb += [ip.a[i].eq(q_of_a.q[c * LN + i]) for i in range(LN)]
                with m.If(eng.inp.ready):
                    m.d.sync += a_c.eq(Mux(a_c == C - 1, 0, a_c + 1))
                    with m.If(a_c == C - 1):
                        with m.If(a_head == H - 1):
                            m.next = "DRAIN"
                        with m.Else():
                            m.next = "TAKE"
            with m.State("DRAIN"):
                # the last head's output has left once the engine takes input again
                with m.If(eng.inp.ready):
                    m.d.comb += step_done.eq(1)
                    m.next = "TAKE"

        # ---- query buffer ------------------------------------------------------------------
        m.d.comb += self.q.ready.eq(qcount < H)
        with m.If(step_done):
            m.d.sync += qcount.eq(0)
        with m.Elif(self.q.valid & self.q.ready):
            for h in range(H):
                with m.If(qcount == h):
                    m.d.sync += qbuf[h].eq(self.q.payload)
            m.d.sync += qcount.eq(qcount + 1)
        return m
