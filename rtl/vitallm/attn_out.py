"""The attention output path of a BitNet decode step: the heads' outputs rescaled to one v
step, the attention SubLN + activation quantizer (:class:`rtl.vitallm.norm_quant.NormQuant`), the
``wo`` ternary projection (:class:`rtl.vitallm.ternary_mvu.TernaryMVU`) and the residual add.

Specification: :func:`hwsim.golden.vitallm.attn_out.attn_out`, :func:`hwsim.golden.vitallm.attn_out.
latency_cycles`. This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import attn_out as spec
from hwsim.golden.vitallm import layer_codes as lc
from quant.qtype import INT8, Rounding
from rtl.common import round_shift
from rtl.vitallm.absmax_barrier import AbsmaxBarrier
from rtl.vitallm.norm_quant import NormQuant
from rtl.vitallm.residual_proj import ResidualProj, quantize_into
from rtl.vitallm.row_shift import RowShift

__all__ = ["AttnOut"]


class AttnOut(wiring.Component):
    """``x + requant(wo · act_quant(subln(v_rescale(o))))`` for one decode token at a time.

    The host loads ``wo`` on ``w`` once (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`); the
    SubLN's gains, its ε constant, the heads' v-step ratios and the residual scale are static
    ports. A token is ``C = hidden/lanes`` beats on ``o`` (head-major, the attention engine's
    ``{o, amax}`` beats), then its ``hidden`` residual codes on ``x``:

    * each ``o`` beat is rescaled (``round_half_even(o · amax · r_h / 2**15)``) into a
      :class:`rtl.vitallm.row_shift.RowShift` (no held row): stored in a wide row memory while
      the row's peak ``|·|`` is tracked;
    * the row's shift (the bits above ``NORM_IN_BITS`` of the peak) is then known; the ``C``
      beats are read back, shifted (half even) and sent to the norm unit with their gains;
    * the norm unit's int8 beats go to a :class:`rtl.vitallm.residual_proj.ResidualProj` holding
      ``wo`` (the MVU with accumulators out unscaled, its amax latched; each output row
      requantized, ``sat(round_half_even(acc · amax · M / 2**S))`` in the residual format, and
      added to the next ``x`` code in the cycle it leaves; ``y`` is the exact sum,
      ``res_width + 1`` bits). One token is in the MVU and the output stage at a time; the
      next token's rescale and norm overlap it.

    Without SubLN (``subln=False``) the shifted beats go to the absmax quantizer
    (:class:`rtl.vitallm.absmax_barrier.AbsmaxBarrier`) instead of the norm unit, and ``wo``'s
    per-row scale is ``amax << shift`` (:func:`rtl.vitallm.residual_proj.quantize_into`);
    ``gamma`` and ``e`` are absent.

    Latency (no idle input, no back-pressure): :func:`hwsim.golden.vitallm.attn_out.latency_cycles`
    from the first ``o`` beat to the last ``y`` code. Back-pressure on ``y`` and a late ``x``
    stall the MVU, then the norm unit.

    Members
    -------
    w : ``In(stream.Signature(unsigned(2·lanes)))``
        ``wo``'s weight words (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`, I2_S codes);
        ``hidden·hidden/lanes`` beats, loaded once before the first token.
    o : ``In(stream.Signature(StructLayout({o: lanes × int8, amax: unsigned(amax_width)})))``
        ``C = hidden/lanes`` beats per token, head-major: ``lanes`` int8 codes of a head's
        output row (lane 0 lowest) and that head's ``amax`` (the attention engine's beats).
    x : ``In(stream.Signature(signed(res_width)))``
        The token's ``hidden`` residual codes, one per beat, in order; code ``i`` is added to
        output row ``i`` in the cycle that row leaves the MVU.
    y : ``Out(stream.Signature(signed(res_width + 1)))``
        ``hidden`` beats per token: ``x[i] + sat(round_half_even(acc[i]·amax·M / 2**S))``,
        the exact sum.
    ratio : ``In(ArrayLayout(unsigned(16), heads))``
        Each head's v-step ratio ``r_h`` (``V_RATIO_FRAC`` = 15 fractional bits, head 0
        lowest).
        Static: held from a token's first input beat to its last output beat.
    gamma : ``In(ArrayLayout(signed(19), hidden))``
        The attention SubLN's gain codes, element 0 lowest.
        Static: held from a token's first input beat to its last output beat.
    e : ``In(unsigned(e_width))``
        The SubLN's ε constant ``E`` (:func:`hwsim.golden.vitallm.layer_codes.eps_code`, power 0).
        Static: held from a token's first input beat to its last output beat.
    mult : ``In(StructLayout({m: unsigned(24), s: unsigned(6)}))``
        ``wo``'s residual requantization ``M`` (``m``, low bits) and ``S`` (``s``).
        Static: held from a token's first input beat to its last output beat.
    """

    def __init__(self, params: spec.AttnOutParams):
        if not isinstance(params, spec.AttnOutParams):
            self._MustUse__silence = True
            raise HwsimError(f"AttnOut needs AttnOutParams, not {type(params).__name__}")
        self.params = p = params
        self.rs = RowShift(p.norm_quant(), p.wide_width, hold=False)
        if p.subln:
            self.nq = NormQuant(p.norm_quant())
        else:
            self.quant = AbsmaxBarrier(p.quant())
        self.proj = ResidualProj(p.wo(), p.res, p.scale_width)
        gw = p.norm_quant().norm().gamma.width
        self.o_layout = data.StructLayout({"o": data.ArrayLayout(signed(INT8.width), p.lanes),
                                           "amax": unsigned(p.amax_width)})
        self.mult_layout = self.proj.mult_layout
        sub = ({"gamma": In(data.ArrayLayout(signed(gw), p.hidden)),
                "e": In(unsigned(p.e_width))} if p.subln else {})
        super().__init__({
            "w": In(stream.Signature(unsigned(2 * p.lanes))),
            "o": In(stream.Signature(self.o_layout)),
            "x": In(stream.Signature(signed(p.res_width))),
            "y": Out(stream.Signature(signed(p.res_width + 1))),
            "ratio": In(data.ArrayLayout(unsigned(spec.RATIO_BITS), p.heads)),
            **sub,
            "mult": In(self.mult_layout),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.row = rs = self.rs
        m.submodules.wo = proj = self.proj
        C, LN, WW = p.chunks, p.lanes, p.wide_width
        per_head = p.head_dim // p.lanes
        wiring.connect(m, wiring.flipped(self.w), proj.w)
        if p.subln:
            m.submodules.norm_quant = nq = self.nq
            wiring.connect(m, rs.out, nq.inp)
            wiring.connect(m, nq.y, proj.a)
            m.d.comb += [nq.e.eq(self.e), rs.gamma.eq(self.gamma)]
        else:
            m.submodules.quant = quant = self.quant
            quantize_into(m, rs, quant, proj)
        wiring.connect(m, wiring.flipped(self.x), proj.x)
        wiring.connect(m, wiring.flipped(self.y), proj.y)
        m.d.comb += proj.mult.eq(self.mult)

        # ---- v-rescale of each o beat into the row shifter ----------------------------------
        cnt = Signal(range(C))           # the token's o beat
        with m.If(rs.x.valid & rs.x.ready):
            m.d.sync += cnt.eq(Mux(cnt == C - 1, 0, cnt + 1))
        ratio = Signal(unsigned(spec.RATIO_BITS))
        with m.Switch(cnt):
            for c in range(C):
                with m.Case(c):
                    m.d.comb += ratio.eq(self.ratio[c // per_head])
        # amax and the ratio are non-negative: zero-extended into signed factors
        scale = Signal(signed(p.amax_width + spec.RATIO_BITS + 1))
        m.d.comb += scale.eq(self.o.payload.amax * ratio)
        wide = []
        for l in range(LN):
            v = Signal(signed(WW), name=f"wide{l}")
            m.d.comb += v.eq(round_shift(self.o.payload.o[l] * scale, Const(lc.V_RATIO_FRAC, 5),
                                         Rounding.HALF_EVEN))
            wide.append(v)
        m.d.comb += [rs.x.valid.eq(self.o.valid), rs.x.payload.eq(Cat(*wide)),
                     self.o.ready.eq(rs.x.ready)]
        return m
