"""Norm unit of the BitNet layer: RMSNorm with the integer ε code, then the absmax activation
quantizer of the integer model.

Specification: :mod:`hwsim.golden.vitallm.norm_quant` (golden function, cycle formulas). This module
only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import absmax_barrier as ab
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as spec
from quant.qtype import INT8, Rounding
from rtl.common import round_shift
from rtl.vitallm.absmax_barrier import AbsmaxBarrier
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
    beats go into the absmax requantizer, :class:`rtl.vitallm.absmax_barrier.AbsmaxBarrier`
    (``lanes`` wide, ``ACT_RECIP_BITS``): stored while ``max |y|`` is tracked, the reciprocal
    of the amax, then ``C`` output beats of ``sat8(round_half_even(y · r · 127 / 2**k))`` with
    the vector's amax.

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
        LN, OW = p.lanes, p.norm().out.width
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

        # ---- the absmax requantizer: store the norm's beats, reciprocal of the amax, scale ----
        m.submodules.quant = quant = AbsmaxBarrier(ab.AbsmaxBarrierParams(
            length=p.n, in_width=OW, lanes=LN, recip_bits=lc.ACT_RECIP_BITS, out=INT8))
        q_bits = quant.y.payload.q
        m.d.comb += [
            quant.a.valid.eq(norm.y.valid), norm.y.ready.eq(quant.a.ready),
            (quant.a.payload.as_value() if LN > 1 else quant.a.payload).eq(
                norm.y.payload.as_value()),
            self.y.valid.eq(quant.y.valid), quant.y.ready.eq(self.y.ready),
            self.y.payload.a.as_value().eq(q_bits.as_value() if LN > 1 else q_bits),
            self.y.payload.amax.eq(quant.y.payload.absmax),
        ]
        return m
