"""The input half of a BitNet layer's FFN: the residual row's peak → shift
(:class:`rtl.vitallm.row_shift.RowShift`), the FFN RMSNorm + activation quantizer
(:class:`rtl.vitallm.norm_quant.NormQuant`), the ``w1`` and ``w3`` ternary MVUs in parallel
(:class:`rtl.vitallm.ternary_mvu.TernaryMVU`) and ``relu(g)²·u`` (:class:`rtl.vitallm.relu2_mul.Relu2Mul`)
or ``silu(g)·u`` (:class:`rtl.vitallm.silu_mul.SiluMul`).

Specification: :func:`hwsim.golden.vitallm.ffn_in.ffn_in`, :func:`hwsim.golden.vitallm.ffn_in.latency_cycles`.
This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ffn_in as spec
from hwsim.golden.vitallm import layer_codes as lc
from rtl.vitallm.norm_quant import NormQuant
from rtl.vitallm.relu2_mul import Relu2Mul
from rtl.vitallm.row_shift import RowShift
from rtl.vitallm.silu_mul import SiluMul
from rtl.vitallm.ternary_mvu import TernaryMVU

__all__ = ["FfnIn"]


class FfnIn(wiring.Component):
    """``relu(w1·a)² · (w3·a)`` (``act="relu2"``) or ``silu(w1·a) · (w3·a)`` (``act="silu"``)
    with ``a, amax = act_quant(rmsnorm(x))`` for one decode token at a time.

    The host loads ``w1`` on ``w1`` and ``w3`` on ``w3`` before a token
    (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`, ``ffn · hidden/lanes`` words each); the
    FFN RMSNorm's gains and ε constant are static ports. A token is its residual row (the
    layer's ``x_attn``), ``C = hidden/lanes`` beats of ``lanes`` codes on ``x``:

    * the row is stored while its peak is tracked, then sent shifted to the norm unit, and
      held (:class:`rtl.vitallm.row_shift.RowShift`); its codes leave on ``res``, one per beat, from
      the cycle after the last ``x`` beat, for the residual add after ``w2`` (the consumer
      takes them whenever it wants; the next row is accepted after the last one is taken);
    * the norm unit's int8 beats go to both MVUs at once (exact accumulators out); its amax is
      latched and travels on every ``y`` beat;
    * the MVUs' rows leave in the same cycles; each pair ``(g, u)`` goes through
      ``relu(g)²·u`` (two stages) or ``silu(g)·u`` (three stages: the gate requantized with
      the token's amax and the static ``gate_mult``, ``gate_shift``, the SiLU table, the
      product) to ``y``: ``ffn`` beats ``{prod, amax}``, rows in order.

    The next token's activations enter the MVUs only after this token's last ``y`` beat (its
    row, norm and quantizer overlap the MVUs). Latency (no idle input, no back-pressure):
    :func:`hwsim.golden.vitallm.ffn_in.latency_cycles` from the first ``x`` beat to the last ``y``
    beat. Back-pressure on ``y`` stalls the MVUs, then the norm unit.

    Members
    -------
    w1, w3 : ``In(stream.Signature(unsigned(2·lanes)))``
        ``w1``'s and ``w3``'s weight words (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`,
        I2_S codes); ``ffn·hidden/lanes`` beats each, loaded once before the first token.
    x : ``In(stream.Signature(ArrayLayout(signed(res_width), lanes)))``
        ``C = hidden/lanes`` beats per token: ``lanes`` residual codes, lane 0 lowest.
    gamma : ``In(ArrayLayout(signed(19), hidden))``
        The FFN RMSNorm's gain codes, element 0 lowest.
        Static: held from a token's first input beat to its last output beat.
    e : ``In(unsigned(e_width))``
        The FFN RMSNorm's ε constant ``E`` (:func:`hwsim.golden.vitallm.layer_codes.eps_code`,
        power 0).
        Static: held from a token's first input beat to its last output beat.
    gate_mult : ``In(unsigned(MULT_BITS))``, gate_shift : ``In(unsigned(6))``
        ``act="silu"`` only: the layer's gate requantizer ``(M, S)``
        (:func:`hwsim.golden.vitallm.layer_codes.silu_gate`). Static.
    y : ``Out(stream.Signature(StructLayout({prod: signed(prod_width), amax: unsigned(24)})))``
        ``ffn`` beats per token, rows in order: ``prod = relu(g)²·u`` or ``silu(g)·u`` exact,
        and the FFN activations' ``amax`` on every beat.
    res : ``Out(stream.Signature(signed(res_width)))``
        The token's held residual row, ``hidden`` codes in order, from the cycle after its last
        ``x`` beat (for ``ffn-out``'s residual add).
    """

    def __init__(self, params: spec.FfnInParams):
        if not isinstance(params, spec.FfnInParams):
            self._MustUse__silence = True
            raise HwsimError(f"FfnIn needs FfnInParams, not {type(params).__name__}")
        self.params = p = params
        self.rs = RowShift(p.norm_quant(), p.res_width)
        self.nq = NormQuant(p.norm_quant())
        self.mv1 = TernaryMVU(p.mvu())
        self.mv3 = TernaryMVU(p.mvu())
        amax_w = p.norm_quant().norm().out.width
        if p.act == "silu":
            self.r2 = SiluMul(p.mvu().acc_width, p.prod_width, p.acc_bound, amax_w)
            gate = {"gate_mult": In(unsigned(lc.MULT_BITS)), "gate_shift": In(unsigned(6))}
        else:
            self.r2 = Relu2Mul(p.mvu().acc_width, p.prod_width, p.acc_bound)
            gate = {}
        self.y_layout = data.StructLayout({"prod": signed(p.prod_width),
                                           "amax": unsigned(amax_w)})
        super().__init__({
            **gate,
            "w1": In(stream.Signature(unsigned(2 * p.lanes))),
            "w3": In(stream.Signature(unsigned(2 * p.lanes))),
            "x": self.rs.signature.members["x"],
            "gamma": self.rs.signature.members["gamma"],
            "e": In(unsigned(p.e_width)),
            "y": Out(stream.Signature(self.y_layout)),
            "res": self.rs.signature.members["res"],
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.row = rs = self.rs
        m.submodules.norm_quant = nq = self.nq
        m.submodules.w1_mvu = mv1 = self.mv1
        m.submodules.w3_mvu = mv3 = self.mv3
        m.submodules.gated_mul = r2 = self.r2
        C = p.chunks
        wiring.connect(m, wiring.flipped(self.w1), mv1.w)
        wiring.connect(m, wiring.flipped(self.w3), mv3.w)
        wiring.connect(m, wiring.flipped(self.x), rs.x)
        wiring.connect(m, wiring.flipped(self.res), rs.res)
        wiring.connect(m, rs.out, nq.inp)
        wiring.connect(m, mv1.y, r2.g)
        wiring.connect(m, mv3.y, r2.u)
        m.d.comb += [rs.gamma.eq(self.gamma), nq.e.eq(self.e),
                     mv1.mult.eq(1), mv1.shift.eq(0), mv3.mult.eq(1), mv3.shift.eq(0)]

        # ---- norm unit → both MVUs on the same beats, one token in the MVUs at a time -------
        busy = Signal()          # a token's MVU input has started and its last prod not left
        xin = Signal(range(C))
        amax = Signal.like(nq.y.payload.amax)
        gate, take = Signal(), Signal()
        m.d.comb += [gate.eq(~busy | (xin != 0)),
                     mv1.x.payload.eq(nq.y.payload.a), mv3.x.payload.eq(nq.y.payload.a),
                     mv1.x.valid.eq(nq.y.valid & gate & mv3.x.ready),
                     mv3.x.valid.eq(nq.y.valid & gate & mv1.x.ready),
                     nq.y.ready.eq(gate & mv1.x.ready & mv3.x.ready),
                     take.eq(nq.y.valid & nq.y.ready)]
        with m.If(take):
            m.d.sync += [xin.eq(Mux(xin == C - 1, 0, xin + 1)), amax.eq(nq.y.payload.amax)]

        # ---- relu(g)²·u or silu(g)·u, with the token's amax -----------------------------------
        if p.act == "silu":      # amax changes only when the next token's MVU input starts
            m.d.comb += [r2.amax.eq(amax), r2.mult.eq(self.gate_mult),
                         r2.shift.eq(self.gate_shift)]
        m.d.comb += [self.y.payload.prod.eq(r2.y.payload), self.y.payload.amax.eq(amax),
                     self.y.valid.eq(r2.y.valid), r2.y.ready.eq(self.y.ready)]
        row = Signal(range(p.ffn))
        done = Signal()
        m.d.comb += done.eq(self.y.valid & self.y.ready & (row == p.ffn - 1))
        with m.If(self.y.valid & self.y.ready):
            m.d.sync += row.eq(Mux(row == p.ffn - 1, 0, row + 1))
        with m.If(take & (xin == 0)):
            m.d.sync += busy.eq(1)
        with m.Elif(done):
            m.d.sync += busy.eq(0)
        return m
