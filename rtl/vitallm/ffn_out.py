"""The output half of a BitNet layer's FFN: the ``prod`` row's peak → shift, the wide ε
divider (:class:`rtl.vitallm.eps_divider.EpsDivider`), the FFN SubLN + activation quantizer
(:class:`rtl.vitallm.norm_quant.NormQuant` fed the ε code), ``w2`` and the residual add
(:class:`rtl.vitallm.residual_proj.ResidualProj`). Without SubLN the shifted row goes straight
to the absmax quantizer (:class:`rtl.vitallm.absmax_barrier.AbsmaxBarrier`, the one inside
``NormQuant``) and ``w2``'s per-row scale is ``(amax3 << shift) · amax**k``.

Specification: :func:`hwsim.golden.vitallm.ffn_out.ffn_out`, :func:`hwsim.golden.vitallm.ffn_out.
latency_cycles`. This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ffn_out as spec
from rtl.vitallm.absmax_barrier import AbsmaxBarrier
from rtl.vitallm.eps_divider import EpsDivider
from rtl.vitallm.norm_quant import NormQuant
from rtl.vitallm.residual_proj import ResidualProj, quantize_into
from rtl.vitallm.row_shift import RowShift

__all__ = ["FfnOut"]


class FfnOut(wiring.Component):
    """``x + requant(w2 · act_quant(subln(prod, eps_code(E, shift, amax, 2k))))`` for one
    decode token at a time (``k = 3`` for ``relu(g)²·u``, 1 for ``silu(g)·u``).

    The host loads ``w2`` on ``w`` once (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`); the
    SubLN's gains and ε constant ``E`` and the residual scale are static ports. A token is
    ``ffn`` beats on ``p`` (one ``prod`` code each, in order, every beat carrying the FFN
    activations' ``amax``; the first beat's counts), then its ``hidden`` residual codes
    (``x_attn``) on ``x``:

    * each ``prod`` code is written to its lane of the row memory (``ffn/lanes`` words) of a
      :class:`rtl.vitallm.row_shift.RowShift` (serial, no held row) while the row's peak
      ``|·|`` is tracked; after the last one the shift (the peak's bits above
      ``NORM_IN_BITS``) is known;
    * in the next cycle the divider starts on ``amax`` and the shift, and the row's words are
      read back, shifted (half even) and sent with their gains to the norm unit, one per
      cycle; the last word waits for the divider's ε code, which the norm unit samples with it;
    * the norm unit's int8 beats and amax go to the ``w2`` :class:`ResidualProj`, whose rows
      are requantized and added to the ``x`` codes (``y``: the exact sum, ``res_width + 1``
      bits). The row memory takes the next token once the last word is sent.

    Without SubLN (``subln=False``) there is no divider and no norm: the shifted words go to
    the absmax quantizer (:class:`rtl.vitallm.absmax_barrier.AbsmaxBarrier`, 24-bit inputs),
    whose int8 beats go to ``w2`` with the per-row scale ``(amax3 << shift) · amax**k`` (the
    shift and ``amax`` latched when the row's first word is taken); ``gamma`` and ``e`` are
    absent.

    Latency (no idle input, no back-pressure): :func:`hwsim.golden.vitallm.ffn_out.latency_cycles`
    from the first ``p`` beat to the last ``y`` code (``ffn`` input beats, then
    :func:`hwsim.golden.vitallm.ffn_out.phase_cycles`). Back-pressure on ``y`` and a late ``x`` stall
    ``w2``, then the norm unit.

    Members
    -------
    w : ``In(stream.Signature(unsigned(2·lanes)))``
        ``w2``'s weight words (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`, I2_S codes);
        ``hidden·ffn/lanes`` beats, loaded once before the first token.
    p : ``In(stream.Signature(StructLayout({prod: signed(prod_width),
        amax: unsigned(amax_width)})))``
        ``ffn`` beats per token: ``prod`` code ``j`` of ``relu(g)²·u`` in order, and the FFN
        activations' ``amax`` (taken from the first beat).
    x : ``In(stream.Signature(signed(res_width)))``
        The token's ``hidden`` residual codes (``x_attn``), one per beat, in order; code ``i``
        is added to output row ``i`` in the cycle that row leaves the MVU.
    y : ``Out(stream.Signature(signed(res_width + 1)))``
        ``hidden`` beats per token: ``x[i] + sat(round_half_even(acc[i]·amax3·M / 2**S))``
        (saturated to ``sat_width`` bits where set), the exact sum.
    gamma : ``In(ArrayLayout(signed(19), ffn))``
        The FFN SubLN's gain codes, element 0 lowest.
        Static: held from a token's first input beat to its last output beat.
    e : ``In(unsigned(e_width))``
        The FFN SubLN's ε constant ``E`` (power 6: the ε code is ``eps_code(E, shift, amax,
        6)``, :mod:`hwsim.golden.vitallm.eps_divider`).
        Static: held from a token's first input beat to its last output beat.
    mult : ``In(StructLayout({m: unsigned(24), s: unsigned(6)}))``
        ``w2``'s residual requantization ``M`` (``m``, low bits) and ``S`` (``s``).
        Static: held from a token's first input beat to its last output beat.
    """

    def __init__(self, params: spec.FfnOutParams):
        if not isinstance(params, spec.FfnOutParams):
            self._MustUse__silence = True
            raise HwsimError(f"FfnOut needs FfnOutParams, not {type(params).__name__}")
        self.params = p = params
        self.rs = RowShift(p.norm_quant(), p.prod_width, serial=True, hold=False)
        if p.subln:
            self.div = EpsDivider(p.divider())
            self.nq = NormQuant(p.norm_quant(), eps_in=True)
        else:
            self.quant = AbsmaxBarrier(p.quant())
        self.proj = ResidualProj(p.w2(), p.res, p.scale_width, req=p.req)
        gw = p.norm_quant().norm().gamma.width
        self.p_layout = data.StructLayout({"prod": signed(p.prod_width),
                                           "amax": unsigned(p.amax_width)})
        pm = self.proj.signature.members
        members = {"w": pm["w"], "p": In(stream.Signature(self.p_layout)), "x": pm["x"],
                   "y": pm["y"]}
        if p.subln:
            members |= {"gamma": In(data.ArrayLayout(signed(gw), p.ffn)),
                        "e": In(unsigned(p.e_width))}
        super().__init__(members | {"mult": pm["mult"]})

    def elaborate(self, platform):
        m = Module()
        if not self.params.subln:
            return self._elaborate_quant(m)
        m.submodules.row = rs = self.rs
        m.submodules.divider = div = self.div
        m.submodules.norm_quant = nq = self.nq
        m.submodules.w2 = proj = self.proj
        wiring.connect(m, wiring.flipped(self.w), proj.w)
        wiring.connect(m, rs.out, nq.inp)
        wiring.connect(m, nq.y, proj.a)
        wiring.connect(m, wiring.flipped(self.x), proj.x)
        wiring.connect(m, wiring.flipped(self.y), proj.y)
        m.d.comb += [proj.mult.eq(self.mult), div.e.eq(self.e), nq.eps.eq(div.code),
                     rs.gamma.eq(self.gamma), rs.x.valid.eq(self.p.valid),
                     rs.x.payload.eq(self.p.payload.prod), self.p.ready.eq(rs.x.ready)]

        # ---- the row's amax (its first beat's) and the divider ------------------------------
        amax = Signal(unsigned(self.params.amax_width))
        with m.If(rs.x.valid & rs.x.ready & rs.first):
            m.d.sync += amax.eq(self.p.payload.amax)
        started = Signal()               # the divider runs for the row being sent
        m.d.sync += started.eq(rs.sending)
        m.d.comb += [div.amax.eq(amax), div.shift.eq(rs.shift),
                     div.start.eq(rs.sending & ~started), rs.release.eq(started & div.done)]
        return m

    def _elaborate_quant(self, m):
        """Without SubLN: row shift → absmax quantizer → ``w2`` with the row's wide scale."""
        p = self.params
        m.submodules.row = rs = self.rs
        m.submodules.quant = quant = self.quant
        m.submodules.w2 = proj = self.proj
        wiring.connect(m, wiring.flipped(self.w), proj.w)
        wiring.connect(m, wiring.flipped(self.x), proj.x)
        wiring.connect(m, wiring.flipped(self.y), proj.y)
        m.d.comb += [proj.mult.eq(self.mult), rs.x.valid.eq(self.p.valid),
                     rs.x.payload.eq(self.p.payload.prod), self.p.ready.eq(rs.x.ready)]

        amax = Signal(unsigned(p.amax_width))         # the row's amax (its first beat's)
        with m.If(rs.x.valid & rs.x.ready & rs.first):
            m.d.sync += amax.eq(self.p.payload.amax)
        quantize_into(m, rs, quant, proj, amax, p.prod_power)
        return m
