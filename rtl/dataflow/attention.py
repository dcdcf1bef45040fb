"""A multi-head attention node of the dataflow top: ``heads`` instances of the registry kernel
``attention-head`` (:class:`rtl.common.attention_head.AttentionHead`, one lane each) between
code streams, with the static output requantizer of the dialect op ``IntAttention``.

Streams (one signed int8 code per beat, tokens × features row-major, head ``h`` on features
``[h·d, (h+1)·d)``): ``k`` and ``v`` (paired beat for beat), ``q``; output ``y``.

Per sequence of ``T`` tokens: a ``clear`` to every head; then the ``T·KV·d`` paired k/v codes,
each routed as a kv beat to the heads that read the kv head of its feature (grouped-query
attention: kv head ``j`` feeds heads ``j·rep … (j+1)·rep − 1``, a beat taken when all of them
are ready; ``KV = heads`` without grouping); then the ``T·D`` q codes, routed as q beats to
the head of their feature (a head takes the beats of its next query once its current query
has answered, so head ``h`` runs ``h·d`` cycles behind head 0). Causal: the heads' operation
stream is ``kv_0, q_0, kv_1, q_1, …`` (a query attends to every cached token), so the router
alternates one token of k/v (``KV·d`` beats) and one token of q (``D`` beats); the kv beats
of token ``t + 1`` for a group wait until its heads have answered query ``t``. The heads'
output beats are
merged in the same order, each ``o`` code rescaled by its row's ``amax`` to
``sat(round_half_even(o · amax · out_mult · 2**-out_shift))`` in one register stage.
Golden: :class:`hwsim.compile.dialect.IntAttention`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.golden.common import attention_head as spec
from hwsim.golden.common.attention_head import OP_CLEAR, OP_KV, OP_Q
from rtl.common.attention_head import AttentionHead
from rtl.dataflow.glue import _sig

__all__ = ["AttentionNode"]


class AttentionNode(wiring.Component):
    """``heads`` attention heads of ``params`` (``lanes`` = 1, ``max_len`` = tokens) with
    constant score scale ``(score_mult, score_shift)`` and output scale ``(out_mult,
    out_shift)``; ``causal``: interleaved ``kv_t, q_t`` per token; ``kv_heads`` (0: ``heads``)
    key / value heads, each beat of kv head ``j`` going to heads ``j·rep … (j+1)·rep − 1`` at
    once (``rep = heads / kv_heads``); see the module docstring."""

    def __init__(self, params: spec.AttentionParams, heads: int, score_mult: int,
                 score_shift: int, out_mult: int, out_shift: int, causal: bool = False,
                 kv_heads: int = 0):
        kv_heads = kv_heads or heads
        assert params.lanes == 1 and heads >= 1 and out_shift >= 1 and heads % kv_heads == 0
        self.params, self.heads, self.kv_heads, self.causal = params, heads, kv_heads, causal
        self.score = (score_mult, score_shift)
        self.out_scale = (out_mult, out_shift)
        super().__init__({"q": In(_sig(True, 1)), "k": In(_sig(True, 1)),
                          "v": In(_sig(True, 1)), "y": Out(_sig(True, 1))})

    def elaborate(self, platform):
        m = Module()
        p, H, KV = self.params, self.heads, self.kv_heads
        T, d = p.max_len, p.head_dim
        rep = H // KV
        heads = []
        for h in range(H):
            head = AttentionHead(p)
            m.submodules[f"head{h}"] = head
            m.d.comb += [head.score_mult.eq(self.score[0]), head.score_shift.eq(self.score[1])]
            heads.append(head)

        # ---- input router ---------------------------------------------------------------
        t = Signal(range(T))
        sel = Signal(range(H))        # head (Q) or kv head (KV) of the current feature
        fh = Signal(range(d))         # feature within the head
        cleared = Signal(H)
        done_t = t == T - 1

        def step(n):
            """The next feature of a vector of ``n`` heads; true on its last feature."""
            last = (fh == d - 1) & (sel == n - 1)
            with m.If(fh == d - 1):
                m.d.sync += [fh.eq(0), sel.eq(Mux(sel == n - 1, 0, sel + 1))]
            with m.Else():
                m.d.sync += fh.eq(fh + 1)
            return last

        with m.FSM():
            with m.State("CLEAR"):
                for h, head in enumerate(heads):
                    m.d.comb += [head.inp.valid.eq(~cleared[h]),
                                 head.inp.payload.op.eq(OP_CLEAR)]
                    with m.If(head.inp.valid & head.inp.ready):
                        m.d.sync += cleared[h].eq(1)
                with m.If(cleared.all()):
                    m.d.sync += [cleared.eq(0), t.eq(0), sel.eq(0), fh.eq(0)]
                    m.next = "KV"
            with m.State("KV"):
                pair = self.k.valid & self.v.valid
                for j in range(KV):
                    group = heads[j * rep:(j + 1) * rep]
                    ready = Cat(*(hd.inp.ready for hd in group)).all()
                    for head in group:
                        m.d.comb += [head.inp.valid.eq(pair & (sel == j) & ready),
                                     head.inp.payload.op.eq(OP_KV),
                                     head.inp.payload.a[0].eq(self.k.payload[0]),
                                     head.inp.payload.b[0].eq(self.v.payload[0])]
                    with m.If(sel == j):
                        m.d.comb += [self.k.ready.eq(pair & ready),
                                     self.v.ready.eq(pair & ready)]
                with m.If(self.k.valid & self.k.ready):
                    with m.If(step(KV)):
                        if self.causal:       # one token of k, v, then its q
                            m.next = "Q"
                        else:                 # all tokens of k, v, then all q
                            m.d.sync += t.eq(Mux(done_t, 0, t + 1))
                            with m.If(done_t):
                                m.next = "Q"
            with m.State("Q"):
                for h, head in enumerate(heads):
                    m.d.comb += [head.inp.valid.eq(self.q.valid & (sel == h)),
                                 head.inp.payload.op.eq(OP_Q),
                                 head.inp.payload.a[0].eq(self.q.payload[0])]
                    with m.If(sel == h):
                        m.d.comb += self.q.ready.eq(head.inp.ready)
                with m.If(self.q.valid & self.q.ready):
                    with m.If(step(H)):
                        m.d.sync += t.eq(Mux(done_t, 0, t + 1))
                        with m.If(done_t):
                            m.next = "CLEAR"
                        if self.causal:
                            with m.Else():
                                m.next = "KV"

        # ---- output merger and requantizer ------------------------------------------------
        osel = Signal(range(H))
        ofh = Signal(range(d))
        advance = ~self.y.valid | self.y.ready
        o = Signal(signed(8))
        amax = Signal(p.av_acc_width)
        valid = Signal()
        for h, head in enumerate(heads):
            m.d.comb += head.out.ready.eq(advance & (osel == h))
            with m.If(osel == h):
                m.d.comb += [o.eq(head.out.payload.o[0]), amax.eq(head.out.payload.amax),
                             valid.eq(head.out.valid)]
        M, S = self.out_scale
        prod = Signal(signed(8 + p.av_acc_width + 1 + max(1, M.bit_length()) + 1))
        m.d.comb += prod.eq(o * amax * Const(M))
        q = prod >> S                                 # floor
        rem = prod[:S]
        half = 1 << (S - 1)
        up = (rem > half) | ((rem == half) & q[0])
        r = Signal(signed(prod.shape().width - S + 1))
        m.d.comb += r.eq(q + up)
        with m.If(advance):
            m.d.sync += self.y.valid.eq(valid)
            with m.If(r > 127):
                m.d.sync += self.y.payload[0].eq(127)
            with m.Elif(r < -128):
                m.d.sync += self.y.payload[0].eq(-128)
            with m.Else():
                m.d.sync += self.y.payload[0].eq(r)
        with m.If(advance & valid):
            with m.If(ofh == d - 1):
                m.d.sync += [ofh.eq(0), osel.eq(osel + 1)]
                with m.If(osel == H - 1):
                    m.d.sync += osel.eq(0)
            with m.Else():
                m.d.sync += ofh.eq(ofh + 1)
        return m
