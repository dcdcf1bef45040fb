"""Attention head: KV cache, int8 QKᵀ / A·V engine, integer softmax, absmax requantizer.

Specification: :mod:`hwsim.golden.common.attention_head` (golden function, operation stream, cycle
formulas), :mod:`hwsim.golden.common.softmax_int` and :mod:`hwsim.golden.common.int8_matmul`. This module only
builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from hwsim.golden.common import softmax_int as sm
from quant.qtype import Rounding
from rtl.common import adder_tree, max_tree, round_shift, saturate
from rtl.common.booth import const_multiply, multiply
from rtl.common.recip import Reciprocal

__all__ = ["AttentionHead"]


def _sig(m: Module, value, shape, name: str) -> Signal:
    """``value`` through a named comb signal: keeps expression trees shallow (and readable in
    waveforms)."""
    sig = Signal(shape, name=name)
    m.d.comb += sig.eq(value)
    return sig


class AttentionHead(wiring.Component):
    """One attention head with its KV cache, streaming decode steps and prefills.

    The input is one stream of operations (:func:`hwsim.golden.common.attention_head.op_words`): a
    ``kv`` operation (``C = head_dim/lanes`` beats of ``lanes`` k and v codes) appends a token
    to the cache, a ``q`` operation (``C`` beats) runs a query against every cached token, a
    ``clear`` beat empties the cache. A query runs in phases on one array of ``lanes``
    multipliers (``"dsp"``: plain ``a * b``; ``"booth"``: radix-4 Booth, no DSP):

    1. QKᵀ: one (token, chunk) per cycle, adder tree, exact accumulator, score requantizer
       (``score_mult · 2**-score_shift``), score memory and running row max;
    2. exponentials: ``exp_lanes`` scores per cycle through the shift-and-LUT ``2**-x`` units,
       the row sum accumulated, the exponentials stored;
    3. reciprocal of the sum (restoring divider, :class:`rtl.common.recip.Reciprocal`);
    4. A·V: one (chunk, token) per cycle, each exponential normalized on the fly to a
       probability code and multiplied with ``lanes`` V codes into ``lanes`` accumulators;
       the row absmax is tracked;
    5. reciprocal of the absmax, then ``C`` output words through the absmax requantizer.

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
        self.out_layout = data.StructLayout({
            "o": data.ArrayLayout(signed(p.out.width), p.lanes),
            "amax": unsigned(p.av_acc_width),
        })
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
        sp = p.softmax
        m = Module()
        C, E, M, LN = p.chunks, p.exp_lanes, p.max_len, p.lanes
        NW = -(-M // E)
        sw, ew, aw = p.score.width, sp.exp_width, p.av_acc_width
        rw = max(sp.sum_width(M), aw)  # reciprocal input width
        style = p.multiplier

        # ---- memories -----------------------------------------------------------------------
        kmem = Memory(shape=unsigned(8 * LN), depth=M * C, init=[])
        vmem = Memory(shape=unsigned(8 * LN), depth=M * C, init=[])
        qmem = Memory(shape=unsigned(8 * LN), depth=C, init=[])
        smem = Memory(shape=unsigned(sw * E), depth=NW, init=[])
        emem = Memory(shape=unsigned(ew * E), depth=NW, init=[])
        abuf = Memory(shape=unsigned(aw * LN), depth=C, init=[])
        lut = Memory(shape=unsigned(ew), depth=1 << p.lut_bits,
                     init=[int(x) for x in sm.exp_lut(sp)])
        m.submodules.kmem, m.submodules.vmem, m.submodules.qmem = kmem, vmem, qmem
        m.submodules.smem, m.submodules.emem, m.submodules.abuf = smem, emem, abuf
        m.submodules.lut = lut
        k_wr, k_rd = kmem.write_port(), kmem.read_port()
        v_wr, v_rd = vmem.write_port(), vmem.read_port()
        q_wr, q_rd = qmem.write_port(), qmem.read_port()
        s_wr, s_rd = smem.write_port(granularity=sw), smem.read_port()
        e_wr, e_rd = emem.write_port(), emem.read_port()
        a_wr, a_rd = abuf.write_port(), abuf.read_port()
        lut_rd = [lut.read_port(domain="comb") for _ in range(E)]
        m.submodules.recip = recip = Reciprocal(rw, p.recip_bits)

        # ---- registers ----------------------------------------------------------------------
        length = self.length
        waddr = Signal(range(M * C + 1))     # next K/V write address
        kv_c = Signal(range(C))
        q_c = Signal(range(C))
        L = Signal(range(M + 1))             # tokens this query attends to
        cur_mult = Signal.like(self.score_mult)
        cur_shift = Signal.like(self.score_shift)
        i = Signal(range(M))                 # token counter (QK, AV)
        c = Signal(range(C))                 # chunk (QK) / output group (AV)
        addr = Signal(range(M * C))          # K address (QK) / V address (AV)
        ew_addr = Signal(range(NW))          # exponential word, lane (AV)
        ew_lane = Signal(range(E))
        erem = Signal(range(M + 1))          # scores left (EXP)
        ex_w = Signal(range(NW))             # score word (EXP)
        started = Signal()                   # reciprocal started (RECIP_*)
        og = Signal(range(C))                # output group (OUT)
        out_issue = Signal()                 # output words still to issue (OUT)

        # QK pipeline: s1 memories → products → tree → accumulator; s2 requant multiply;
        # s3 round and saturate; s4 score memory and row max
        s1_valid, s1_first, s1_last, s1_end = Signal(), Signal(), Signal(), Signal()
        s2_valid, s2_end = Signal(), Signal()
        s3_valid, s3_end = Signal(), Signal()
        s4_valid, s4_end = Signal(), Signal()
        qk_acc = Signal(signed(p.qk_acc_width))
        s3_prod = Signal(signed(p.qk_acc_width + p.mult_bits + 1))
        s4_score = Signal(signed(sw))
        sc_word = Signal(range(NW))
        sc_lane = Signal(range(E))
        first_score = Signal()
        row_max = Signal(signed(sw))
        # EXP pipeline: e1 differences → exponent fixed point; e2 LUT and shift; e3 store, sum
        e1_valid, e1_end, e2_valid, e2_end, e3_valid, e3_end = (Signal() for _ in range(6))
        e1_rem = Signal(range(M + 1))
        e1_w, e2_w, e3_w = (Signal(range(NW)) for _ in range(3))
        e2_mask = Signal(E)
        ssum = Signal(sp.sum_width(M))
        # AV pipeline: a1 exponential × reciprocal; a2 probability code; a3 products into
        # the lane accumulators; a4 accumulator buffer and absmax
        a1_valid, a1_first, a1_last, a1_end = Signal(), Signal(), Signal(), Signal()
        a2_valid, a2_first, a2_last, a2_end = Signal(), Signal(), Signal(), Signal()
        a3_valid, a3_first, a3_last, a3_end = Signal(), Signal(), Signal(), Signal()
        a4_valid, a4_last, a4_end = Signal(), Signal(), Signal()
        a1_lane = Signal(range(E))
        a1_g, a2_g, a3_g, a4_g = (Signal(range(C)) for _ in range(4))
        a1_va, a2_va = Signal(range(M * C)), Signal(range(M * C))
        a2_prod = Signal(ew + p.recip_bits + 1)
        a3_prob = Signal(p.prob.width)
        norm_r = Signal(p.recip_bits + 1)
        norm_sh = Signal(range(rw + p.recip_bits))
        av_acc = [Signal(signed(aw), name=f"av_acc{l}") for l in range(LN)]
        amax = Signal(aw)
        # OUT pipeline: o1 accumulator buffer read → requantizer → output register
        o1_valid, o1_last, o1_last_out = Signal(), Signal(), Signal()
        out_r = Signal(p.recip_bits + 1)
        out_k = Signal(range(rw + p.recip_bits))

        payload = self.inp.payload
        m.d.comb += [
            k_wr.addr.eq(waddr), k_wr.data.eq(payload.a.as_value()),
            v_wr.addr.eq(waddr), v_wr.data.eq(payload.b.as_value()),
            q_wr.addr.eq(q_c), q_wr.data.eq(payload.a.as_value()),
            k_rd.addr.eq(addr), q_rd.addr.eq(c),
            s_rd.addr.eq(ex_w), e_rd.addr.eq(ew_addr), v_rd.addr.eq(a2_va),
        ]
        # issue flags fall unless the FSM's current state raises them (later statements win)
        m.d.sync += [s1_valid.eq(0), e1_valid.eq(0), a1_valid.eq(0)]

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
                            m.d.sync += [
                                L.eq(length), cur_mult.eq(self.score_mult),
                                cur_shift.eq(self.score_shift), i.eq(0), c.eq(0),
                                addr.eq(0), first_score.eq(1), sc_word.eq(0),
                                sc_lane.eq(0), ssum.eq(0), amax.eq(0), ex_w.eq(0),
                                erem.eq(length),
                            ]
                            with m.If(length == 0):
                                # nothing to attend to: answer zeros (r = 0), amax = 0
                                m.d.sync += [out_r.eq(0), out_k.eq(p.recip_bits), og.eq(0),
                                             out_issue.eq(1)]
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
            with m.State("QK_WAIT"), m.If(s4_valid & s4_end):
                m.next = "EXP"
            with m.State("EXP"):
                last = erem <= E
                m.d.sync += [e1_valid.eq(1), e1_end.eq(last), e1_rem.eq(erem), e1_w.eq(ex_w),
                             erem.eq(erem - E), ex_w.eq(ex_w + 1)]
                with m.If(last):
                    m.next = "EXP_WAIT"
            with m.State("EXP_WAIT"), m.If(e3_valid & e3_end):
                m.d.sync += started.eq(0)
                m.next = "RECIP_SUM"
            with m.State("RECIP_SUM"):
                m.d.comb += [recip.value.eq(ssum), recip.start.eq(~started)]
                m.d.sync += started.eq(1)
                with m.If(started & recip.done):
                    m.d.sync += [norm_r.eq(recip.r), norm_sh.eq(recip.k - p.prob.frac),
                                 i.eq(0), c.eq(0), addr.eq(0), ew_addr.eq(0), ew_lane.eq(0)]
                    m.next = "AV"
            with m.State("AV"):
                last_i, last_c, last_lane = i == L - 1, c == C - 1, ew_lane == E - 1
                m.d.sync += [a1_valid.eq(1), a1_first.eq(i == 0), a1_last.eq(last_i),
                             a1_end.eq(last_i & last_c), a1_lane.eq(ew_lane), a1_g.eq(c),
                             a1_va.eq(addr)]
                with m.If(last_i):
                    m.d.sync += [i.eq(0), c.eq(c + 1), addr.eq(c + 1), ew_addr.eq(0),
                                 ew_lane.eq(0)]
                    with m.If(last_c):
                        m.next = "AV_WAIT"
                with m.Else():
                    m.d.sync += [i.eq(i + 1), addr.eq(addr + C),
                                 ew_lane.eq(Mux(last_lane, 0, ew_lane + 1)),
                                 ew_addr.eq(Mux(last_lane, ew_addr + 1, ew_addr))]
            with m.State("AV_WAIT"), m.If(a4_valid & a4_end):
                m.d.sync += started.eq(0)
                m.next = "RECIP_MAX"
            with m.State("RECIP_MAX"):
                m.d.comb += [recip.value.eq(amax), recip.start.eq(~started)]
                m.d.sync += started.eq(1)
                with m.If(started & recip.done):
                    m.d.sync += [out_r.eq(recip.r), out_k.eq(recip.k), og.eq(0),
                                 out_issue.eq(1)]
                    m.next = "OUT"
            with m.State("OUT"), m.If(self.out.valid & self.out.ready & o1_last_out):
                m.next = "IDLE"
        m.d.comb += self.busy.eq(~self.inp.ready)

        # ---- shared multiplier array: QKᵀ (q × k) in s1, A·V (p × v) in a3 -----------------
        q_lanes = [q_rd.data[8 * l:8 * (l + 1)].as_signed() for l in range(LN)]
        k_lanes = [k_rd.data[8 * l:8 * (l + 1)].as_signed() for l in range(LN)]
        v_lanes = [v_rd.data[8 * l:8 * (l + 1)].as_signed() for l in range(LN)]
        prob9 = Cat(a3_prob, Const(0, 9 - p.prob.width)).as_signed()
        products = []
        for l in range(LN):
            a = Signal(signed(9), name=f"mul_a{l}")
            b = Signal(signed(8), name=f"mul_b{l}")
            prod = Signal(signed(17), name=f"prod{l}")
            m.d.comb += [a.eq(Mux(a3_valid, prob9, q_lanes[l])),
                         b.eq(Mux(a3_valid, v_lanes[l], k_lanes[l])),
                         prod.eq(multiply(a, b, style))]
            products.append(prod)

        # ---- QK pipeline --------------------------------------------------------------------
        tree = Signal(signed(p.qk_acc_width))
        m.d.comb += tree.eq(adder_tree(products))
        with m.If(s1_valid):
            m.d.sync += qk_acc.eq(Mux(s1_first, tree, qk_acc + tree))
        m.d.sync += [s2_valid.eq(s1_valid & s1_last), s2_end.eq(s1_end),
                     s3_valid.eq(s2_valid), s3_end.eq(s2_end),
                     s3_prod.eq(_sig(m, multiply(qk_acc, cur_mult, style), s3_prod.shape(),
                                     "score_prod")),
                     s4_valid.eq(s3_valid), s4_end.eq(s3_end)]
        s_round = _sig(m, round_shift(s3_prod, cur_shift, p.score.rounding),
                       signed(len(s3_prod) + 1), "score_round")
        m.d.sync += s4_score.eq(_sig(m, saturate(s_round, p.score), signed(sw), "score_sat"))
        m.d.comb += [s_wr.addr.eq(sc_word), s_wr.data.eq(s4_score.as_unsigned().replicate(E))]
        with m.If(s4_valid):
            m.d.comb += s_wr.en.eq(1 << sc_lane)
            m.d.sync += [row_max.eq(Mux(first_score | (s4_score > row_max), s4_score, row_max)),
                         first_score.eq(0),
                         sc_lane.eq(Mux(sc_lane == E - 1, 0, sc_lane + 1)),
                         sc_word.eq(Mux(sc_lane == E - 1, sc_word + 1, sc_word))]

        # ---- EXP pipeline -------------------------------------------------------------------
        fix_shift = sp.fix_frac - p.lut_bits
        l2e = sm.log2e_code(sp)
        u_regs, e_regs = [], []
        m.d.sync += [e2_valid.eq(e1_valid), e2_end.eq(e1_end), e2_w.eq(e1_w),
                     e3_valid.eq(e2_valid), e3_end.eq(e2_end), e3_w.eq(e2_w)]
        for l in range(E):
            x = s_rd.data[sw * l:sw * (l + 1)].as_signed()
            d = Signal(sw, name=f"diff{l}")
            m.d.comb += d.eq(row_max - x)
            t_width = ((1 << sw) * l2e).bit_length() + 1
            t = _sig(m, const_multiply(d, l2e), signed(t_width + 1), f"expo{l}")
            if fix_shift >= 0:
                u_val = round_shift(t, Const(fix_shift), Rounding.HALF_UP)
            else:
                u_val = t << -fix_shift
            u = Signal(unsigned(t_width + max(-fix_shift, 0)), name=f"u{l}")
            m.d.sync += u.eq(u_val)
            u_regs.append(u)
            n = u >> p.lut_bits
            m.d.comb += lut_rd[l].addr.eq(u[:p.lut_bits])
            big = n > p.exp_frac + 1
            nsh = Signal(range(p.exp_frac + 3), name=f"nsh{l}")
            m.d.comb += nsh.eq(Mux(big, p.exp_frac + 2, n))
            ev = _sig(m, round_shift(Cat(lut_rd[l].data, Const(0, 1)).as_signed(), nsh,
                                     Rounding.HALF_UP), signed(ew + 2), f"exp_round{l}")
            e = Signal(ew, name=f"exp{l}")
            m.d.sync += e.eq(Mux(big | ~e2_mask[l], 0, ev))
            e_regs.append(e)
            m.d.sync += e2_mask[l].eq(e1_rem > l)
        m.d.comb += [e_wr.addr.eq(e3_w), e_wr.data.eq(Cat(*e_regs)), e_wr.en.eq(e3_valid)]
        with m.If(e3_valid):
            m.d.sync += ssum.eq(ssum + adder_tree(e_regs))

        # ---- AV pipeline --------------------------------------------------------------------
        lane_e = Signal(ew)
        m.d.comb += lane_e.eq(e_rd.data.word_select(a1_lane, ew))
        m.d.sync += [
            a2_valid.eq(a1_valid), a2_first.eq(a1_first), a2_last.eq(a1_last),
            a2_end.eq(a1_end), a2_g.eq(a1_g), a2_va.eq(a1_va),
            a2_prod.eq(_sig(m, multiply(lane_e, norm_r, style), a2_prod.shape(), "norm_prod")),
            a3_valid.eq(a2_valid), a3_first.eq(a2_first), a3_last.eq(a2_last),
            a3_end.eq(a2_end), a3_g.eq(a2_g),
            a3_prob.eq(_sig(m, saturate(_sig(m, round_shift(
                Cat(a2_prod, Const(0, 1)).as_signed(), norm_sh, p.prob.rounding),
                signed(len(a2_prod) + 2), "prob_round"), p.prob), p.prob.width, "prob_sat")),
            a4_valid.eq(a3_valid & a3_last), a4_last.eq(a3_last), a4_end.eq(a3_end),
            a4_g.eq(a3_g),
        ]
        with m.If(a3_valid):
            for l in range(LN):
                m.d.sync += av_acc[l].eq(Mux(a3_first, products[l], av_acc[l] + products[l]))
        mags = []
        for l in range(LN):
            mag = Signal(aw, name=f"mag{l}")
            m.d.comb += mag.eq(Mux(av_acc[l] < 0, -av_acc[l], av_acc[l]))
            mags.append(mag)
        group_max = Signal(aw)
        m.d.comb += [group_max.eq(max_tree(mags)), a_wr.addr.eq(a4_g),
                     a_wr.data.eq(Cat(*[a.as_unsigned() for a in av_acc]))]
        with m.If(a4_valid):
            m.d.comb += a_wr.en.eq(1)
            with m.If(group_max > amax):
                m.d.sync += amax.eq(group_max)

        # ---- OUT pipeline (stalls on back-pressure) -----------------------------------------
        pw = aw + p.recip_bits + 2
        sw_out = pw + p.out.max_code.bit_length() + 1
        codes = []
        for l in range(LN):
            acc = a_rd.data[aw * l:aw * (l + 1)].as_signed()
            prod = _sig(m, multiply(acc, out_r, style), signed(pw), f"out_prod{l}")
            scaled = _sig(m, const_multiply(prod, p.out.max_code), signed(sw_out),
                          f"out_scaled{l}")
            rounded = _sig(m, round_shift(scaled, out_k, p.out.rounding), signed(sw_out + 1),
                           f"out_round{l}")
            codes.append(_sig(m, saturate(rounded, p.out), signed(p.out.width), f"out_code{l}"))
        advance = Signal()
        m.d.comb += [advance.eq(~self.out.valid | self.out.ready),
                     a_rd.addr.eq(og), a_rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += [o1_valid.eq(out_issue), o1_last.eq(out_issue & (og == C - 1)),
                         self.out.valid.eq(o1_valid), o1_last_out.eq(o1_last)]
            with m.If(out_issue):
                m.d.sync += og.eq(Mux(og == C - 1, 0, og + 1))
                with m.If(og == C - 1):
                    m.d.sync += out_issue.eq(0)
            with m.If(o1_valid):
                m.d.sync += [self.out.payload.o.eq(Cat(*codes)), self.out.payload.amax.eq(amax)]
        return m
