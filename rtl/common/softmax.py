"""The exponential phase of the attention head's integer softmax: ``exp_lanes`` scores per
cycle through shift-and-LUT ``2**-x`` units, the exponentials stored and their row sum kept.

Specification: :mod:`hwsim.golden.common.softmax_int` (``exp_lut``, ``log2e_code``, the
exponential and the sum). This module only builds the hardware. The rest of the softmax is
timed by the head: the reciprocal of the sum (:class:`rtl.common.recip.Reciprocal`, which the
head shares with the output requantizer's absmax) and the normalization to probability codes,
fused into the A·V stream (:class:`rtl.common.av_engine.AvEngine`).
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from hwsim.golden.common import softmax_int as sm
from quant.qtype import Rounding
from rtl.common import adder_tree, comb_signal, round_shift
from rtl.common.booth import const_multiply

__all__ = ["SoftmaxExp"]


class SoftmaxExp(wiring.Component):
    """Exponentials of one query's ``L`` scores, one score word (``E = exp_lanes`` scores) per
    ``issue`` cycle, in three stages:

    1. the word read from the score memory (``s_addr`` → ``s_data``, synchronous); each score's
       distance to the row max times ``log2(e)`` (a constant multiply), rounded to the exponent
       fixed point;
    2. its fraction looks up the ``2**-frac`` table, its integer part shifts the entry (round
       half up; beyond ``exp_frac + 1`` the exponential is 0); lanes past the ``L``-th score
       are 0;
    3. the word is written to the exponential memory and added to the row sum.

    ``last`` is high while the word issued is the query's last (the head stops issuing);
    ``done`` marks the cycle that word is stored, 3 cycles later (``sum`` is final from the
    next).

    Parameters
    ----------
    params : AttentionParams

    Members
    -------
    start : ``In(1)``; length : ``In(range(max_len + 1))``
        A query of ``length`` scores starts: ``length`` is sampled, the word count and the sum
        restart. Not while a query's exponentials are in flight.
    issue : ``In(1)``
        Issue the next score word this cycle.
    last : ``Out(1)``
        The word issued now is the query's last (``≤ E`` scores left).
    row_max : ``In(signed(score_width))``
        The query's row max, held while words are in flight.
    s_addr : ``Out(range(⌈max_len/E⌉))``; s_data : ``In(unsigned(score_width·E))``
        Score memory read (the address of the word to issue; its data one cycle later).
    sum : ``Out(unsigned(sum_width(max_len)))``
        The row sum of the exponentials stored since ``start``.
    rd_addr : ``In(range(⌈max_len/E⌉))``; rd_data : ``Out(unsigned(exp_width·E))``
        Exponential memory read port (synchronous), lane 0 lowest.
    done : ``Out(1)``
        The query's last word is stored this cycle.
    """

    def __init__(self, params: spec.AttentionParams):
        if not isinstance(params, spec.AttentionParams):
            self._MustUse__silence = True
            raise HwsimError(f"SoftmaxExp needs AttentionParams, not {type(params).__name__}")
        self.params = p = params
        self.words = -(-p.max_len // p.exp_lanes)
        sp = p.softmax
        super().__init__({
            "start": In(1),
            "length": In(range(p.max_len + 1)),
            "issue": In(1),
            "last": Out(1),
            "row_max": In(signed(p.score.width)),
            "s_addr": Out(range(self.words)),
            "s_data": In(unsigned(p.score.width * p.exp_lanes)),
            "sum": Out(unsigned(sp.sum_width(p.max_len))),
            "rd_addr": In(range(self.words)),
            "rd_data": Out(unsigned(sp.exp_width * p.exp_lanes)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        sp = p.softmax
        m = Module()
        E, M, NW = p.exp_lanes, p.max_len, self.words
        sw, ew = p.score.width, sp.exp_width

        emem = Memory(shape=unsigned(ew * E), depth=NW, init=[])
        lut = Memory(shape=unsigned(ew), depth=1 << p.lut_bits,
                     init=[int(x) for x in sm.exp_lut(sp)])
        m.submodules.emem, m.submodules.lut = emem, lut
        e_wr, e_rd = emem.write_port(), emem.read_port()
        lut_rd = [lut.read_port(domain="comb") for _ in range(E)]
        m.d.comb += [e_rd.addr.eq(self.rd_addr), self.rd_data.eq(e_rd.data)]

        erem = Signal(range(M + 1))          # scores left to issue
        ex_w = Signal(range(NW))             # next score word
        e1_valid, e1_end, e2_valid, e2_end, e3_valid, e3_end = (Signal() for _ in range(6))
        e1_rem = Signal(range(M + 1))
        e1_w, e2_w, e3_w = (Signal(range(NW)) for _ in range(3))
        e2_mask = Signal(E)
        ssum = self.sum

        m.d.comb += [self.s_addr.eq(ex_w), self.last.eq(erem <= E),
                     self.done.eq(e3_valid & e3_end)]
        with m.If(self.start):
            m.d.sync += [ssum.eq(0), ex_w.eq(0), erem.eq(self.length)]
        m.d.sync += e1_valid.eq(self.issue)
        with m.If(self.issue):
            m.d.sync += [e1_end.eq(self.last), e1_rem.eq(erem), e1_w.eq(ex_w),
                         erem.eq(erem - E), ex_w.eq(ex_w + 1)]

        fix_shift = sp.fix_frac - p.lut_bits
        l2e = sm.log2e_code(sp)
        e_regs = []
        m.d.sync += [e2_valid.eq(e1_valid), e2_end.eq(e1_end), e2_w.eq(e1_w),
                     e3_valid.eq(e2_valid), e3_end.eq(e2_end), e3_w.eq(e2_w)]
        for l in range(E):
            x = self.s_data[sw * l:sw * (l + 1)].as_signed()
            d = Signal(sw, name=f"diff{l}")
            m.d.comb += d.eq(self.row_max - x)
            t_width = ((1 << sw) * l2e).bit_length() + 1
            t = comb_signal(m, const_multiply(d, l2e), signed(t_width + 1), f"expo{l}")
            if fix_shift >= 0:
                u_val = round_shift(t, Const(fix_shift), Rounding.HALF_UP)
            else:
                u_val = t << -fix_shift
            u = Signal(unsigned(t_width + max(-fix_shift, 0)), name=f"u{l}")
            m.d.sync += u.eq(u_val)
            n = u >> p.lut_bits
            m.d.comb += lut_rd[l].addr.eq(u[:p.lut_bits])
            big = n > p.exp_frac + 1
            nsh = Signal(range(p.exp_frac + 3), name=f"nsh{l}")
            m.d.comb += nsh.eq(Mux(big, p.exp_frac + 2, n))
            ev = comb_signal(m, round_shift(Cat(lut_rd[l].data, Const(0, 1)).as_signed(), nsh,
                                            Rounding.HALF_UP), signed(ew + 2), f"exp_round{l}")
            e = Signal(ew, name=f"exp{l}")
            m.d.sync += e.eq(Mux(big | ~e2_mask[l], 0, ev))
            e_regs.append(e)
            m.d.sync += e2_mask[l].eq(e1_rem > l)
        m.d.comb += [e_wr.addr.eq(e3_w), e_wr.data.eq(Cat(*e_regs)), e_wr.en.eq(e3_valid)]
        with m.If(e3_valid):
            m.d.sync += ssum.eq(ssum + adder_tree(e_regs))
        return m
