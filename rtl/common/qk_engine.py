"""The QKᵀ half of the attention head's int8 engine: lane products → exact score → score
requantizer → score memory and row max.

Specification: :func:`hwsim.golden.common.attention_head.attention_head` (the score step) and
:func:`hwsim.golden.common.int8_matmul.int8_matmul`. This module only builds the hardware; the
lane multipliers are the head's (shared with A·V, :class:`rtl.common.av_engine.AvEngine`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from rtl.common import adder_tree, comb_signal, round_shift, saturate
from rtl.common.booth import multiply

__all__ = ["PRODUCT_WIDTH", "QkEngine"]

PRODUCT_WIDTH = 17
"""Bits of one lane product of the shared multiplier array (int9 × int8)."""


class QkEngine(wiring.Component):
    """Scores of one query, one (token, chunk) product set per cycle, in four stages:

    1. the ``lanes`` products (issued with ``valid``) through an adder tree into the exact
       accumulator (restarted by ``first``);
    2. after a token's ``last`` chunk, the accumulator times ``mult`` (``"dsp"`` or ``"booth"``
       multiplier, ``params.multiplier``);
    3. rounded by ``shift`` (``params.score.rounding``) and saturated to the score format;
    4. written to lane ``t mod E`` of score word ``t // E`` (``E = exp_lanes``) and into the
       running row max.

    A token's score is thus stored 3 cycles after its last chunk's products are presented;
    ``done`` marks the cycle the query's last score (presented with ``end``) is stored.

    Parameters
    ----------
    params : AttentionParams

    Members
    -------
    products : ``In(ArrayLayout(signed(17), lanes))``
        The lane products ``q[c·lanes + l] · k[t, c·lanes + l]`` of the issued (token, chunk).
    valid, first, last, end : ``In(1)``
        A product set is issued; it is a token's first chunk; its last chunk; the query's last
        product set.
    start : ``In(1)``
        A query starts: ``mult`` and ``shift`` are sampled, the score position and the row max
        restart. Not while a query's scores are in flight.
    mult : ``In(unsigned(mult_bits))``, shift : ``In(unsigned(shift_bits))``
        The folded score requantization, sampled with ``start``.
    rd_addr : ``In(range(⌈max_len/E⌉))``, rd_data : ``Out(unsigned(score_width·E))``
        Score memory read port (synchronous: data one cycle after the address), lane 0 lowest.
    row_max : ``Out(signed(score_width))``
        The largest score stored since ``start``.
    done : ``Out(1)``
        The query's last score is stored this cycle (``row_max`` is final from the next).
    """

    def __init__(self, params: spec.AttentionParams):
        if not isinstance(params, spec.AttentionParams):
            self._MustUse__silence = True
            raise HwsimError(f"QkEngine needs AttentionParams, not {type(params).__name__}")
        self.params = p = params
        self.words = -(-p.max_len // p.exp_lanes)
        super().__init__({
            "products": In(data.ArrayLayout(signed(PRODUCT_WIDTH), p.lanes)),
            "valid": In(1), "first": In(1), "last": In(1), "end": In(1),
            "start": In(1),
            "mult": In(unsigned(p.mult_bits)),
            "shift": In(unsigned(p.shift_bits)),
            "rd_addr": In(range(self.words)),
            "rd_data": Out(unsigned(p.score.width * p.exp_lanes)),
            "row_max": Out(signed(p.score.width)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        E, sw, style = p.exp_lanes, p.score.width, p.multiplier
        smem = Memory(shape=unsigned(sw * E), depth=self.words, init=[])
        m.submodules.smem = smem
        s_wr, s_rd = smem.write_port(granularity=sw), smem.read_port()
        m.d.comb += [s_rd.addr.eq(self.rd_addr), self.rd_data.eq(s_rd.data)]

        cur_mult = Signal.like(self.mult)
        cur_shift = Signal.like(self.shift)
        s2_valid, s2_end = Signal(), Signal()
        s3_valid, s3_end = Signal(), Signal()
        s4_valid, s4_end = Signal(), Signal()
        qk_acc = Signal(signed(p.qk_acc_width))
        s3_prod = Signal(signed(p.qk_acc_width + p.mult_bits + 1))
        s4_score = Signal(signed(sw))
        sc_word = Signal(range(self.words))
        sc_lane = Signal(range(E))
        first_score = Signal()
        row_max = self.row_max

        with m.If(self.start):
            m.d.sync += [cur_mult.eq(self.mult), cur_shift.eq(self.shift), first_score.eq(1),
                         sc_word.eq(0), sc_lane.eq(0)]

        tree = Signal(signed(p.qk_acc_width))
        m.d.comb += tree.eq(adder_tree(list(self.products)))
        with m.If(self.valid):
            m.d.sync += qk_acc.eq(Mux(self.first, tree, qk_acc + tree))
        m.d.sync += [s2_valid.eq(self.valid & self.last), s2_end.eq(self.end),
                     s3_valid.eq(s2_valid), s3_end.eq(s2_end),
                     s3_prod.eq(comb_signal(m, multiply(qk_acc, cur_mult, style), s3_prod.shape(),
                                            "score_prod")),
                     s4_valid.eq(s3_valid), s4_end.eq(s3_end)]
        s_round = comb_signal(m, round_shift(s3_prod, cur_shift, p.score.rounding),
                              signed(len(s3_prod) + 1), "score_round")
        m.d.sync += s4_score.eq(comb_signal(m, saturate(s_round, p.score), signed(sw), "score_sat"))
        m.d.comb += [s_wr.addr.eq(sc_word), s_wr.data.eq(s4_score.as_unsigned().replicate(E)),
                     self.done.eq(s4_valid & s4_end)]
        with m.If(s4_valid):
            m.d.comb += s_wr.en.eq(1 << sc_lane)
            m.d.sync += [row_max.eq(Mux(first_score | (s4_score > row_max), s4_score, row_max)),
                         first_score.eq(0),
                         sc_lane.eq(Mux(sc_lane == E - 1, 0, sc_lane + 1)),
                         sc_word.eq(Mux(sc_lane == E - 1, sc_word + 1, sc_word))]
        return m
