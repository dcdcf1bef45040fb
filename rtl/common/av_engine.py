"""The A·V half of the attention head's int8 engine: each exponential normalized on the fly to
a probability code, its products with ``lanes`` V codes accumulated, the context row buffered
and its absmax tracked.

Specification: :func:`hwsim.golden.common.attention_head.attention_head` (the probability and
context steps), :mod:`hwsim.golden.common.softmax_int` (the normalization) and
:func:`hwsim.golden.common.int8_matmul.int8_matmul`. This module only builds the hardware; the
lane multipliers are the head's (shared with QKᵀ, :class:`rtl.common.qk_engine.QkEngine`).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from rtl.common import comb_signal, max_tree, round_shift, saturate
from rtl.common.booth import multiply
from rtl.common.qk_engine import PRODUCT_WIDTH

__all__ = ["AvEngine"]


class AvEngine(wiring.Component):
    """Context of one query, one (output group ``g``, token ``t``) per issue cycle, in four
    stages:

    1. issued: the exponential word of token ``t`` is read (by the head, at the address it
       issues with; ``exp_word`` the cycle after) and its ``lane`` selected;
    2. the exponential times the sum's reciprocal ``r`` (``params.multiplier``); the V word of
       (``t``, ``g``) is addressed (``v_addr``);
    3. rounded by ``k − prob.frac`` and saturated to the probability code ``prob``, which the
       head's multipliers take (``active``) with the V word; the ``lanes`` products
       accumulate (restarted by ``first``);
    4. after a group's ``last`` token: the ``lanes`` accumulators are written to word ``g`` of
       the accumulator buffer and their largest magnitude into the row absmax.

    ``done`` marks the cycle the query's last group (issued with ``end``) is buffered.

    Parameters
    ----------
    params : AttentionParams

    Members
    -------
    start : ``In(1)``
        A query starts: the absmax restarts.
    norm : ``In(1)``; r : ``In(unsigned(recip_bits + 1))``; k : ``In(range(rw + recip_bits))``
        The reciprocal of the exponential sum (:class:`rtl.common.recip.Reciprocal`, ``rw``
        its input width), sampled with ``norm``.
    valid, first, last, end : ``In(1)``
        Issue: a (group, token); the group's first token; its last; the query's last.
    lane : ``In(range(exp_lanes))``; group : ``In(range(C))``; v_issue : ``In(range(max_len·C))``
        The issued token's lane in its exponential word, the output group, the V word address.
    exp_word : ``In(unsigned(exp_width·exp_lanes))``
        The issued token's exponential word, one cycle after the issue.
    v_addr : ``Out(range(max_len·C))``
        The V word to read (synchronous; the head's V memory), one cycle after ``exp_word``.
    active : ``Out(1)``; prob : ``Out(unsigned(prob_width))``
        The head's multipliers compute ``prob · v`` this cycle (``v``: the V word read at
        ``v_addr``).
    products : ``In(ArrayLayout(signed(17), lanes))``
        Their products.
    rd_addr : ``In(range(C))``; rd_en : ``In(1)``; rd_data : ``Out(unsigned(av_acc_width·lanes))``
        Accumulator buffer read port (synchronous, enabled), lane 0 lowest, two's complement.
    amax : ``Out(unsigned(av_acc_width))``
        The largest ``|accumulator|`` buffered since ``start``.
    done : ``Out(1)``
        The query's last group is buffered this cycle.
    """

    def __init__(self, params: spec.AttentionParams):
        if not isinstance(params, spec.AttentionParams):
            self._MustUse__silence = True
            raise HwsimError(f"AvEngine needs AttentionParams, not {type(params).__name__}")
        self.params = p = params
        sp = p.softmax
        self.recip_width = max(sp.sum_width(p.max_len), p.av_acc_width)
        C, LN = p.chunks, p.lanes
        super().__init__({
            "start": In(1),
            "norm": In(1),
            "r": In(unsigned(p.recip_bits + 1)),
            "k": In(range(self.recip_width + p.recip_bits)),
            "valid": In(1), "first": In(1), "last": In(1), "end": In(1),
            "lane": In(range(p.exp_lanes)),
            "group": In(range(C)),
            "v_issue": In(range(p.max_len * C)),
            "exp_word": In(unsigned(sp.exp_width * p.exp_lanes)),
            "v_addr": Out(range(p.max_len * C)),
            "active": Out(1),
            "prob": Out(unsigned(p.prob.width)),
            "products": In(data.ArrayLayout(signed(PRODUCT_WIDTH), LN)),
            "rd_addr": In(range(C)),
            "rd_en": In(1),
            "rd_data": Out(unsigned(p.av_acc_width * LN)),
            "amax": Out(unsigned(p.av_acc_width)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, LN, aw, ew = p.chunks, p.lanes, p.av_acc_width, p.softmax.exp_width
        rw, style = self.recip_width, p.multiplier

        abuf = Memory(shape=unsigned(aw * LN), depth=C, init=[])
        m.submodules.abuf = abuf
        a_wr, a_rd = abuf.write_port(), abuf.read_port()
        m.d.comb += [a_rd.addr.eq(self.rd_addr), a_rd.en.eq(self.rd_en),
                     self.rd_data.eq(a_rd.data)]

        norm_r = Signal(p.recip_bits + 1)
        norm_sh = Signal(range(rw + p.recip_bits))
        with m.If(self.norm):
            m.d.sync += [norm_r.eq(self.r), norm_sh.eq(self.k - p.prob.frac)]

        a2_valid, a2_first, a2_last, a2_end = Signal(), Signal(), Signal(), Signal()
        a3_valid, a3_first, a3_last, a3_end = Signal(), Signal(), Signal(), Signal()
        a4_valid, a4_end = Signal(), Signal()
        a1_lane = Signal(range(p.exp_lanes))
        a1_g, a2_g, a3_g, a4_g = (Signal(range(C)) for _ in range(4))
        a1_va, a2_va = Signal(range(p.max_len * C)), Signal(range(p.max_len * C))
        a1_valid, a1_first, a1_last, a1_end = Signal(), Signal(), Signal(), Signal()
        a2_prod = Signal(ew + p.recip_bits + 1)
        a3_prob = Signal(p.prob.width)
        av_acc = [Signal(signed(aw), name=f"av_acc{l}") for l in range(LN)]
        amax = self.amax

        m.d.sync += a1_valid.eq(self.valid)
        with m.If(self.valid):
            m.d.sync += [a1_first.eq(self.first), a1_last.eq(self.last), a1_end.eq(self.end),
                         a1_lane.eq(self.lane), a1_g.eq(self.group), a1_va.eq(self.v_issue)]

        lane_e = Signal(ew)
        m.d.comb += [lane_e.eq(self.exp_word.word_select(a1_lane, ew)), self.v_addr.eq(a2_va),
                     self.active.eq(a3_valid), self.prob.eq(a3_prob),
                     self.done.eq(a4_valid & a4_end)]
        m.d.sync += [
            a2_valid.eq(a1_valid), a2_first.eq(a1_first), a2_last.eq(a1_last),
            a2_end.eq(a1_end), a2_g.eq(a1_g), a2_va.eq(a1_va),
            a2_prod.eq(comb_signal(m, multiply(lane_e, norm_r, style), a2_prod.shape(),
                                   "norm_prod")),
            a3_valid.eq(a2_valid), a3_first.eq(a2_first), a3_last.eq(a2_last),
            a3_end.eq(a2_end), a3_g.eq(a2_g),
            a3_prob.eq(comb_signal(m, saturate(comb_signal(m, round_shift(
                Cat(a2_prod, Const(0, 1)).as_signed(), norm_sh, p.prob.rounding),
                signed(len(a2_prod) + 2), "prob_round"), p.prob), p.prob.width, "prob_sat")),
            a4_valid.eq(a3_valid & a3_last), a4_end.eq(a3_end),
            a4_g.eq(a3_g),
        ]
        with m.If(a3_valid):
            for l in range(LN):
                prod = self.products[l]
                m.d.sync += av_acc[l].eq(Mux(a3_first, prod, av_acc[l] + prod))
        mags = []
        for l in range(LN):
            mag = Signal(aw, name=f"mag{l}")
            m.d.comb += mag.eq(Mux(av_acc[l] < 0, -av_acc[l], av_acc[l]))
            mags.append(mag)
        group_max = Signal(aw)
        m.d.comb += [group_max.eq(max_tree(mags)), a_wr.addr.eq(a4_g),
                     a_wr.data.eq(Cat(*[a.as_unsigned() for a in av_acc]))]
        with m.If(self.start):
            m.d.sync += amax.eq(0)
        with m.If(a4_valid):
            m.d.comb += a_wr.en.eq(1)
            with m.If(group_max > amax):
                m.d.sync += amax.eq(group_max)
        return m
