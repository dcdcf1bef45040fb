"""Element-wise add / multiply of two quantized code streams (residual adds, gates).

Specification: :mod:`hwsim.golden.common.eltwise` (golden function, cycle formulas). This
module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import eltwise as spec
from rtl.common import round_shift, saturate
from rtl.common.booth import multiply

__all__ = ["Eltwise"]


def _code(qt) -> object:
    return signed(8) if qt.signed else unsigned(8)


class Eltwise(wiring.Component):
    """``y = sat(round_half_even(t · 2**−S) + zy)`` per lane, ``t = (a−za)·Ma + (b−zb)·Mb``
    (``op="add"``) or ``(a−za)·(b−zb)·M`` (``op="mul"``); every constant is a parameter.

    A three-stage pipeline (:data:`hwsim.golden.common.eltwise.PIPELINE_DEPTH`), ``lanes``
    elements per cycle: (1) the zero points are subtracted and the products formed (``add``:
    ``(a−za)·Ma`` and ``(b−zb)·Mb``, two 9 × 24-bit DSP-style multipliers per lane; ``mul``:
    ``(a−za)·(b−zb)``, one 9 × 9-bit multiplier); (2) ``add``: their sum, ``mul``: the product
    times ``M``; (3) the half-even rounding shift by the constant ``S``, the output zero point,
    saturation and the ReLU clip into the output register.

    Latency and throughput (:mod:`hwsim.golden.common.eltwise`): a beat pair accepted in cycle
    ``c`` gives its ``y`` beat valid from cycle ``c + 3``; back-to-back beats go one per cycle,
    so ``n`` beats take ``n + 3`` cycles from the first accepted pair to the last ``y`` beat.

    A beat is taken only when both ``a`` and ``b`` are valid and the pipeline advances
    (``advance = ~y.valid | y.ready``): ``a.ready = b.ready = advance & a.valid & b.valid``, so
    unequal arrival of the two streams only delays the pair. Back-pressure on ``y`` freezes the
    whole pipeline.

    Parameters
    ----------
    params : EltwiseParams
        ``lanes``, ``op``, signedness and zero points of ``a``, ``b`` and ``y``, the
        multipliers and shift, ``relu``, ``out_narrow``.

    Members
    -------
    a : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        First operand, ``lanes`` codes per beat, lane 0 in the low 8 bits.
    b : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Second operand, beats paired one to one with ``a``.
    y : ``Out(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Result codes, one beat per ``a``/``b`` pair, in order.
    """

    def __init__(self, params: spec.EltwiseParams):
        if not isinstance(params, spec.EltwiseParams):
            self._MustUse__silence = True  # never elaborated: no "created but never used" warning
            raise HwsimError(f"Eltwise needs EltwiseParams, not {type(params).__name__}")
        self.params = p = params
        super().__init__({
            "a": In(stream.Signature(data.ArrayLayout(_code(p.a), p.lanes))),
            "b": In(stream.Signature(data.ArrayLayout(_code(p.b), p.lanes))),
            "y": Out(stream.Signature(data.ArrayLayout(_code(p.out), p.lanes))),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()

        advance = Signal()
        take = Signal()
        m.d.comb += [
            advance.eq(~self.y.valid | self.y.ready),
            take.eq(advance & self.a.valid & self.b.valid),
            self.a.ready.eq(take),
            self.b.ready.eq(take),
        ]

        t_shape = signed(p.t_width)
        s1_valid, s2_valid = Signal(), Signal()
        with m.If(advance):
            m.d.sync += [s1_valid.eq(take), s2_valid.eq(s1_valid),
                         self.y.valid.eq(s2_valid)]

        shift = Const(p.shift, unsigned(6))
        for lane in range(p.lanes):
            da = Signal(signed(10), name=f"da{lane}")
            db = Signal(signed(10), name=f"db{lane}")
            m.d.comb += [da.eq(self.a.payload[lane] - p.a_zero),
                         db.eq(self.b.payload[lane] - p.b_zero)]
            # ---- stage 1: products ----------------------------------------------------------
            t = Signal(t_shape, name=f"t{lane}")
            if p.op == "add":
                pa = Signal(signed(10 + spec.MULT_BITS), name=f"pa{lane}")
                pb = Signal(signed(10 + spec.MULT_BITS), name=f"pb{lane}")
                with m.If(advance):
                    m.d.sync += [
                        pa.eq(multiply(da, Const(p.a_mult, unsigned(spec.MULT_BITS)), "dsp")),
                        pb.eq(multiply(db, Const(p.b_mult, unsigned(spec.MULT_BITS)), "dsp")),
                    ]
                # ---- stage 2: sum -----------------------------------------------------------
                with m.If(advance):
                    m.d.sync += t.eq(pa + pb)
            else:
                prod = Signal(signed(20), name=f"prod{lane}")
                with m.If(advance):
                    m.d.sync += prod.eq(multiply(da, db, "dsp"))
                # ---- stage 2: times M -------------------------------------------------------
                with m.If(advance):
                    m.d.sync += t.eq(multiply(prod, Const(p.mult, unsigned(spec.MULT_BITS)),
                                              "dsp"))
            # ---- stage 3: round, zero point, saturate, ReLU → output register -------------
            rounded = Signal(signed(p.t_width + 2), name=f"rounded{lane}")
            m.d.comb += rounded.eq(round_shift(t, shift, p.out.rounding) + p.out_zero)
            code = Signal(_code(p.out), name=f"code{lane}")
            m.d.comb += code.eq(saturate(rounded, p.out))
            if p.relu and p.out_zero > p.out.min_code:  # at the lowest code the clip is moot
                code = Mux(code < p.out_zero, p.out_zero, code)
            with m.If(advance & s2_valid):
                m.d.sync += self.y.payload[lane].eq(code)
        return m
