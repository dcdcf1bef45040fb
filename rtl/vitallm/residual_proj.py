"""A ternary projection back into the residual stream: the norm unit's int8 beats → a
:class:`rtl.vitallm.ternary_mvu.TernaryMVU` (accumulators out unscaled) → requantization with the
beats' amax → residual add. The last stage ``attn-out`` (``wo``) and ``ffn-out`` (``w2``) share.

Specification: :func:`hwsim.golden.vitallm.layer_codes.residual_add` of
:func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu_acc`; cycles :func:`hwsim.golden.vitallm.ternary_mvu.
latency_cycles` from the first ``a`` beat. This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import attn_out as ao
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import ternary_mvu as tm
from quant.qtype import INT8, QType
from rtl.common import round_shift, saturate
from rtl.vitallm.ternary_mvu import TernaryMVU

__all__ = ["ResidualProj", "quantize_into"]


class ResidualProj(wiring.Component):
    """``y = x + sat(round_half_even(W·a · amax · M / 2**S))`` for one vector at a time.

    The host loads ``W`` on ``w`` once (:func:`hwsim.golden.vitallm.ternary_mvu.weight_words`). A
    vector is ``cols/lanes`` beats on ``a`` (``{a: lanes × int8, amax}``, the
    :class:`rtl.vitallm.norm_quant.NormQuant` output beat; the amax of the last beat counts), then
    ``rows`` residual codes on ``x``: each MVU output row is requantized in the format
    ``req`` (default: the residual format ``res`` of the ``x`` codes) and added to the next
    ``x`` code in the cycle it leaves (``y`` is the exact sum, ``res.width + 1`` bits). One
    vector is in the MVU and the output stage at a time: the next vector's first beat waits
    until the last row has left.

    Latency (no idle input, no back-pressure): :func:`hwsim.golden.vitallm.ternary_mvu.latency_cycles`
    from the first ``a`` beat to the last ``y`` code. Back-pressure on ``y`` and a late ``x``
    stall the MVU, then ``a``.

    Members
    -------
    w : ``In(stream.Signature(unsigned(2·lanes)))``
    a : ``In(stream.Signature(StructLayout({a: lanes × int8, amax: unsigned(amax_width)})))``
    x : ``In(stream.Signature(signed(res.width)))``
    y : ``Out(stream.Signature(signed(res.width + 1)))``
    mult : ``In(StructLayout({m: unsigned(24), s: unsigned(6)}))``
    """

    def __init__(self, params: tm.TernaryMvuParams, res: QType, amax_width: int,
                 req: QType | None = None):
        req = res if req is None else req
        if not (isinstance(params, tm.TernaryMvuParams) and isinstance(res, QType)
                and isinstance(req, QType) and req.width <= res.width):
            self._MustUse__silence = True
            raise HwsimError("ResidualProj needs TernaryMvuParams, a residual QType and a "
                             "requantizer QType no wider")
        self.params, self.res, self.req = params, res, req
        self.mvu = TernaryMVU(params)
        self.a_layout = data.StructLayout({"a": data.ArrayLayout(signed(INT8.width),
                                                                 params.lanes),
                                           "amax": unsigned(amax_width)})
        self.mult_layout = data.StructLayout({"m": unsigned(lc.MULT_BITS),
                                              "s": unsigned(ao.SHIFT_BITS)})
        super().__init__({
            "w": In(stream.Signature(unsigned(2 * params.lanes))),
            "a": In(stream.Signature(self.a_layout)),
            "x": In(stream.Signature(signed(res.width))),
            "y": Out(stream.Signature(signed(res.width + 1))),
            "mult": In(self.mult_layout),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.mvu = mv = self.mvu
        C = p.cols // p.lanes
        wiring.connect(m, wiring.flipped(self.w), mv.w)
        m.d.comb += [mv.mult.eq(1), mv.shift.eq(0)]

        # ---- activation beats → MVU, one vector in the MVU and output stage at a time -------
        busy = Signal()          # a vector's MVU input has started and its last row not left
        xin = Signal(range(C))
        amax = Signal.like(self.a.payload.amax)
        take = Signal()
        m.d.comb += [mv.x.payload.eq(self.a.payload.a),
                     mv.x.valid.eq(self.a.valid & (~busy | (xin != 0))),
                     self.a.ready.eq(mv.x.ready & (~busy | (xin != 0))),
                     take.eq(self.a.valid & self.a.ready)]
        with m.If(take):
            m.d.sync += [xin.eq(Mux(xin == C - 1, 0, xin + 1)), amax.eq(self.a.payload.amax)]

        # ---- requantize each row, add the residual code -------------------------------------
        amax_s = Signal(signed(len(amax) + 1))
        m_s = Signal(signed(lc.MULT_BITS + 1))
        m.d.comb += [amax_s.eq(amax), m_s.eq(self.mult.m)]
        prod = Signal(signed(p.acc_width + len(amax_s) + len(m_s)))
        m.d.comb += prod.eq(mv.y.payload * amax_s * m_s)
        req = Signal(signed(self.req.width))
        m.d.comb += req.eq(saturate(round_shift(prod, self.mult.s, self.req.rounding),
                                    self.req))
        m.d.comb += [self.y.payload.eq(self.x.payload + req),
                     self.y.valid.eq(mv.y.valid & self.x.valid),
                     mv.y.ready.eq(self.y.ready & self.x.valid),
                     self.x.ready.eq(self.y.ready & mv.y.valid)]
        row = Signal(range(p.rows))
        with m.If(self.y.valid & self.y.ready):
            m.d.sync += row.eq(Mux(row == p.rows - 1, 0, row + 1))
        with m.If(take & (xin == 0)):
            m.d.sync += busy.eq(1)
        with m.Elif(self.y.valid & self.y.ready & (row == p.rows - 1)):
            m.d.sync += busy.eq(0)
        return m


def quantize_into(m: Module, rs, quant, proj: ResidualProj, factor=None, power: int = 0) -> None:
    """The no-norm path in front of a projection (the BitNet layer without SubLN,
    :func:`hwsim.golden.vitallm.layer_codes.act_quant_wide`): a
    :class:`rtl.vitallm.row_shift.RowShift`'s shifted beats (the low ``in_width`` bits of each
    lane) → the absmax quantizer ``quant`` (:class:`rtl.vitallm.absmax_barrier.AbsmaxBarrier`)
    → ``proj``'s ``a`` beats with the row's scale ``(amax << shift) · factor**power``.

    The row's shift and ``factor`` (a value that holds while the row's beats are sent) are
    latched when its first beat is taken; the quantizer takes a row only after the previous
    row's last beat has left it, so the latches hold for all its output beats."""
    qw, lanes = quant.params.in_width, quant.params.lanes
    xw = len(rs.out.payload.x[0])
    words = Cat(*(rs.out.payload.x.as_value()[xw * l:xw * l + qw] for l in range(lanes)))
    m.d.comb += [quant.a.valid.eq(rs.out.valid), rs.out.ready.eq(quant.a.ready),
                 (quant.a.payload.as_value() if lanes > 1 else quant.a.payload).eq(words)]
    row_shift = Signal.like(rs.shift)
    row_factor = Signal.like(factor) if power else None
    first = Signal()                 # the next beat sent is a row's first
    with m.If(quant.a.valid & quant.a.ready):
        m.d.sync += first.eq(0)
        with m.If(first):
            m.d.sync += row_shift.eq(rs.shift)
            if power:
                m.d.sync += row_factor.eq(factor)
    with m.If(~rs.sending):
        m.d.sync += first.eq(1)
    scale = quant.y.payload.absmax
    for _ in range(power):
        scale = scale * row_factor
    q = quant.y.payload.q
    m.d.comb += [proj.a.valid.eq(quant.y.valid), quant.y.ready.eq(proj.a.ready),
                 proj.a.payload.a.as_value().eq(q.as_value() if lanes > 1 else q),
                 proj.a.payload.amax.eq(scale << row_shift)]
