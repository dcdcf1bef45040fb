"""Integer RMSNorm unit: sum of squares, integer division, digit-by-digit square root,
normalized reciprocal, scaled outputs.

Specification: :mod:`hwsim.golden.vitallm.rmsnorm_int` (golden function, cycle formula). This module
only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import rmsnorm_int as spec
from rtl.common import adder_tree, round_shift, saturate
from rtl.common.booth import multiply
from rtl.common.isqrt import ISqrt
from rtl.common.recip import Reciprocal

__all__ = ["RmsNorm"]


class RmsNorm(wiring.Component):
    """``y = x · γ / sqrt(mean(x²) + ε)`` on integer codes, one vector at a time.

    Phases: ``C = n/lanes`` input beats (``lanes`` squares per cycle into ``Σ x²``; x and γ are
    buffered), ``num_width`` cycles of restoring division by ``n``, ``sqrt_steps`` cycles of
    digit-by-digit square root, ``recip_bits + 2`` cycles of reciprocal, ``C`` output beats
    (``lanes`` products ``x · γ · r`` per cycle, rounded and saturated).

    Latency and throughput: :func:`hwsim.golden.vitallm.rmsnorm_int.latency_cycles` cycles from the
    first input beat to the last output beat with no idle input and no back-pressure; vectors
    are processed one after another. Back-pressure on ``y`` stalls the output phase.

    Members
    -------
    inp : ``In(stream.Signature(StructLayout({x: lanes × x, g: lanes × gamma})))``
        ``C = n/lanes`` beats per vector: beat ``c`` carries ``x[c·lanes : (c+1)·lanes]``
        (format ``x``) and the gains ``γ`` of the same elements (format ``gamma``), lane 0
        lowest.
    y : ``Out(stream.Signature(ArrayLayout(out, lanes)))``
        ``C`` beats per vector, in input order: the output codes (format ``out``).
    eps : ``In(unsigned(eps_width))``
        ``eps_code`` (``round(ε / s_x² · 2**(2G))``), sampled with the vector's last ``inp``
        beat.
    """

    def __init__(self, params: spec.RmsNormParams):
        if not isinstance(params, spec.RmsNormParams):
            raise HwsimError(f"RmsNorm needs RmsNormParams, not {type(params).__name__}")
        self.params = p = params
        self.in_layout = data.StructLayout({
            "x": data.ArrayLayout(signed(p.x.width), p.lanes),
            "g": data.ArrayLayout(signed(p.gamma.width), p.lanes),
        })
        super().__init__({
            "inp": In(stream.Signature(self.in_layout)),
            "y": Out(stream.Signature(data.ArrayLayout(signed(p.out.width), p.lanes))),
            "eps": In(unsigned(p.eps_width)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, LN, xw, gw = p.chunks, p.lanes, p.x.width, p.gamma.width
        NW, VW, S, RB = p.num_width, p.v_width, p.sqrt_steps, p.recip_bits
        style = p.multiplier

        buf = Memory(shape=unsigned(LN * (xw + gw)), depth=C, init=[])
        m.submodules.buf = buf
        b_wr, b_rd = buf.write_port(), buf.read_port()
        m.submodules.recip = recip = Reciprocal(S, RB)
        m.submodules.sqrt = sqrt = ISqrt(VW)

        c = Signal(range(C))
        ss = Signal(p.ss_width)
        eps = Signal.like(self.eps)
        num = Signal(NW)                  # dividend, shifted out MSB first
        rem = Signal(range(2 * p.n + 1))  # division remainder
        quo = Signal(NW)
        cnt = Signal(range(max(NW, S) + 1))
        sh = Signal(range(NW + RB + p.shift_base + 2))
        r = Signal(RB + 1)
        og = Signal(range(C))
        out_issue = Signal()
        o1_valid, o1_last, y_last = Signal(), Signal(), Signal()

        payload = self.inp.payload
        squares = []
        for l in range(LN):
            xl = payload.x[l]
            sq = Signal(2 * xw, name=f"sq{l}")
            m.d.comb += sq.eq(multiply(xl, xl, style))
            squares.append(sq)
        ss_next = Signal(p.ss_width)
        m.d.comb += [ss_next.eq(Mux(c == 0, 0, ss) + adder_tree(squares)),
                     b_wr.addr.eq(c), b_wr.data.eq(payload.as_value())]

        # division step, square-root step (combinational, one per cycle)
        rem_sh = Signal(len(rem) + 1)
        m.d.comb += rem_sh.eq(Cat(num[-1], rem))
        div_ge = rem_sh >= p.n
        quo_next = Signal(NW)
        m.d.comb += quo_next.eq(Cat(div_ge, quo[:-1]))

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.inp.ready.eq(1)
                with m.If(self.inp.valid):
                    m.d.comb += b_wr.en.eq(1)
                    m.d.sync += [ss.eq(ss_next), c.eq(Mux(c == C - 1, 0, c + 1))]
                    with m.If(c == C - 1):
                        m.d.sync += [num.eq(ss_next << (2 * p.rms_frac)), rem.eq(0), quo.eq(0),
                                     cnt.eq(NW), eps.eq(self.eps)]
                        m.next = "DIV"
            with m.State("DIV"):
                m.d.sync += [num.eq(num << 1), quo.eq(quo_next), cnt.eq(cnt - 1),
                             rem.eq(Mux(div_ge, rem_sh - p.n, rem_sh))]
                with m.If(cnt == 1):
                    m.d.comb += [sqrt.start.eq(1), sqrt.value.eq(quo_next + eps)]
                    m.next = "SQRT"
            with m.State("SQRT"), m.If(sqrt.last):
                m.d.comb += [recip.start.eq(1), recip.value.eq(sqrt.root_next)]
                m.next = "RECIP"
            with m.State("RECIP"), m.If(recip.done):
                m.d.sync += [r.eq(recip.r), sh.eq(recip.k - RB + p.shift_base), og.eq(0),
                             out_issue.eq(1)]
                m.next = "OUT"
            with m.State("OUT"), m.If(self.y.valid & self.y.ready & y_last):
                m.next = "LOAD"

        advance = Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready), b_rd.addr.eq(og),
                     b_rd.en.eq(advance)]
        codes = []
        for l in range(LN):
            word = b_rd.data
            xl = word[xw * l:xw * (l + 1)].as_signed()
            gl = word[LN * xw + gw * l:LN * xw + gw * (l + 1)].as_signed()
            xg = Signal(signed(xw + gw), name=f"xg{l}")
            m.d.comb += xg.eq(multiply(xl, gl, style))
            prod = Signal(signed(xw + gw + RB + 2), name=f"xgr{l}")
            m.d.comb += prod.eq(multiply(xg, r, style))
            rounded = Signal(signed(len(prod) + 1), name=f"y_round{l}")
            m.d.comb += rounded.eq(round_shift(prod, sh, p.out.rounding))
            code = Signal(signed(p.out.width), name=f"y_code{l}")
            m.d.comb += code.eq(saturate(rounded, p.out))
            codes.append(code)
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
