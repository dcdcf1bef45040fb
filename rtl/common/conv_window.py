"""Sliding-window (im2col) unit: the first half of a quantized convolution in a dataflow design.

Specification: :mod:`hwsim.golden.common.conv_window` (golden function, dependencies, cycle
model). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import conv_window as spec

__all__ = ["ConvWindow"]


class ConvWindow(wiring.Component):
    """NHWC pixel stream in, one ``kernel · kernel_w · channels`` window per output pixel out.

    The line buffers are one memory of ``ring_rows · width · channels/lanes`` words of
    ``lanes`` codes (row ``r`` of the image in slot ``r mod ring_rows``). An input beat is
    written where its row is free: ``row < lowest + ring_rows``, ``lowest`` the first image row
    the current output row reads (clipped at 0), and the image's windows are not all issued
    yet from an earlier image. Window beats issue in order ``ky``, ``kx``, channel beat, one
    per cycle, once the window's last input pixel (:func:`~hwsim.golden.common.conv_window.
    dependencies`) was written in an earlier cycle; a beat outside the image is
    ``zero_point`` in every lane (nothing read). An issued beat is on ``y`` two cycles later
    (registered memory read, output register); back-pressure on ``y`` stalls the read
    pipeline only, input keeps being written where rows are free. Timing (no idle input, no
    back-pressure): :func:`hwsim.golden.common.conv_window.output_beat_cycles`.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Pixels in row-major order, ``channels/lanes`` beats each, lane 0 the lowest channel.
    y : ``Out(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Windows in row-major order of output pixels, ``kernel·kernel_w·channels/lanes`` beats
        each.
    """

    def __init__(self, params: spec.ConvWindowParams):
        if not isinstance(params, spec.ConvWindowParams):
            self._MustUse__silence = True
            raise HwsimError(f"ConvWindow needs ConvWindowParams, not {type(params).__name__}")
        self.params = p = params
        code = signed(8) if p.signed else unsigned(8)
        super().__init__({"x": In(stream.Signature(data.ArrayLayout(code, p.lanes))),
                          "y": Out(stream.Signature(data.ArrayLayout(code, p.lanes)))})

    def elaborate(self, platform):
        p = self.params
        m = Module()
        H, W, CB, NR = p.height, p.width, p.pixel_beats, p.ring_rows
        K, S, P = p.kernel, p.stride, p.pad            # along the rows
        KW, SW, PW = p.kernel_w, p.stride_w, p.pad_w   # along the columns
        OH, OW = p.out_height, p.out_width
        mem = Memory(shape=unsigned(8 * p.lanes), depth=p.depth, init=[])
        m.submodules.mem = mem
        wr, rd = mem.write_port(), mem.read_port()

        def counter(n):
            return Signal(range(max(n, 2)))

        # ---- input side --------------------------------------------------------------------
        in_cb, in_col, in_row, in_slot = counter(CB), counter(W), counter(H), counter(NR)
        written = Signal(range(H * W + 1))   # pixels of this image fully written
        in_done = Signal()                   # the whole image is written
        oy = counter(OH)
        # first row the current output row reads, clipped at 0
        first = Signal(signed(16))
        m.d.comb += first.eq(oy * S - P)
        lowest = Mux(first < 0, 0, first)
        take = Signal()
        m.d.comb += [
            self.x.ready.eq(~in_done & (in_row < lowest + NR)),
            take.eq(self.x.valid & self.x.ready),
            wr.addr.eq((in_slot * W + in_col) * CB + in_cb),
            wr.data.eq(self.x.payload.as_value()),
            wr.en.eq(take),
        ]
        last_cb, last_col, last_row = in_cb == CB - 1, in_col == W - 1, in_row == H - 1
        with m.If(take):
            m.d.sync += in_cb.eq(Mux(last_cb, 0, in_cb + 1))
            with m.If(last_cb):
                m.d.sync += [written.eq(written + 1), in_col.eq(Mux(last_col, 0, in_col + 1))]
                with m.If(last_col):
                    m.d.sync += [in_row.eq(Mux(last_row, 0, in_row + 1)),
                                 in_slot.eq(Mux(last_row | (in_slot == NR - 1), 0,
                                                in_slot + 1))]
                    with m.If(last_row):
                        m.d.sync += in_done.eq(1)

        # ---- output side: window counters, readiness, addresses ----------------------------
        ox, ky, kx, ocb = counter(OW), counter(K), counter(KW), counter(CB)
        base = Signal(range(max(NR, 2)), init=(-P) % NR)  # slot of image row oy·S − P
        row_need, col_need = Signal(signed(16)), Signal(signed(16))
        m.d.comb += [row_need.eq(first + (K - 1)),
                     col_need.eq(ox * SW - PW + (KW - 1))]
        dep = Signal(range(H * W))
        m.d.comb += dep.eq(Mux(row_need > H - 1, H - 1, row_need) * W
                           + Mux(col_need > W - 1, W - 1, col_need))
        ready = Signal()
        m.d.comb += ready.eq(written > dep)

        advance = Signal()
        m.d.comb += advance.eq(~self.y.valid | self.y.ready)
        issue = Signal()
        m.d.comb += issue.eq(advance & ready)

        iy, ix = Signal(signed(16)), Signal(signed(16))
        m.d.comb += [iy.eq(first + ky), ix.eq(ox * SW - PW + kx)]
        pad = Signal()
        m.d.comb += pad.eq((iy < 0) | (iy > H - 1) | (ix < 0) | (ix > W - 1))
        slot_sum = Signal(range(2 * NR + K))
        m.d.comb += slot_sum.eq(base + ky)
        slot = Mux(slot_sum >= NR, slot_sum - NR, slot_sum)
        m.d.comb += [rd.addr.eq((slot * W + ix.as_unsigned()[:max(W, 2).bit_length()]) * CB + ocb),
                     rd.en.eq(advance)]

        last_ocb, last_kx, last_ky = ocb == CB - 1, kx == KW - 1, ky == K - 1
        last_ox, last_oy = ox == OW - 1, oy == OH - 1
        base_start = (-P) % NR
        base_next = base + (S % NR)
        with m.If(issue):
            m.d.sync += ocb.eq(Mux(last_ocb, 0, ocb + 1))
            with m.If(last_ocb):
                m.d.sync += kx.eq(Mux(last_kx, 0, kx + 1))
                with m.If(last_kx):
                    m.d.sync += ky.eq(Mux(last_ky, 0, ky + 1))
                    with m.If(last_ky):
                        m.d.sync += ox.eq(Mux(last_ox, 0, ox + 1))
                        with m.If(last_ox):
                            m.d.sync += [oy.eq(Mux(last_oy, 0, oy + 1)),
                                         base.eq(Mux(base_next >= NR, base_next - NR,
                                                     base_next))]
                            with m.If(last_oy):  # the image's last window: next image
                                m.d.sync += [base.eq(base_start), written.eq(0),
                                             in_done.eq(0)]

        # ---- read pipeline: memory → output register ---------------------------------------
        s1_valid, s1_pad = Signal(), Signal()
        zero_word = 0
        for lane in range(p.lanes):
            zero_word |= (p.zero_point & 0xFF) << (8 * lane)
        with m.If(advance):
            m.d.sync += [s1_valid.eq(issue), s1_pad.eq(pad),
                         self.y.valid.eq(s1_valid)]
            with m.If(s1_valid):
                m.d.sync += self.y.payload.as_value().eq(Mux(s1_pad, zero_word, rd.data))
        return m
