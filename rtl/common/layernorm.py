"""Integer LayerNorm unit: sums, variance, digit-by-digit square root, normalized reciprocal,
centred and scaled outputs with per-channel gains and offsets.

Specification: :mod:`hwsim.golden.common.layernorm_int` (golden function, cycle formula). This
module only builds the hardware; the square root and the reciprocal are the shared
:class:`rtl.common.isqrt.ISqrt` and :class:`rtl.common.recip.Reciprocal`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import layernorm_int as spec
from quant.qtype import Rounding
from rtl.common import adder_tree, round_shift, saturate
from rtl.common.isqrt import ISqrt
from rtl.common.recip import Reciprocal

__all__ = ["LayerNorm"]


class LayerNorm(wiring.Component):
    """``y = Γ·(x − μ)/σ + B`` on int8/uint8 codes, one whole vector at a time (two passes).

    Phases: ``C = n/lanes`` input beats (``S1 = Σx``, ``S2 = Σx²``; the codes are buffered),
    one cycle for ``v = (n·S2 − S1²)·4**G + eps_code``, ``S`` cycles of square root
    (:class:`~rtl.common.isqrt.ISqrt`), ``recip_bits + 2`` cycles of reciprocal
    (:class:`~rtl.common.recip.Reciprocal`), then ``C`` output beats: per lane
    ``round_half_even((c·Γ·r + B·2**u)·2**−(u+F))`` saturated, ``c = n·x − S1``, with the gains
    ``Γ`` and offsets ``B`` in a ROM baked in from the params.

    Latency and throughput: :func:`hwsim.golden.common.layernorm_int.latency_cycles` from the
    first input beat to the last output beat with no idle input and no back-pressure; the
    next vector's first beat is taken in the cycle after the last output beat
    (:func:`~hwsim.golden.common.layernorm_int.interval_cycles`). Back-pressure on ``y``
    stalls the output phase.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        ``C`` beats per vector, lane 0 lowest.
    y : ``Out(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        ``C`` beats per vector, in input order.
    """

    def __init__(self, params: spec.LayerNormParams):
        if not isinstance(params, spec.LayerNormParams):
            raise HwsimError(f"LayerNorm needs LayerNormParams, not {type(params).__name__}")
        self.params = p = params
        shape = signed(8) if p.in_signed else unsigned(8)
        oshape = signed(8) if p.out_signed else unsigned(8)
        super().__init__({
            "x": In(stream.Signature(data.ArrayLayout(shape, p.lanes))),
            "y": Out(stream.Signature(data.ArrayLayout(oshape, p.lanes))),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, LN, G, RB, F = p.chunks, p.lanes, p.sqrt_frac, p.recip_bits, p.frac
        GB, BB = p.gamma_bits, p.beta_bits

        buf = Memory(shape=unsigned(8 * LN), depth=C, init=[])
        m.submodules.buf = buf
        b_wr, b_rd = buf.write_port(), buf.read_port()
        rom_words = []
        for ch in range(C):
            word = 0
            for l in range(LN):
                i = ch * LN + l
                word |= (p.gamma[i] & ((1 << GB) - 1)) << (GB * l)
                word |= (p.beta[i] & ((1 << BB) - 1)) << (GB * LN + BB * l)
            rom_words.append(word)
        rom = Memory(shape=unsigned((GB + BB) * LN), depth=C, init=rom_words)
        m.submodules.rom = rom
        r_rd = rom.read_port()
        m.submodules.sqrt = sqrt = ISqrt(p.v_width)
        m.submodules.recip = recip = Reciprocal(p.q_width, RB)

        def lane(word, l):
            v = word[8 * l:8 * (l + 1)]
            return v.as_signed() if p.in_signed else v

        c = Signal(range(C))
        s1 = Signal(signed(p.s1_width))
        s2 = Signal(p.s2_width)
        inw = self.x.payload.as_value()
        s1_next = Signal(signed(p.s1_width))
        s2_next = Signal(p.s2_width)
        xs = [lane(inw, l) for l in range(LN)]
        m.d.comb += [s1_next.eq(Mux(c == 0, 0, s1) + adder_tree(xs)),
                     s2_next.eq(Mux(c == 0, 0, s2) + adder_tree([x * x for x in xs])),
                     b_wr.addr.eq(c), b_wr.data.eq(inw)]
        var = Signal(signed(2 * p.s1_width + 2))
        m.d.comb += var.eq(p.n * s2 - s1 * s1)
        r = Signal(RB + 1)
        u = Signal(range(p.u_max + 1))
        sh = Signal(range(p.u_max + F + 1))
        og = Signal(range(C))
        out_issue = Signal()
        o1_valid, o1_last, y_last = Signal(), Signal(), Signal()

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.x.ready.eq(1)
                with m.If(self.x.valid):
                    m.d.comb += b_wr.en.eq(1)
                    m.d.sync += [s1.eq(s1_next), s2.eq(s2_next),
                                 c.eq(Mux(c == C - 1, 0, c + 1))]
                    with m.If(c == C - 1):
                        m.next = "VAR"
            with m.State("VAR"):
                m.d.comb += [sqrt.start.eq(1),
                             sqrt.value.eq((var.as_unsigned() << (2 * G)) + p.eps_code)]
                m.next = "SQRT"
            with m.State("SQRT"), m.If(sqrt.last):
                m.d.comb += [recip.start.eq(1), recip.value.eq(sqrt.root_next)]
                m.next = "RECIP"
            with m.State("RECIP"), m.If(recip.done):
                m.d.sync += [r.eq(recip.r), u.eq(recip.k - G), sh.eq(recip.k - G + F),
                             og.eq(0), out_issue.eq(1)]
                m.next = "OUT"
            with m.State("OUT"), m.If(self.y.valid & self.y.ready & y_last):
                m.next = "LOAD"

        advance = Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready), b_rd.addr.eq(og),
                     b_rd.en.eq(advance), r_rd.addr.eq(og), r_rd.en.eq(advance)]
        codes = []
        for l in range(LN):
            xl = lane(b_rd.data, l)
            gl = r_rd.data[GB * l:GB * (l + 1)].as_signed()
            bl = r_rd.data[GB * LN + BB * l:GB * LN + BB * (l + 1)].as_signed()
            cen = Signal(signed(p.s1_width + 1), name=f"c{l}")
            m.d.comb += cen.eq(p.n * xl - s1)
            t = Signal(signed(p.t_width + 1), name=f"t{l}")
            m.d.comb += t.eq(cen * gl * r + (bl << u))
            rounded = Signal(signed(p.t_width + 2), name=f"y_round{l}")
            m.d.comb += rounded.eq(round_shift(t, sh, Rounding.HALF_EVEN))
            code = Signal(signed(9), name=f"y_code{l}")
            m.d.comb += code.eq(saturate(rounded, p.out))
            codes.append(code[:8])
        with m.If(advance):
            m.d.sync += [o1_valid.eq(out_issue), o1_last.eq(out_issue & (og == C - 1)),
                         self.y.valid.eq(o1_valid), y_last.eq(o1_last)]
            with m.If(out_issue):
                m.d.sync += og.eq(Mux(og == C - 1, 0, og + 1))
                with m.If(og == C - 1):
                    m.d.sync += out_issue.eq(0)
            with m.If(o1_valid):
                m.d.sync += self.y.payload.as_value().eq(Cat(*codes))
        return m
