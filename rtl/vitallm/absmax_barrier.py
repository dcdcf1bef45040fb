"""Absmax re-quantization barrier between the ternary and the Booth cores (VitaLLM).

Specification: :mod:`hwsim.golden.vitallm.absmax_barrier`.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import absmax_barrier as spec
from rtl.common import round_shift, saturate, shift_add_multiply

__all__ = ["AbsmaxBarrier"]


class AbsmaxBarrier(wiring.Component):
    """Per-token absmax rescale of wide accumulators to int8.

    A token's ``length`` accumulators stream in on ``a`` (one per cycle) into a buffer while
    ``max |a|`` is tracked; a restoring divider then computes ``r = floor(127·2**F / m)``, one
    quotient bit per cycle; finally the buffer is read back, each element multiplied by ``r``,
    rounded by ``F`` bits and saturated, and sent on ``y`` together with the token's ``m``.

    Latency and throughput (``N = length``, ``Q = recip_bits``; no idle input, no
    back-pressure): ``N + Q + N + 3`` cycles from a token's first ``a`` beat to its last ``y``
    beat; tokens start every ``N + Q + N`` cycles (the next token loads while the last results
    drain). Back-pressure on ``y`` stalls the read-back; idle cycles on ``a`` delay the load.

    Members
    -------
    a : ``In(stream.Signature(signed(in_width)))``
        One token: ``length`` signed accumulator codes, one per beat, in order.
    y : ``Out(stream.Signature(StructLayout({"q": signed(out.width), "absmax": unsigned(in_width)})))``
        ``length`` beats per token, in input order: ``q`` is the int8 code, ``absmax`` the
        token's ``m`` (its scale is ``s_in · m / 127``), the same on every beat of the token.
    """

    def __init__(self, params: spec.AbsmaxBarrierParams):
        if not isinstance(params, spec.AbsmaxBarrierParams):
            self._MustUse__silence = True
            raise HwsimError(f"AbsmaxBarrier needs AbsmaxBarrierParams, "
                             f"not {type(params).__name__}")
        self.params = p = params
        self.y_layout = data.StructLayout({"q": signed(p.out.width),
                                           "absmax": unsigned(p.in_width)})
        super().__init__({
            "a": In(stream.Signature(signed(p.in_width))),
            "y": Out(stream.Signature(self.y_layout)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        buf = Memory(shape=signed(p.in_width), depth=p.length, init=[])
        m.submodules.buf = buf
        wr, rd = buf.write_port(), buf.read_port()

        advance = Signal()
        m.d.comb += advance.eq(~self.y.valid | self.y.ready)

        idx = Signal(range(max(p.length, 2)))
        absmax = Signal(unsigned(p.in_width))       # running max of the token being loaded
        mag = Signal(unsigned(p.in_width))
        m.d.comb += mag.eq(Mux(self.a.payload < 0, -self.a.payload, self.a.payload))

        # restoring divider: dividend 127·2**F (a constant), divisor = absmax
        dividend = Const(spec.QMAX << p.F, p.recip_bits)
        qbit = Signal(range(max(p.recip_bits, 2)))
        rem = Signal(unsigned(p.in_width + 1))
        quo = Signal(unsigned(p.recip_bits))
        trial = Signal(unsigned(p.in_width + 2))
        m.d.comb += trial.eq(Cat(dividend.bit_select(qbit, 1), rem))  # (rem << 1) | next bit
        fits = trial >= absmax

        emit_r = Signal(unsigned(p.recip_bits))     # reciprocal of the token being emitted
        emit_m = Signal(unsigned(p.in_width))
        issue = Signal()
        m.d.comb += [wr.addr.eq(idx), wr.data.eq(self.a.payload), rd.addr.eq(idx),
                     rd.en.eq(advance)]

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.a.ready.eq(1)
                with m.If(self.a.valid):
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += absmax.eq(Mux((idx == 0) | (mag > absmax), mag, absmax))
                    with m.If(idx == p.length - 1):
                        m.d.sync += [idx.eq(0), qbit.eq(p.recip_bits - 1), rem.eq(0),
                                     quo.eq(0)]
                        m.next = "DIVIDE"
                    with m.Else():
                        m.d.sync += idx.eq(idx + 1)
            with m.State("DIVIDE"):
                m.d.sync += [rem.eq(Mux(fits, trial - absmax, trial)),
                             quo.eq((quo << 1) | fits), qbit.eq(qbit - 1)]
                with m.If(qbit == 0):
                    q_final = (quo << 1) | fits
                    m.d.sync += [emit_r.eq(Mux(absmax == 0, 0, q_final)), emit_m.eq(absmax)]
                    m.next = "EMIT"
            with m.State("EMIT"):
                m.d.comb += issue.eq(advance)
                with m.If(advance):
                    with m.If(idx == p.length - 1):
                        m.d.sync += idx.eq(0)
                        m.next = "LOAD"
                    with m.Else():
                        m.d.sync += idx.eq(idx + 1)

        # stage 1: buffer data → multiply by r
        s1_valid = Signal()
        s1_r = Signal.like(emit_r)
        s1_m = Signal.like(emit_m)
        with m.If(advance):
            m.d.sync += [s1_valid.eq(issue), s1_r.eq(emit_r), s1_m.eq(emit_m)]
        if p.mul_style == "dsp":
            product = rd.data * s1_r
        else:
            product = shift_add_multiply(rd.data, s1_r)
        s2_valid = Signal()
        s2_prod = Signal(signed(p.in_width + p.recip_bits + 1))
        s2_m = Signal.like(emit_m)
        with m.If(advance):
            m.d.sync += [s2_valid.eq(s1_valid), s2_prod.eq(product), s2_m.eq(s1_m)]
        # stage 2: round by F bits, saturate → output register
        with m.If(advance):
            m.d.sync += self.y.valid.eq(s2_valid)
            with m.If(s2_valid):
                m.d.sync += [
                    self.y.payload.q.eq(saturate(round_shift(s2_prod, Const(p.F, range(p.F + 1)),
                                                             p.out.rounding), p.out)),
                    self.y.payload.absmax.eq(s2_m),
                ]
        return m

