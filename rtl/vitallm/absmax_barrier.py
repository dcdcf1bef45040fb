"""Absmax re-quantization barrier between the ternary and the Booth cores (VitaLLM), and the
activation quantizer of the BitNet layer's norm unit (:class:`rtl.vitallm.norm_quant.NormQuant`
instantiates it): hwsim's one absmax requantizer in hardware.

Specification: :mod:`hwsim.golden.vitallm.absmax_barrier`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import absmax_barrier as spec
from rtl.common import comb_signal, max_tree, round_shift, saturate, shift_add_multiply
from rtl.common.booth import const_multiply, multiply
from rtl.common.recip import Reciprocal

__all__ = ["AbsmaxBarrier"]


def _lanes_shape(shape, lanes: int):
    """One value per beat for ``lanes = 1`` (a plain signal), else an array of ``lanes``."""
    return shape if lanes == 1 else data.ArrayLayout(shape, lanes)


class AbsmaxBarrier(wiring.Component):
    """Per-token absmax rescale of wide accumulators to int8.

    A token's ``C = length/lanes`` beats stream in on ``a`` into a buffer while ``max |a|`` is
    tracked; the reciprocal of the absmax follows (:class:`rtl.common.recip.Reciprocal`,
    ``(r, k)``, ``recip_bits + 2`` cycles); then the buffer is read back and every element
    becomes ``sat(round_shift(a · r · 127, k))``, sent on ``y`` with the token's ``m``.

    Latency and throughput: :func:`hwsim.golden.vitallm.absmax_barrier.latency_cycles`
    (``2·C + recip_bits + 5``) from a token's first ``a`` beat to its last ``y`` beat, no idle
    input and no back-pressure; the next token loads once the last ``y`` beat is taken. Back-
    pressure on ``y`` stalls the read-back; idle cycles on ``a`` delay the load.

    Members
    -------
    a : ``In(stream.Signature(signed(in_width)))``
        One token: ``length`` signed accumulator codes in order, ``lanes`` per beat (an
        ``ArrayLayout`` of them, lane 0 lowest, when ``lanes > 1``).
    y : ``Out(stream.Signature(StructLayout({"q": signed(out.width), "absmax": unsigned(in_width)})))``
        ``C`` beats per token, in input order: ``q`` the output codes (``lanes`` of them when
        ``lanes > 1``), ``absmax`` the token's ``m`` (its scale is ``s_in · m / 127``), the
        same on every beat of the token.
    """

    def __init__(self, params: spec.AbsmaxBarrierParams):
        if not isinstance(params, spec.AbsmaxBarrierParams):
            self._MustUse__silence = True
            raise HwsimError(f"AbsmaxBarrier needs AbsmaxBarrierParams, "
                             f"not {type(params).__name__}")
        self.params = p = params
        self.a_shape = _lanes_shape(signed(p.in_width), p.lanes)
        self.y_layout = data.StructLayout({"q": _lanes_shape(signed(p.out.width), p.lanes),
                                           "absmax": unsigned(p.in_width)})
        super().__init__({
            "a": In(stream.Signature(self.a_shape)),
            "y": Out(stream.Signature(self.y_layout)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, LN, W, RB = p.chunks, p.lanes, p.in_width, p.recip_bits
        buf = Memory(shape=unsigned(LN * W), depth=C, init=[])
        m.submodules.buf = buf
        wr, rd = buf.write_port(), buf.read_port()
        m.submodules.recip = recip = Reciprocal(W, RB)

        a_bits = self.a.payload.as_value() if LN > 1 else self.a.payload
        mags = []
        for l in range(LN):
            al = a_bits[W * l:W * (l + 1)].as_signed()
            mags.append(comb_signal(m, Mux(al < 0, -al, al), unsigned(W), f"mag{l}"))
        beat_max = comb_signal(m, max_tree(mags), unsigned(W), "beat_max")

        cg = Signal(range(C))
        amax = Signal(unsigned(W))
        started = Signal()
        r = Signal(p.r_bits)
        k = Signal.like(recip.k)
        og = Signal(range(C))
        out_issue = Signal()
        o1_valid, o1_last, y_last = Signal(), Signal(), Signal()
        m.d.comb += [wr.addr.eq(cg), wr.data.eq(a_bits)]

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.a.ready.eq(1)
                with m.If(self.a.valid):
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
                    m.next = "EMIT"
            with m.State("EMIT"), m.If(self.y.valid & self.y.ready & y_last):
                m.next = "LOAD"

        # ---- output pipeline: read, scale (stalls on back-pressure) --------------------------
        advance = Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready), rd.addr.eq(og), rd.en.eq(advance)]
        qmax = p.out.max_code
        pw = W + p.r_bits + 1
        sw = pw + qmax.bit_length() + 1
        codes = []
        for l in range(LN):
            al = rd.data[W * l:W * (l + 1)].as_signed()
            prod = (multiply(al, r, "dsp") if p.mul_style == "dsp"
                    else shift_add_multiply(al, r))
            prod = comb_signal(m, prod, signed(pw), f"q_prod{l}")
            scaled = comb_signal(m, const_multiply(prod, qmax), signed(sw), f"q_scaled{l}")
            rounded = comb_signal(m, round_shift(scaled, k, p.out.rounding), signed(sw + 1),
                                  f"q_round{l}")
            codes.append(comb_signal(m, saturate(rounded, p.out), signed(p.out.width),
                                     f"q_code{l}"))
        q_out = self.y.payload.q.as_value() if LN > 1 else self.y.payload.q
        with m.If(advance):
            m.d.sync += [o1_valid.eq(out_issue), o1_last.eq(out_issue & (og == C - 1)),
                         self.y.valid.eq(o1_valid), y_last.eq(o1_last)]
            with m.If(out_issue):
                m.d.sync += og.eq(Mux(og == C - 1, 0, og + 1))
                with m.If(og == C - 1):
                    m.d.sync += out_issue.eq(0)
            with m.If(o1_valid):
                m.d.sync += [q_out.eq(Cat(*codes)), self.y.payload.absmax.eq(amax)]
        return m
