"""2-D max-pooling unit: a sliding-window unit and a running-maximum comparator stage.

Specification: :mod:`hwsim.golden.common.maxpool` (golden function, dependencies, cycle
model). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import maxpool as spec

from .conv_window import ConvWindow

__all__ = ["MaxPool"]


class MaxPool(wiring.Component):
    """NHWC pixel stream in, one pooled pixel (``channels`` codes) per output pixel out.

    A :class:`~rtl.common.conv_window.ConvWindow` (padding code: the smallest code) issues
    each window's ``kernel²`` pixels in order ``ky``, ``kx``, channel beat. The comparator
    stage takes one window beat per cycle while ``y`` is not stalled (``advance = ~y.valid |
    y.ready``): a ring of ``channels/lanes`` registers holds the running maximum of each
    channel beat (the first pixel of a window replaces it, the others compare per lane,
    signed or unsigned as the codes); the beats of a window's last pixel go to the output
    register, so a pooled beat is on ``y`` one cycle after the window unit gave its last
    pixel's beat. Back-pressure on ``y`` stalls the window unit's output only. Timing (no
    idle input, no back-pressure): :func:`hwsim.golden.common.maxpool.output_beat_cycles`;
    throughput one output pixel per ``kernel² · channels/lanes`` cycles.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Pixels in row-major order, ``channels/lanes`` beats each, lane 0 the lowest channel.
    y : ``Out(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        Pooled pixels in row-major order of output pixels, ``channels/lanes`` beats each.
    """

    def __init__(self, params: spec.MaxPoolParams):
        if not isinstance(params, spec.MaxPoolParams):
            self._MustUse__silence = True
            raise HwsimError(f"MaxPool needs MaxPoolParams, not {type(params).__name__}")
        self.params = p = params
        code = signed(8) if p.signed else unsigned(8)
        super().__init__({"x": In(stream.Signature(data.ArrayLayout(code, p.lanes))),
                          "y": Out(stream.Signature(data.ArrayLayout(code, p.lanes)))})

    def elaborate(self, platform):
        p = self.params
        m = Module()
        m.submodules.window = window = ConvWindow(p.window)
        wiring.connect(m, wiring.flipped(self.x), window.x)
        wy = window.y
        k2, cbs, w = p.kernel * p.kernel, p.pixel_beats, 8 * p.lanes

        advance, take = Signal(), Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready),
                     wy.ready.eq(advance),
                     take.eq(wy.valid & advance)]
        cb = Signal(range(max(cbs, 2)))
        pix = Signal(range(max(k2, 2)))
        ring = [Signal(w, name=f"max{i}") for i in range(cbs)]  # ring[0]: this beat's maxima
        new = Signal(w)
        for lane in range(p.lanes):
            b = wy.payload[lane]
            a = ring[0][8 * lane:8 * lane + 8]
            a = a.as_signed() if p.signed else a
            m.d.comb += new[8 * lane:8 * lane + 8].eq(Mux((pix == 0) | (b > a), b, a))
        last_pix, last_cb = pix == k2 - 1, cb == cbs - 1
        with m.If(advance):
            m.d.sync += self.y.valid.eq(take & last_pix)
        with m.If(take):
            m.d.sync += [ring[i].eq(ring[i + 1]) for i in range(cbs - 1)]
            m.d.sync += [ring[-1].eq(new), cb.eq(Mux(last_cb, 0, cb + 1))]
            with m.If(last_cb):
                m.d.sync += pix.eq(Mux(last_pix, 0, pix + 1))
            with m.If(last_pix):
                m.d.sync += self.y.payload.as_value().eq(new)
        return m
