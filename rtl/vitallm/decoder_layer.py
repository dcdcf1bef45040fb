"""One BitNet decoder layer for a decode token in one controller: the attention half
(:class:`rtl.vitallm.attn_layer.AttnLayer`), a repacker of its output codes into row beats, the FFN's
input half (:class:`rtl.vitallm.ffn_in.FfnIn`) and output half (:class:`rtl.vitallm.ffn_out.FfnOut`).

Specification: :func:`hwsim.golden.vitallm.decoder_layer.decoder_layer`,
:func:`hwsim.golden.vitallm.decoder_layer.latency_cycles`. This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import wiring

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decoder_layer as spec
from rtl.vitallm.attn_layer import AttnLayer
from rtl.vitallm.ffn_in import FfnIn
from rtl.vitallm.ffn_out import FfnOut

__all__ = ["DecoderLayer"]


class DecoderLayer(wiring.Component):
    """``x_out = ffn(x_attn) + x_attn`` with ``x_attn = attention(x) + x``, one decode token
    at a time.

    The host loads the weights (``w``: q, k, v; ``wo``; ``w1``; ``w3``; ``w2``) and the cache
    of the ``L − 1`` earlier tokens (``kv``) before a token, as the three halves take them; the
    norms' gains and ε constants, RoPE row, scales and v-step ratios are static ports. A token
    is its residual row, ``C = hidden/lanes`` beats of ``lanes`` codes on ``x``:

    * the attention half turns it into ``x_attn``, one code per beat, as ``wo``'s rows leave;
    * the repacker holds ``lanes − 1`` codes and passes the ``lanes``-th on with them, as one
      ``ffn-in`` row beat, in the cycle it arrives (no register on the path: ``ffn-in``'s row
      store takes the beat at once while it is loading, and stalls ``wo`` otherwise);
    * ``ffn-in``'s ``{prod, amax}`` beats are ``ffn-out``'s ``p`` beats one for one, and its
      held row (``res``) is ``ffn-out``'s residual input ``x``;
    * ``ffn-out``'s ``y`` is the layer's output, ``res_width + 2`` bits (two exact adds).

    A repacker (rather than ``attn-layer`` writing ``ffn-in``'s row memory) keeps the three
    halves the verified components they are: the row memory, its peak tracker and the held row
    stay inside ``ffn-in``'s :class:`rtl.vitallm.row_shift.RowShift`, and the join costs ``lanes − 1``
    registers of ``res_width + 1`` bits and no cycle.

    Latency (no idle input, no back-pressure): :func:`hwsim.golden.vitallm.decoder_layer.
    latency_cycles` of ``L`` from the first ``x`` beat to the last ``y`` code. A token with
    ``length`` ``L`` appends its k, v at slot ``L − 1`` (shown on ``kv_new``), so tokens
    with ``L``, ``L + 1``, … generate a sequence on the on-chip cache. The next token's row is
    accepted once the attention half has added its last code; its ``x_attn`` waits in ``wo``
    until ``ffn-out`` has taken the previous token's residual row.

    Without SubLN (``subln=False``) ``sub_gamma``, ``sub_e``, ``ffn_sub_gamma`` and
    ``ffn_sub_e`` are absent (the halves' no-SubLN paths).

    Members
    -------
    w, kv, wo, cos, sin, mults, score, norm_gamma, norm_e, ratio, sub_gamma, sub_e, res_mult :
        as :class:`rtl.vitallm.attn_layer.AttnLayer`
    length, kv_new : as :class:`rtl.vitallm.attn_layer.AttnLayer`
    w1, w3 : as :class:`rtl.vitallm.ffn_in.FfnIn`
    ffn_gamma : as ``gamma`` of :class:`rtl.vitallm.ffn_in.FfnIn`
    ffn_e : as ``e`` of :class:`rtl.vitallm.ffn_in.FfnIn`
    w2 : as ``w`` of :class:`rtl.vitallm.ffn_out.FfnOut`
    ffn_sub_gamma : as ``gamma`` of :class:`rtl.vitallm.ffn_out.FfnOut`
    ffn_sub_e : as ``e`` of :class:`rtl.vitallm.ffn_out.FfnOut`
    w2_mult : as ``mult`` of :class:`rtl.vitallm.ffn_out.FfnOut`
    gate_mult, gate_shift : as :class:`rtl.vitallm.ffn_in.FfnIn` (``act="silu"`` only)
    x : ``In(stream.Signature(ArrayLayout(signed(res_width), lanes)))``
        ``C = hidden/lanes`` beats per token: ``lanes`` residual codes, lane 0 lowest.
    y : ``Out(stream.Signature(signed(res_width + 2)))``
        ``hidden`` beats per token: the layer's output residual row (``x_out``, the exact
        sum), one code per beat, in order.
    """

    _ATTN = ("w", "kv", "wo", "x", "norm_gamma", "norm_e", "cos", "sin", "mults", "score",
             "ratio", "sub_gamma", "sub_e", "res_mult", "length", "kv_new")

    def __init__(self, params: spec.DecoderLayerParams):
        if not isinstance(params, spec.DecoderLayerParams):
            self._MustUse__silence = True
            raise HwsimError(f"DecoderLayer needs DecoderLayerParams, not {type(params).__name__}")
        self.params = p = params
        self.attn = AttnLayer(p.attn_layer())
        self.fin = FfnIn(p.ffn_in())
        self.fout = FfnOut(p.ffn_out())
        am = self.attn.signature.members
        fim, fom = self.fin.signature.members, self.fout.signature.members
        super().__init__({
            **{k: am[k] for k in self._ATTN if k in am},
            "w1": fim["w1"], "w3": fim["w3"], "ffn_gamma": fim["gamma"], "ffn_e": fim["e"],
            **{k: fim[k] for k in ("gate_mult", "gate_shift") if k in fim},
            "w2": fom["w"],
            **({"ffn_sub_gamma": fom["gamma"], "ffn_sub_e": fom["e"]} if p.subln else {}),
            "w2_mult": fom["mult"], "y": fom["y"],
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.attn_layer = at = self.attn
        m.submodules.ffn_in = fin = self.fin
        m.submodules.ffn_out = fout = self.fout
        for k in ("w", "kv", "wo", "x"):
            wiring.connect(m, wiring.flipped(getattr(self, k)), getattr(at, k))
        for k in ("norm_gamma", "norm_e", "cos", "sin", "mults", "score", "ratio", "sub_gamma",
                  "sub_e", "res_mult", "length"):
            if hasattr(at, k):
                m.d.comb += getattr(at, k).eq(getattr(self, k))
        m.d.comb += self.kv_new.eq(at.kv_new)
        wiring.connect(m, wiring.flipped(self.w1), fin.w1)
        wiring.connect(m, wiring.flipped(self.w3), fin.w3)
        wiring.connect(m, wiring.flipped(self.w2), fout.w)
        wiring.connect(m, wiring.flipped(self.y), fout.y)
        m.d.comb += [fin.gamma.eq(self.ffn_gamma), fin.e.eq(self.ffn_e),
                     fout.mult.eq(self.w2_mult)]
        if p.subln:
            m.d.comb += [fout.gamma.eq(self.ffn_sub_gamma), fout.e.eq(self.ffn_sub_e)]
        if p.act == "silu":
            m.d.comb += [fin.gate_mult.eq(self.gate_mult), fin.gate_shift.eq(self.gate_shift)]

        # ---- repacker: lanes codes of x_attn → one ffn-in row beat, lane 0 lowest -----------
        LN = p.lanes
        lane = Signal(range(LN))
        held = [Signal.like(at.y.payload, name=f"held{l}") for l in range(LN - 1)]
        full = Signal()
        m.d.comb += [full.eq(lane == LN - 1),
                     fin.x.payload.eq(Cat(*held, at.y.payload)),
                     fin.x.valid.eq(at.y.valid & full),
                     at.y.ready.eq(~full | fin.x.ready)]
        with m.If(at.y.valid & at.y.ready):
            m.d.sync += lane.eq(Mux(full, 0, lane + 1))
            with m.Switch(lane):
                for l in range(LN - 1):
                    with m.Case(l):
                        m.d.sync += held[l].eq(at.y.payload)

        # ---- ffn-in → ffn-out: prod beats one for one, the held row for the residual add ---
        wiring.connect(m, fin.res, fout.x)
        m.d.comb += [fout.p.payload.prod.eq(fin.y.payload.prod),
                     fout.p.payload.amax.eq(fin.y.payload.amax),
                     fout.p.valid.eq(fin.y.valid), fin.y.ready.eq(fout.p.ready)]
        return m
