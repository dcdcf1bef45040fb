"""The attention head's output requantizer: the buffered context row, scaled by the reciprocal
of its absmax, to ``C`` beats of output codes.

Specification: :func:`hwsim.golden.common.attention_head.attention_head` (the absmax
requantization of the context). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from rtl.common import comb_signal, round_shift, saturate
from rtl.common.booth import const_multiply, multiply

__all__ = ["OutRequant", "out_layout"]


def out_layout(params: spec.AttentionParams) -> data.StructLayout:
    """One output beat: ``o`` (``lanes`` output codes, lane 0 lowest) and the row's ``amax``."""
    return data.StructLayout({
        "o": data.ArrayLayout(signed(params.out.width), params.lanes),
        "amax": unsigned(params.av_acc_width),
    })


class OutRequant(wiring.Component):
    """``C`` output beats per ``start``: for group ``g``, each lane's accumulator ``acc``
    becomes ``sat(round(acc · r · max_code / 2**k))`` in the output format (``r``, ``k``: the
    reciprocal of the absmax, :class:`rtl.common.recip.Reciprocal`; ``r = 0`` answers zeros).

    Pipeline: the buffer word is read in the issue cycle (``rd_addr``, ``rd_en``), the codes
    are computed from its data in the next and registered into ``out`` with ``amax``. The first
    beat is valid 3 cycles after ``start``; back-pressure on ``out`` stalls the whole pipeline
    (``rd_en`` low).

    Parameters
    ----------
    params : AttentionParams

    Members
    -------
    start : ``In(1)``; r : ``In(unsigned(recip_bits + 1))``; k : ``In(range(rw + recip_bits))``
        Start the ``C`` beats with this scale (sampled with ``start``; ``rw``: the reciprocal's
        input width). Not while beats are pending.
    rd_addr : ``Out(range(C))``; rd_en : ``Out(1)``; rd_data : ``In(unsigned(av_acc_width·lanes))``
        The accumulator buffer's read port (synchronous, enabled), lane 0 lowest.
    amax : ``In(unsigned(av_acc_width))``
        The row's absmax, copied into every beat.
    out : ``Out(stream.Signature(out_layout(params)))``
        The output beats.
    done : ``Out(1)``
        The last beat is taken this cycle.
    """

    def __init__(self, params: spec.AttentionParams):
        if not isinstance(params, spec.AttentionParams):
            self._MustUse__silence = True
            raise HwsimError(f"OutRequant needs AttentionParams, not {type(params).__name__}")
        self.params = p = params
        self.recip_width = max(p.softmax.sum_width(p.max_len), p.av_acc_width)
        super().__init__({
            "start": In(1),
            "r": In(unsigned(p.recip_bits + 1)),
            "k": In(range(self.recip_width + p.recip_bits)),
            "rd_addr": Out(range(p.chunks)),
            "rd_en": Out(1),
            "rd_data": In(unsigned(p.av_acc_width * p.lanes)),
            "amax": In(unsigned(p.av_acc_width)),
            "out": Out(stream.Signature(out_layout(p))),
            "done": Out(1),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, LN, aw, style = p.chunks, p.lanes, p.av_acc_width, p.multiplier
        out_r = Signal(p.recip_bits + 1)
        out_k = Signal(range(self.recip_width + p.recip_bits))
        og = Signal(range(C))                # output group to issue
        out_issue = Signal()                 # output words still to issue
        o1_valid, o1_last, o1_last_out = Signal(), Signal(), Signal()
        with m.If(self.start):
            m.d.sync += [out_r.eq(self.r), out_k.eq(self.k), og.eq(0), out_issue.eq(1)]

        pw = aw + p.recip_bits + 2
        sw_out = pw + p.out.max_code.bit_length() + 1
        codes = []
        for l in range(LN):
            acc = self.rd_data[aw * l:aw * (l + 1)].as_signed()
            prod = comb_signal(m, multiply(acc, out_r, style), signed(pw), f"out_prod{l}")
            scaled = comb_signal(m, const_multiply(prod, p.out.max_code), signed(sw_out),
                                 f"out_scaled{l}")
            rounded = comb_signal(m, round_shift(scaled, out_k, p.out.rounding),
                                  signed(sw_out + 1), f"out_round{l}")
            codes.append(comb_signal(m, saturate(rounded, p.out), signed(p.out.width),
                                     f"out_code{l}"))
        advance = Signal()
        m.d.comb += [advance.eq(~self.out.valid | self.out.ready),
                     self.rd_addr.eq(og), self.rd_en.eq(advance),
                     self.done.eq(self.out.valid & self.out.ready & o1_last_out)]
        with m.If(advance):
            m.d.sync += [o1_valid.eq(out_issue), o1_last.eq(out_issue & (og == C - 1)),
                         self.out.valid.eq(o1_valid), o1_last_out.eq(o1_last)]
            with m.If(out_issue):
                m.d.sync += og.eq(Mux(og == C - 1, 0, og + 1))
                with m.If(og == C - 1):
                    m.d.sync += out_issue.eq(0)
            with m.If(o1_valid):
                m.d.sync += [self.out.payload.o.eq(Cat(*codes)),
                             self.out.payload.amax.eq(self.amax)]
        return m
