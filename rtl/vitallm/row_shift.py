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
    """One row at a time: stored while its peak ``|x|`` is tracked, then sent shifted to a norm
    unit, and (``hold``) held for the residual add.

    * ``x``: the row's ``C = n/lanes`` beats of ``lanes`` codes (``serial``: its ``n`` codes,
      one per beat, each written to its lane) are written to the row memory while the peak is
      tracked; the shift (the peak's bits above ``NORM_IN_BITS``,
      :func:`rtl.common.arith.norm_shift`) is then known;
    * ``out``: from the next cycle, the ``C`` beats are read back (combinational read port),
      shifted right half even and sent with their gains and the shift (the
      :class:`rtl.vitallm.norm_quant.NormQuant` input beat, :func:`rtl.vitallm.norm_quant.input_layout`);
      the last beat waits for ``release``;
    * ``res`` (``hold``): from the same cycle, the held row, one code per beat in order; the
      row memory takes the next row (``x`` ready again) once the ``C`` norm beats are sent and
      the last ``res`` code is taken, in whichever order they finish. Without ``hold`` it takes
      the next row once the ``C`` norm beats are sent.

    Timing, no idle input, no back-pressure and ``release`` high: ``x`` beats in cycles
    ``0 … B − 1`` (``B = C``, ``serial``: ``n``), ``out`` beats in ``B … B + C − 1``, the first
    ``res`` code in cycle ``B``.

    Parameters
    ----------
    params : NormQuantParams
        The norm unit fed (``n``, ``lanes``, ``shift_width``, gain format).
    res_width : int
        Bits of the row's codes; the shift must fit ``params.shift_width``.
    serial : bool
        One code per ``x`` beat instead of ``lanes``.
    hold : bool
        Hold the row for the residual add (the ``res`` port).

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(res_width), lanes)))``
        (``serial``: ``signed(res_width)``)
    first : ``Out(1)``
        The next ``x`` beat is a row's first.
    gamma : ``In(ArrayLayout(signed(19), n))``: the norm's gains (static)
    out : ``Out(stream.Signature(input_layout(params)))``
    shift : ``Out(unsigned(params.shift_width))``
        The row's shift, valid while its ``out`` beats are pending.
    sending : ``Out(1)``
        The row's ``out`` beats are pending.
    release : ``In(1, init=1)``
        The last ``out`` beat may leave.
    res : ``Out(stream.Signature(signed(res_width)))`` (``hold`` only)
    """

    def __init__(self, params: nq.NormQuantParams, res_width: int, *, serial: bool = False,
                 hold: bool = True):
        if not isinstance(params, nq.NormQuantParams):
            self._MustUse__silence = True
            raise HwsimError(f"RowShift needs NormQuantParams, not {type(params).__name__}")
        ok = isinstance(res_width, int) and not isinstance(res_width, bool) and res_width >= 2
        need = max(1, max(0, res_width - lc.NORM_IN_BITS).bit_length()) if ok else 0
        if not ok or need > params.shift_width:
            self._MustUse__silence = True
            raise HwsimError(f"RowShift res_width {res_width!r} needs a {need}-bit shift, the "
                             f"norm unit has {params.shift_width}")
        self.params, self.res_width = params, res_width
        self.serial, self.hold = bool(serial), bool(hold)
        gw = params.norm().gamma.width
        x_shape = signed(res_width) if serial else data.ArrayLayout(signed(res_width), params.lanes)
        members = {
            "x": In(stream.Signature(x_shape)),
            "first": Out(1),
            "gamma": In(data.ArrayLayout(signed(gw), params.n)),
            "out": Out(stream.Signature(input_layout(params))),
            "shift": Out(unsigned(params.shift_width)),
            "sending": Out(1),
            "release": In(1, init=1),
        }
        if hold:
            members["res"] = Out(stream.Signature(signed(res_width)))
        super().__init__(members)

    def elaborate(self, platform):
        p = self.params
        m = Module()
        C, LN, RW = p.chunks, p.lanes, self.res_width

        # ---- the row: stored, its peak |x| tracked -------------------------------------------
        buf = Memory(shape=unsigned(LN * RW), depth=C, init=[])
        m.submodules.row = buf
        rd = buf.read_port(domain="comb")         # the norm's beats
        cnt = Signal(range(C))                    # the row's beat (x, out)
        take = Signal()
        if self.serial:
            lane = Signal(range(LN))              # the lane of the next x code
            wr = buf.write_port(granularity=RW)
            v = self.x.payload
            beat_peak = Signal(unsigned(RW))
            m.d.comb += [beat_peak.eq(Mux(v < 0, -v, v)), wr.data.eq(v.as_unsigned().replicate(LN))]
            with m.Switch(lane):
                for l in range(LN):
                    with m.Case(l):
                        m.d.comb += wr.en.eq(Mux(take, 1 << l, 0))
            row_end = lane == LN - 1
            m.d.comb += self.first.eq((cnt == 0) & (lane == 0))
        else:
            wr = buf.write_port()
            mags = []
            for l in range(LN):
                v = self.x.payload[l]
                mag = Signal(unsigned(RW), name=f"mag{l}")
                m.d.comb += mag.eq(Mux(v < 0, -v, v))
                mags.append(mag)
            beat_peak = Signal(unsigned(RW))
            m.d.comb += [beat_peak.eq(max_tree(mags)), wr.data.eq(self.x.payload.as_value()),
                         wr.en.eq(take)]
            row_end = 1
            m.d.comb += self.first.eq(cnt == 0)
        peak = Signal(unsigned(RW))
        shift = self.shift
        m.d.comb += [wr.addr.eq(cnt), rd.addr.eq(cnt), take.eq(self.x.valid & self.x.ready),
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
        if self.hold:
            held = Signal()
            last_code = Signal()
            rr = buf.read_port(domain="comb")     # the residual codes
            rc = Signal(range(C))
            rl = Signal(range(LN))
            m.d.comb += rr.addr.eq(rc)
            with m.Switch(rl):
                for l in range(LN):
                    with m.Case(l):
                        m.d.comb += self.res.payload.eq(rr.data[RW * l:RW * (l + 1)].as_signed())
            m.d.comb += [self.res.valid.eq(held),
                         last_code.eq(self.res.valid & self.res.ready & (rc == C - 1) &
                                      (rl == LN - 1))]
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
                    m.d.sync += peak.eq(Mux(self.first | (beat_peak > peak), beat_peak, peak))
                    if self.serial:
                        m.d.sync += lane.eq(Mux(lane == LN - 1, 0, lane + 1))
                    with m.If(row_end):
                        m.d.sync += cnt.eq(Mux(cnt == C - 1, 0, cnt + 1))
                        with m.If(cnt == C - 1):
                            if self.hold:
                                m.d.sync += held.eq(1)
                            m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += [self.sending.eq(1),
                             self.out.valid.eq((cnt != C - 1) | self.release)]
                with m.If(self.out.valid & self.out.ready):
                    m.d.sync += cnt.eq(Mux(cnt == C - 1, 0, cnt + 1))
                    with m.If(cnt == C - 1):
                        m.next = "HOLD" if self.hold else "LOAD"
            if self.hold:
                with m.State("HOLD"), m.If(~held | last_code):
                    m.next = "LOAD"
        return m
