"""The residual row's peak → shift in front of a norm unit, the row held for a later residual
add: the piece ``attn-layer`` and ``ffn-in`` share.

Specification: :func:`hwsim.golden.vitallm.layer_codes.shift_rows` (the golden of the piece with the
norm unit behind it is :func:`hwsim.golden.vitallm.norm_quant.norm_quant_row`). This module only
builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from quant.qtype import Rounding
from rtl.common import max_tree, norm_shift, round_shift
from rtl.vitallm.norm_quant import input_layout

__all__ = ["RowShift"]


class RowShift(wiring.Component):
    """One residual row at a time: stored while its peak ``|x|`` is tracked, then sent shifted
    to a norm unit, and held for the residual add.

    * ``x``: the row's ``C = n/lanes`` beats of ``lanes`` codes are written to the row memory
      while the peak is tracked; the shift (the peak's bits above ``NORM_IN_BITS``,
      :func:`rtl.common.arith.norm_shift`) is then known;
    * ``out``: from the next cycle, the ``C`` beats are read back (combinational read port),
      shifted right half even and sent with their gains and the shift (the
      :class:`rtl.vitallm.norm_quant.NormQuant` input beat, :func:`rtl.vitallm.norm_quant.input_layout`);
    * ``res``: from the same cycle, the held row, one code per beat in order; the row memory
      takes the next row (``x`` ready again) once the ``C`` norm beats are sent and the last
      ``res`` code is taken, in whichever order they finish.

    Timing, no idle input and no back-pressure: ``x`` beats in cycles ``0 … C − 1``, ``out``
    beats in ``C … 2C − 1``, the first ``res`` code in cycle ``C``.

    Parameters
    ----------
    params : NormQuantParams
        The norm unit fed (``n``, ``lanes``, ``shift_width``, gain format).
    res_width : int
        Bits of the residual codes; the shift must fit ``params.shift_width``.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(res_width), lanes)))``
    gamma : ``In(ArrayLayout(signed(19), n))``: the norm's gains (static)
    out : ``Out(stream.Signature(input_layout(params)))``
    res : ``Out(stream.Signature(signed(res_width)))``
    """

    def __init__(self, params: nq.NormQuantParams, res_width: int):
        if not isinstance(params, nq.NormQuantParams):
            self._MustUse__silence = True
            raise HwsimError(f"RowShift needs NormQuantParams, not {type(params).__name__}")
        ok = isinstance(res_width, int) and not isinstance(res_width, bool) and res_width >= 2
        need = max(1, (res_width - lc.NORM_IN_BITS).bit_length()) if ok else 0
        if not ok or need > params.shift_width:
            self._MustUse__silence = True
            raise HwsimError(f"RowShift res_width {res_width!r} needs a {need}-bit shift, the "
                             f"norm unit has {params.shift_width}")
        self.params, self.res_width = params, res_width
        gw = params.norm().gamma.width
        super().__init__({
            "x": In(stream.Signature(data.ArrayLayout(signed(res_width), params.lanes))),
            "gamma": In(data.ArrayLayout(signed(gw), params.n)),
            "out": Out(stream.Signature(input_layout(params))),
            "res": Out(stream.Signature(signed(res_width))),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, LN, RW = p.chunks, p.lanes, self.res_width

        # ---- the row: stored, its peak |x| tracked -------------------------------------------
        buf = Memory(shape=unsigned(LN * RW), depth=C, init=[])
        m.submodules.row = buf
        wr = buf.write_port()
        rd = buf.read_port(domain="comb")         # the norm's beats
        rr = buf.read_port(domain="comb")         # the residual codes
        cnt = Signal(range(C))
        mags = []
        for l in range(LN):
            v = self.x.payload[l]
            mag = Signal(unsigned(RW), name=f"mag{l}")
            m.d.comb += mag.eq(Mux(v < 0, -v, v))
            mags.append(mag)
        beat_peak = Signal(unsigned(RW))
        peak = Signal(unsigned(RW))
        shift = Signal(unsigned(p.shift_width))
        m.d.comb += [beat_peak.eq(max_tree(mags)), wr.addr.eq(cnt),
                     wr.data.eq(self.x.payload.as_value()), rd.addr.eq(cnt),
                     shift.eq(norm_shift(peak, lc.NORM_IN_BITS))]

        # ---- shifted beats with their gains to the norm unit --------------------------------
        gamma = Signal(data.ArrayLayout(signed(len(self.gamma[0])), LN))
        with m.Switch(cnt):
            for c in range(C):
                with m.Case(c):
                    m.d.comb += gamma.eq(Cat(*(self.gamma[c * LN + l] for l in range(LN))))
        xw = p.norm().x.width
        shifted = []
        for l in range(LN):
            v = Signal(signed(xw), name=f"shifted{l}")
            m.d.comb += v.eq(round_shift(rd.data[RW * l:RW * (l + 1)].as_signed(), shift,
                                         Rounding.HALF_EVEN))
            shifted.append(v)
        m.d.comb += [self.out.payload.x.eq(Cat(*shifted)), self.out.payload.g.eq(gamma),
                     self.out.payload.shift.eq(shift)]

        # ---- the held row's codes, one per beat ---------------------------------------------
        rc = Signal(range(C))
        rl = Signal(range(LN))
        held = Signal()
        m.d.comb += rr.addr.eq(rc)
        with m.Switch(rl):
            for l in range(LN):
                with m.Case(l):
                    m.d.comb += self.res.payload.eq(rr.data[RW * l:RW * (l + 1)].as_signed())
        m.d.comb += self.res.valid.eq(held)
        last_code = Signal()
        m.d.comb += last_code.eq(self.res.valid & self.res.ready & (rc == C - 1) &
                                 (rl == LN - 1))
        with m.If(self.res.valid & self.res.ready):
            m.d.sync += rl.eq(Mux(rl == LN - 1, 0, rl + 1))
            with m.If(rl == LN - 1):
                m.d.sync += rc.eq(Mux(rc == C - 1, 0, rc + 1))
        with m.If(last_code):
            m.d.sync += held.eq(0)

        with m.FSM():
            with m.State("LOAD"):
                m.d.comb += self.x.ready.eq(1)
                with m.If(self.x.valid):
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += [peak.eq(Mux((cnt == 0) | (beat_peak > peak), beat_peak, peak)),
                                 cnt.eq(Mux(cnt == C - 1, 0, cnt + 1))]
                    with m.If(cnt == C - 1):
                        m.d.sync += held.eq(1)
                        m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.out.valid.eq(1)
                with m.If(self.out.ready):
                    m.d.sync += cnt.eq(Mux(cnt == C - 1, 0, cnt + 1))
                    with m.If(cnt == C - 1):
                        m.next = "HOLD"
            with m.State("HOLD"), m.If(~held | last_code):
                m.next = "LOAD"
        return m
