"""The end of a BitNet decode step: the residual row's peak → shift
(:class:`rtl.vitallm.row_shift.RowShift`), the final RMSNorm + activation quantizer
(:class:`rtl.vitallm.norm_quant.NormQuant`), the int8 LM head (:class:`rtl.common.int8_mvu.
Int8MVU`, exact logits) and a running maximum that gives the greedy token.

Specification: :func:`hwsim.golden.vitallm.lm_head.lm_head`,
:func:`hwsim.golden.vitallm.lm_head.latency_cycles`. This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import lm_head as spec
from rtl.common.int8_mvu import Int8MVU
from rtl.vitallm.norm_quant import NormQuant
from rtl.vitallm.row_shift import RowShift

__all__ = ["LmHead"]


class LmHead(wiring.Component):
    """``argmax(W · a)`` with ``a, amax = act_quant(rmsnorm(x))`` for one decode token at a
    time.

    The host loads the head's int8 weights on ``w`` before the first token
    (:func:`hwsim.golden.common.int8_mvu.weight_words`, ``vocab · hidden/lanes`` words); the
    final RMSNorm's gains and ε constant are static ports. A token is its residual row (the
    last layer's output), ``C = hidden/lanes`` beats of ``lanes`` codes on ``x``:

    * the row is stored while its peak is tracked, then sent shifted to the norm unit
      (:class:`rtl.vitallm.row_shift.RowShift`, no held copy);
    * the norm unit's int8 beats are the head MVU's input beats; its logits leave one per
      cycle, rows in order, exact (``M = 1``, ``S = 0``, 32-bit codes);
    * a running maximum takes every logit (a later logit replaces the kept one only when it
      is strictly larger: the lowest index wins a tie) and sends ``{token, logit}`` on ``y``
      the cycle after the last one.

    The next token's row is taken while this token's logits leave (its norm overlaps the
    head); its logits wait until this token's ``y`` beat is taken. Latency (no idle input,
    no back-pressure): :func:`hwsim.golden.vitallm.lm_head.latency_cycles` from the first
    ``x`` beat to the ``y`` beat.

    Members
    -------
    w : ``In(stream.Signature(unsigned(8·lanes)))``
        The head's weight words (:func:`hwsim.golden.common.int8_mvu.weight_words`), loaded
        before the first token; accepted only between tokens.
    x : ``In(stream.Signature(ArrayLayout(signed(res_width), lanes)))``
        ``C = hidden/lanes`` beats per token: ``lanes`` residual codes, lane 0 lowest.
    gamma : ``In(ArrayLayout(signed(19), hidden))``
        The final RMSNorm's gain codes, element 0 lowest.
        Static: held from a token's first input beat to its last output beat.
    e : ``In(unsigned(e_width))``
        The final RMSNorm's ε constant ``E`` (power 0).
        Static: held from a token's first input beat to its last output beat.
    y : ``Out(stream.Signature(StructLayout({token: unsigned(token_width), logit: signed(32)})))``
        One beat per token: the greedy token and its logit.
    """

    def __init__(self, params: spec.LmHeadParams):
        if not isinstance(params, spec.LmHeadParams):
            self._MustUse__silence = True
            raise HwsimError(f"LmHead needs LmHeadParams, not {type(params).__name__}")
        self.params = p = params
        self.rs = RowShift(p.norm_quant(), p.res_width, hold=False)
        self.nq = NormQuant(p.norm_quant())
        self.mvu = Int8MVU(p.mvu())
        self.y_layout = data.StructLayout({"token": unsigned(p.token_width),
                                           "logit": signed(p.logit.width)})
        super().__init__({
            "w": In(stream.Signature(unsigned(8 * p.lanes))),
            "x": self.rs.signature.members["x"],
            "gamma": self.rs.signature.members["gamma"],
            "e": In(unsigned(p.e_width)),
            "y": Out(stream.Signature(self.y_layout)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.row = rs = self.rs
        m.submodules.norm_quant = nq = self.nq
        m.submodules.head_mvu = mv = self.mvu
        wiring.connect(m, wiring.flipped(self.w), mv.w)
        wiring.connect(m, wiring.flipped(self.x), rs.x)
        wiring.connect(m, rs.out, nq.inp)
        m.d.comb += [rs.gamma.eq(self.gamma), nq.e.eq(self.e), mv.mult.eq(1), mv.shift.eq(0),
                     mv.x.payload.eq(nq.y.payload.a), mv.x.valid.eq(nq.y.valid),
                     nq.y.ready.eq(mv.x.ready)]

        # ---- running maximum over the logits; one token beat after the last ---------------
        row = Signal(range(p.vocab))
        best = Signal(signed(p.logit.width))
        best_row = Signal(unsigned(p.token_width))
        full = Signal()                      # the token beat is waiting on y
        logit = mv.y.payload.as_signed()
        m.d.comb += [mv.y.ready.eq(~full),
                     self.y.valid.eq(full),
                     self.y.payload.token.eq(best_row), self.y.payload.logit.eq(best)]
        with m.If(self.y.valid & self.y.ready):
            m.d.sync += full.eq(0)
        with m.If(mv.y.valid & mv.y.ready):
            m.d.sync += row.eq(Mux(row == p.vocab - 1, 0, row + 1))
            with m.If((row == 0) | (logit > best)):
                m.d.sync += [best.eq(logit), best_row.eq(row)]
            with m.If(row == p.vocab - 1):
                m.d.sync += full.eq(1)
        return m
