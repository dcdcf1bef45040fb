"""The TINT → Booth front end of a VitaLLM decode step: ternary q, k, v projections, RoPE and
the static per-head int8 requantization of one token.

Specification: :func:`hwsim.golden.vitallm.qkv_frontend.qkv_codes` (the layer's own
:func:`~hwsim.golden.vitallm.bitnet_layer.qkv_frontend`) and
:func:`~hwsim.golden.vitallm.qkv_frontend.qkv_frontend_cycles`.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import qkv_frontend as spec
from quant.qtype import INT8, Rounding
from rtl.common import round_shift, saturate
from rtl.vitallm.ternary_mvu import TernaryMVU

__all__ = ["QkvFrontend"]

_NAMES = ("wq", "wk", "wv")


class QkvFrontend(wiring.Component):
    """Three ternary MVUs (:class:`rtl.vitallm.ternary_mvu.TernaryMVU`, weights on chip) take the same
    int8 activation vector; their exact accumulators are stored; then one element per cycle
    goes through RoPE (``round(acc·cos + rot(acc)·sin)``, Q1.20 codes, half-even) for q and k,
    and the static requantizer ``sat(round(x · amax · M_h · 2**-S_h))`` of its head.

    Latency (no idle input, no back-pressure): ``latency(wq MVU) + 1 + (H + 2G)·d`` cycles from
    the first ``x`` beat to the last output code (:func:`hwsim.golden.vitallm.qkv_frontend.
    qkv_frontend_cycles`). Throughput: the next token's ``x`` is accepted as soon as the
    MVUs have issued this token's last rows, so its MVU pass overlaps this token's drain and
    output, and its codes follow once this token's last code is taken and its accumulators
    are full. Back-pressure on ``out`` holds the codes and, once the MVUs' pipelines are
    full, the next token.

    Members
    -------
    w : ``In(stream.Signature(unsigned(2·lanes)))``
        Weight words of wq, then wk, then wv (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`).
    x : ``In(stream.Signature(ArrayLayout(signed(8), lanes)))``, ``hidden/lanes`` beats.
    out : ``Out(stream.Signature(signed(8)))``
        ``(H + 2G)·d`` codes: q (head-major), k, v.
    amax : ``In(unsigned(24))``; cos, sin : ``In(ArrayLayout(signed(22), d))`` (the token's
        position); mults : ``In(ArrayLayout({m, s}, H + 2G))`` (q heads, k heads, v heads).
        Sampled with the token's first ``x`` beat (as the ternary MVU's ``M``/``S``) and
        held inside until its last code is taken: free at any other time, so back-to-back
        tokens may each have their own, changed as soon as the first beat is accepted. Two
        tokens' values are held (the token going out and the next); a third token's first
        beat waits until the first token's last code is taken. That happens only when a whole
        token fits in the MVUs' pipelines (``H·d ≤ 4``), where the token would have waited in
        the MVUs anyway: without back-pressure its codes leave on the same cycles.
    """

    def __init__(self, params: spec.QkvFrontendParams):
        if not isinstance(params, spec.QkvFrontendParams):
            self._MustUse__silence = True
            raise HwsimError(f"QkvFrontend needs QkvFrontendParams, not "
                             f"{type(params).__name__}")
        self.params = p = params
        self.mvus = {n: TernaryMVU(p.mvu(n)) for n in _NAMES}
        self.mult_layout = data.StructLayout({"m": unsigned(lc.MULT_BITS), "s": unsigned(6)})
        rc = lc.ROPE_CODE.width
        super().__init__({
            "w": In(stream.Signature(unsigned(2 * p.lanes))),
            "x": In(stream.Signature(data.ArrayLayout(signed(8), p.lanes))),
            "out": Out(stream.Signature(signed(8))),
            "amax": In(unsigned(spec.AMAX_BITS)),
            "cos": In(data.ArrayLayout(signed(rc), p.head_dim)),
            "sin": In(data.ArrayLayout(signed(rc), p.head_dim)),
            "mults": In(data.ArrayLayout(self.mult_layout, p.heads + 2 * p.kv_heads)),
        })

    def elaborate(self, platform):
        p = self.params
        H, G, d = p.heads, p.kv_heads, p.head_dim
        m = Module()
        for n in _NAMES:
            m.submodules[n] = self.mvus[n]
        mv = [self.mvus[n] for n in _NAMES]

        # weights: wq's words, then wk's, then wv's, to their MVU
        words = [p.mvu(n).weight_depth for n in _NAMES]
        wcnt = Signal(range(sum(words) + 1))
        target = Signal(range(3))
        m.d.comb += target.eq(Mux(wcnt < words[0], 0, Mux(wcnt < words[0] + words[1], 1, 2)))
        for i, u in enumerate(mv):
            m.d.comb += [u.w.payload.eq(self.w.payload), u.w.valid.eq(self.w.valid & (target == i)),
                         u.mult.eq(1), u.shift.eq(0)]
        m.d.comb += self.w.ready.eq(Mux(target == 0, mv[0].w.ready,
                                        Mux(target == 1, mv[1].w.ready, mv[2].w.ready)))
        with m.If(self.w.valid & self.w.ready):
            m.d.sync += wcnt.eq(Mux(wcnt == sum(words) - 1, 0, wcnt + 1))

        # activations: one vector broadcast to the three MVUs
        C = p.hidden // p.lanes
        beat = Signal(range(max(C, 2)))
        first = Signal()
        m.d.comb += first.eq(beat == 0)
        # the token's amax, cos, sin, mults: sampled with its first x beat (pend), moved to the
        # set its codes are made with (act) once the previous token's last code is taken. A
        # third token's first beat waits while two tokens' sets are held (only when a whole
        # token fits in the MVUs' pipelines).
        side = data.StructLayout({"amax": self.amax.shape(), "cos": self.cos.shape(),
                                  "sin": self.sin.shape(), "mults": self.mults.shape()})
        pend, act = Signal(side), Signal(side)
        pend_ok, act_ok = Signal(), Signal()
        hold = Signal()
        m.d.comb += hold.eq(first & pend_ok & act_ok)
        all_ready = mv[0].x.ready & mv[1].x.ready & mv[2].x.ready & ~hold
        m.d.comb += self.x.ready.eq(all_ready)
        for u in mv:
            m.d.comb += [u.x.payload.eq(self.x.payload), u.x.valid.eq(self.x.valid & all_ready)]
        take = Signal()
        m.d.comb += take.eq(self.x.valid & all_ready)
        if C > 1:
            with m.If(take):
                m.d.sync += beat.eq(Mux(beat == C - 1, 0, beat + 1))

        # accumulators of the three projections
        rows = [p.rows(n) for n in _NAMES]
        accw = max(p.mvu(n).acc_width for n in _NAMES)
        acc = [[Signal(signed(accw), name=f"acc_{n}{j}") for j in range(r)]
               for n, r in zip(_NAMES, rows, strict=True)]
        cnt = [Signal(range(r + 1), name=f"cnt_{n}") for n, r in zip(_NAMES, rows, strict=True)]
        full = Signal()
        m.d.comb += full.eq((cnt[0] == rows[0]) & (cnt[1] == rows[1]) & (cnt[2] == rows[2]))
        clear = Signal()
        for u, a, c, r in zip(mv, acc, cnt, rows, strict=True):
            m.d.comb += u.y.ready.eq(c != r)
            with m.If(clear):
                m.d.sync += c.eq(0)
            with m.Elif(u.y.valid & u.y.ready):
                m.d.sync += c.eq(c + 1)
                with m.Switch(c):
                    for j in range(r):
                        with m.Case(j):
                            m.d.sync += a[j].eq(u.y.payload)

        with m.If(clear):
            m.d.sync += act_ok.eq(0)
        with m.If(pend_ok & (~act_ok | clear)):
            m.d.sync += [act.eq(pend), act_ok.eq(1), pend_ok.eq(0)]
        with m.If(take & first):
            m.d.sync += [pend.amax.eq(self.amax), pend.cos.eq(self.cos), pend.sin.eq(self.sin),
                         pend.mults.eq(self.mults), pend_ok.eq(1)]

        # one element per cycle: RoPE (q, k) and the static requantizer
        N = p.elements
        e = Signal(range(N))
        val = Signal(signed(accw))
        rot = Signal(signed(accw + 1))
        cs = Signal(signed(lc.ROPE_CODE.width))
        sn = Signal(signed(lc.ROPE_CODE.width))
        use_rope = Signal()
        mult = Signal(self.mult_layout)
        half = d // 2
        flat = [("q", h, i) for h in range(H) for i in range(d)] + \
            [("k", g, i) for g in range(G) for i in range(d)] + \
            [("v", g, i) for g in range(G) for i in range(d)]
        src = {"q": acc[0], "k": acc[1], "v": acc[2]}
        head0 = {"q": 0, "k": H, "v": H + G}
        with m.Switch(e):
            for idx, (t, h, i) in enumerate(flat):
                with m.Case(idx):
                    a = src[t]
                    m.d.comb += [val.eq(a[h * d + i]), mult.eq(act.mults[head0[t] + h])]
                    if t != "v":
                        partner = a[h * d + i + half] if i < half else a[h * d + i - half]
                        m.d.comb += [rot.eq(-partner if i < half else partner),
                                     cs.eq(act.cos[i]), sn.eq(act.sin[i]), use_rope.eq(1)]
        roped = Signal(signed(accw + 2))
        m.d.comb += roped.eq(Mux(use_rope, round_shift(val * cs + rot * sn,
                                                       Const(lc.ROPE_FRAC, 5),
                                                       Rounding.HALF_EVEN), val))
        # amax and M are non-negative: zero-extended into signed signals before the products
        amax_s = Signal(signed(spec.AMAX_BITS + 1))
        m_s = Signal(signed(lc.MULT_BITS + 1))
        m.d.comb += [amax_s.eq(act.amax), m_s.eq(mult.m)]
        scaled = Signal(signed(accw + 2 + spec.AMAX_BITS + 1 + lc.MULT_BITS + 1))
        m.d.comb += scaled.eq(roped * amax_s * m_s)
        m.d.comb += self.out.payload.eq(saturate(round_shift(scaled, mult.s, INT8.rounding), INT8))

        with m.FSM():
            with m.State("COLLECT"):
                with m.If(full):
                    m.d.sync += e.eq(0)
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += self.out.valid.eq(1)
                with m.If(self.out.ready):
                    m.d.sync += e.eq(e + 1)
                    with m.If(e == N - 1):
                        m.d.comb += clear.eq(1)
                        m.next = "COLLECT"
        return m
