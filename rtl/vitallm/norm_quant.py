"""Norm unit of the BitNet layer: RMSNorm with the integer ε code, then the absmax activation
quantizer of the integer model.

Specification: :mod:`hwsim.golden.vitallm.norm_quant` (golden function, cycle formulas). This module
only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as spec
from quant.qtype import INT8, Rounding
from rtl.common import max_tree, round_shift, saturate
from rtl.common.recip import Reciprocal
from rtl.vitallm.rmsnorm_int import RmsNorm

__all__ = ["NormQuant", "input_layout"]


def input_layout(p: spec.NormQuantParams) -> data.StructLayout:
    """The payload of a :class:`NormQuant`'s ``inp`` beat: ``{x: lanes × WIDE, g: lanes ×
    gamma, shift}`` (what :class:`rtl.common.row_shift.RowShift` sends)."""
    np_ = p.norm()
    return data.StructLayout({
        "x": data.ArrayLayout(signed(np_.x.width), p.lanes),
        "g": data.ArrayLayout(signed(np_.gamma.width), p.lanes),
        "shift": unsigned(p.shift_width),
    })


class NormQuant(wiring.Component):
    """``a, amax = act_quant(rmsnorm(x, γ, eps_code(E, shift)))`` for one vector at a time.

    The ε code is combinational from the ``e`` port and the vector's ``shift``: ``E`` rounded
    half up by ``2·shift`` bits, capped at ``EPS_CAP``; the :class:`rtl.vitallm.rmsnorm_int.RmsNorm`
    inside samples it with the vector's last input beat. The RMSNorm's ``C = n/lanes`` output
    beats are stored as they come while ``max |y|`` is tracked; then the reciprocal of the
    amax (:class:`rtl.common.recip.Reciprocal`, ``ACT_RECIP_BITS``) and ``C`` output beats of
    ``sat8(round_half_even(y · r · 127 / 2**k))`` with the vector's amax.

    Latency and throughput: :func:`hwsim.golden.vitallm.norm_quant.latency_cycles` from the first
    input beat to the last output beat (no idle input, no back-pressure); a vector sent back
    to back starts every :func:`hwsim.golden.vitallm.rmsnorm_int.latency_cycles` cycles
    (:func:`hwsim.golden.vitallm.norm_quant.stream_cycles`). Back-pressure on ``y`` stalls the output
    beats, then the RMSNorm.

    Members
    -------
    inp : ``In(stream.Signature(StructLayout({x: lanes × x, g: lanes × gamma, shift})))``
        ``C = n/lanes`` beats per vector: ``lanes`` row codes (``NORM_IN_BITS`` significant
        bits, format ``x``) and their gains ``γ``, lane 0 lowest; ``shift`` (``shift_width``
        bits, the row's right shift from :func:`hwsim.golden.vitallm.layer_codes.shift_rows`) is taken
        from the vector's last beat.
    e : ``In(unsigned(e_width))``
        The norm's ε constant ``E`` (:func:`hwsim.golden.vitallm.layer_codes.eps_code`), held while a
        vector loads. With ``eps_in=True`` this port is ``eps : In(unsigned(63))`` instead:
        the row's ε code itself (at most ``EPS_CAP``, e.g. from
        :class:`rtl.vitallm.eps_divider.EpsDivider`), sampled with the vector's last beat like the code
        it replaces; ``shift`` is then unused. Latency and throughput are the same.
    y : ``Out(stream.Signature(StructLayout({a: lanes × int8, amax: unsigned(24)})))``
        ``C`` beats per vector, in input order: ``a`` the int8 activation codes, ``amax`` the
        vector's ``max |y|`` of its ``NORM_OUT`` codes (the same on every beat).
    """

    def __init__(self, params: spec.NormQuantParams, eps_in: bool = False):
        if not isinstance(params, spec.NormQuantParams):
            raise HwsimError(f"NormQuant needs NormQuantParams, not {type(params).__name__}")
        self.params = p = params
        self.eps_in = bool(eps_in)
        np_ = p.norm()
        self.in_layout = input_layout(p)
        self.out_layout = data.StructLayout({
            "a": data.ArrayLayout(signed(INT8.width), p.lanes),
            "amax": unsigned(np_.out.width),
        })
        super().__init__({
            "inp": In(stream.Signature(self.in_layout)),
            **({"eps": In(unsigned(lc.EPS_CAP.bit_length()))} if self.eps_in
               else {"e": In(unsigned(p.e_width))}),
            "y": Out(stream.Signature(self.out_layout)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, LN, OW, RB = p.chunks, p.lanes, p.norm().out.width, lc.ACT_RECIP_BITS
        m.submodules.norm = norm = RmsNorm(p.norm())

        # ---- RMSNorm input and its ε code ---------------------------------------------------
        m.d.comb += [
            norm.inp.valid.eq(self.inp.valid), self.inp.ready.eq(norm.inp.ready),
            norm.inp.payload.x.eq(self.inp.payload.x), norm.inp.payload.g.eq(self.inp.payload.g),
        ]
        if self.eps_in:
            m.d.comb += norm.eps.eq(Mux(self.eps > lc.EPS_CAP, lc.EPS_CAP, self.eps))
        else:
            code = Signal(p.e_width + 1)
            m.d.comb += [
                code.eq(round_shift(Cat(self.e, Const(0, 1)), self.inp.payload.shift * 2,
                                    Rounding.HALF_UP)),
                norm.eps.eq(Mux(code > lc.EPS_CAP, lc.EPS_CAP, code)),
            ]

        # ---- store the norm's output beats, track max |y| -----------------------------------
        buf = Memory(shape=unsigned(LN * OW), depth=C, init=[])
        m.submodules.buf = buf
        wr, rd = buf.write_port(), buf.read_port()
        m.submodules.recip = recip = Reciprocal(OW, RB)
        mags = []
        for l, yl in enumerate(norm.y.payload):
            mag = Signal(unsigned(OW), name=f"mag{l}")
            m.d.comb += mag.eq(Mux(yl < 0, -yl, yl))
            mags.append(mag)
        beat_max = Signal(unsigned(OW))
        m.d.comb += beat_max.eq(max_tree(mags))

        cg = Signal(range(C))
        amax = Signal(unsigned(OW))
        started = Signal()
        r = Signal(RB + 1)
        k = Signal.like(recip.k)
        og = Signal(range(C))
        out_issue = Signal()
        o1_valid, o1_last, y_last = Signal(), Signal(), Signal()
        m.d.comb += [wr.addr.eq(cg), wr.data.eq(norm.y.payload.as_value())]

        with m.FSM():
            with m.State("COLLECT"):
                m.d.comb += norm.y.ready.eq(1)
                with m.If(norm.y.valid):
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += [amax.eq(Mux((cg == 0) | (beat_max > amax), beat_max, amax)),
                                 cg.eq(Mux(cg == C - 1, 0, cg + 1))]
                    with m.If(cg == C - 1):
                        m.d.sync += started.eq(0)
                        m.next = "RECIP"
            with m.State("RECIP"):
                m.d.comb += [recip.value.eq(amax), recip.start.eq(~started)]
                m.d.sync += started.eq(1)
                with m.If(started & recip.done):
                    m.d.sync += [r.eq(recip.r), k.eq(recip.k), og.eq(0), out_issue.eq(1)]
                    m.next = "OUT"
            with m.State("OUT"), m.If(self.y.valid & self.y.ready & y_last):
                m.next = "COLLECT"

        # ---- output pipeline: read, scale (stalls on back-pressure) --------------------------
        advance = Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready), rd.addr.eq(og), rd.en.eq(advance)]
        qmax = INT8.max_code
        codes = []
        for l in range(LN):
            yl = rd.data[OW * l:OW * (l + 1)].as_signed()
            prod = Signal(signed(OW + RB + 2 + qmax.bit_length()), name=f"a_prod{l}")
            m.d.comb += prod.eq(yl * r * qmax)
            rounded = Signal(signed(len(prod) + 1), name=f"a_round{l}")
            m.d.comb += rounded.eq(round_shift(prod, k, INT8.rounding))
            a = Signal(signed(INT8.width), name=f"a_code{l}")
            m.d.comb += a.eq(saturate(rounded, INT8))
            codes.append(a)
        with m.If(advance):
            m.d.sync += [o1_valid.eq(out_issue), o1_last.eq(out_issue & (og == C - 1)),
                         self.y.valid.eq(o1_valid), y_last.eq(o1_last)]
            with m.If(out_issue):
                m.d.sync += og.eq(Mux(og == C - 1, 0, og + 1))
                with m.If(og == C - 1):
                    m.d.sync += out_issue.eq(0)
            with m.If(o1_valid):
                m.d.sync += [self.y.payload.a.as_value().eq(Cat(*codes)),
                             self.y.payload.amax.eq(amax)]
        return m
