"""The attention half of a BitNet decoder layer in one controller: the residual row's peak →
shift, the attention RMSNorm + activation quantizer (:class:`rtl.vitallm.norm_quant.NormQuant`), the
decode step's attention block (:class:`rtl.vitallm.decode_step.DecodeStep`) and the output path
(:class:`rtl.vitallm.attn_out.AttnOut`), the residual row held for the residual add.

Specification: :func:`hwsim.golden.vitallm.attn_layer.attn_layer`, :func:`hwsim.golden.vitallm.attn_layer.
latency_cycles`. This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import attn_layer as spec
from rtl.vitallm.attn_out import AttnOut
from rtl.vitallm.decode_step import DecodeStep
from rtl.vitallm.norm_quant import NormQuant
from rtl.vitallm.row_shift import RowShift

__all__ = ["AttnLayer"]


class AttnLayer(wiring.Component):
    """``x + requant(wo · act_quant(subln(attention(act_quant(rmsnorm(x))))))`` for one decode
    token at a time.

    The host loads the q, k, v weights on ``w``, ``wo``'s on ``wo`` and the cache of the
    ``L − 1`` earlier tokens on ``kv`` before a token (as :class:`rtl.vitallm.decode_step.DecodeStep`
    and :class:`rtl.vitallm.attn_out.AttnOut`); the norms' gains and ε constants, RoPE row, scales and
    v-step ratios are static ports. A token is its residual row, ``C = hidden/lanes`` beats of
    ``lanes`` codes on ``x``:

    * the beats are stored in the row memory while the row's peak ``|·|`` is tracked; the
      row's shift (the peak's bits above ``NORM_IN_BITS``) is then known; the ``C`` beats
      are read back, shifted (half even) and sent with the gains to the norm unit
      (:class:`rtl.vitallm.row_shift.RowShift`, shared with ``ffn-in``), whose int8 beats are the
      decode step's input beats; their amax is sampled by the front end with the first;
    * the decode step's per-head output beats are the output path's ``o`` beats;
    * the output path takes the held residual row, one code per cycle, for its residual add;
      the row memory is free (the next token accepted) after the last code is taken.

    Latency (no idle input, no back-pressure): :func:`hwsim.golden.vitallm.attn_layer.latency_cycles`
    of ``L`` from the first ``x`` beat to the last ``y`` code. One token is in flight at a
    time; tokens with ``length`` ``L``, ``L + 1``, … each attend to the cache the earlier ones
    appended.

    Members
    -------
    w, kv, cos, sin, mults, score : as :class:`rtl.vitallm.decode_step.DecodeStep`
    length, kv_new : as :class:`rtl.vitallm.decode_step.DecodeStep`
    wo : ``In(stream.Signature(unsigned(2·lanes)))``
        as ``w`` of :class:`rtl.vitallm.attn_out.AttnOut`
    x : ``In(stream.Signature(ArrayLayout(signed(res_width), lanes)))``
        ``C = hidden/lanes`` beats per token: ``lanes`` residual codes, lane 0 lowest.
    y : ``Out(stream.Signature(signed(res_width + 1)))``
        ``hidden`` beats per token: the residual row after the attention block (``x`` plus the
        requantized ``wo`` rows, the exact sum), one code per beat, in order.
    norm_gamma : ``In(ArrayLayout(signed(19), hidden))``
        The attention RMSNorm's gain codes, element 0 lowest.
        Static: held from a token's first input beat to its last output beat.
    norm_e : ``In(unsigned(norm_e_width))``
        The attention RMSNorm's ε constant ``E`` (power 0).
        Static: held from a token's first input beat to its last output beat.
    ratio : as :class:`rtl.vitallm.attn_out.AttnOut`
    sub_gamma : as ``gamma`` of :class:`rtl.vitallm.attn_out.AttnOut`
    sub_e : as ``e`` of :class:`rtl.vitallm.attn_out.AttnOut`
    res_mult : as ``mult`` of :class:`rtl.vitallm.attn_out.AttnOut`
    """

    def __init__(self, params: spec.AttnLayerParams):
        if not isinstance(params, spec.AttnLayerParams):
            self._MustUse__silence = True
            raise HwsimError(f"AttnLayer needs AttnLayerParams, not {type(params).__name__}")
        self.params = p = params
        self.nq = NormQuant(p.norm_quant())
        self.rs = RowShift(p.norm_quant(), p.res_width)
        self.ds = DecodeStep(p.decode_step())
        self.ao = AttnOut(p.attn_out())
        ds, ao = self.ds.signature.members, self.ao.signature.members
        gw = p.norm_quant().norm().gamma.width
        super().__init__({
            "w": ds["w"], "kv": ds["kv"], "wo": ao["w"],
            "x": In(stream.Signature(data.ArrayLayout(signed(p.res_width), p.lanes))),
            "y": ao["y"],
            "norm_gamma": In(data.ArrayLayout(signed(gw), p.hidden)),
            "norm_e": In(unsigned(p.norm_e_width)),
            "cos": ds["cos"], "sin": ds["sin"], "mults": ds["mults"], "score": ds["score"],
            "ratio": ao["ratio"],
            **({"sub_gamma": ao["gamma"], "sub_e": ao["e"]} if p.subln else {}),
            "res_mult": ao["mult"], "length": ds["length"], "kv_new": ds["kv_new"],
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.norm_quant = nq = self.nq
        m.submodules.decode_step = ds = self.ds
        m.submodules.attn_out = ao = self.ao
        wiring.connect(m, wiring.flipped(self.w), ds.w)
        wiring.connect(m, wiring.flipped(self.kv), ds.kv)
        wiring.connect(m, wiring.flipped(self.wo), ao.w)
        wiring.connect(m, wiring.flipped(self.y), ao.y)
        m.d.comb += [nq.e.eq(self.norm_e), ds.cos.eq(self.cos), ds.sin.eq(self.sin),
                     ds.mults.eq(self.mults), ds.score.eq(self.score),
                     ds.length.eq(self.length), self.kv_new.eq(ds.kv_new),
                     ao.ratio.eq(self.ratio), ao.mult.eq(self.res_mult)]
        if self.params.subln:
            m.d.comb += [ao.gamma.eq(self.sub_gamma), ao.e.eq(self.sub_e)]

        # ---- the residual row: peak → shift → norm unit; held for the residual add ----------
        m.submodules.row = rs = self.rs
        wiring.connect(m, wiring.flipped(self.x), rs.x)
        wiring.connect(m, rs.out, nq.inp)
        wiring.connect(m, rs.res, ao.x)
        m.d.comb += rs.gamma.eq(self.norm_gamma)

        # ---- norm unit → decode step → output path -----------------------------------------
        # the row's amax travels with every beat; the front end samples it with the first
        m.d.comb += [ds.x.payload.eq(nq.y.payload.a), ds.x.valid.eq(nq.y.valid),
                     nq.y.ready.eq(ds.x.ready), ds.amax.eq(nq.y.payload.amax),
                     ao.o.payload.o.eq(ds.out.payload.o),
                     ao.o.payload.amax.eq(ds.out.payload.amax),
                     ao.o.valid.eq(ds.out.valid), ds.out.ready.eq(ao.o.ready)]
        return m
