"""The composed SwiftChannel student: conv engines, skip FIFOs and SPAB gates in one dataflow.

Specification: :mod:`hwsim.golden.swiftchannel.pipeline` (parameters, golden function, cycle
formula). This module only builds hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.swiftchannel import pipeline as spec
from rtl.swiftchannel.conv import SwiftChannelConv
from rtl.swiftchannel.gate import SwiftChannelGate

__all__ = ["SwiftChannelPipeline"]


class SwiftChannelPipeline(wiring.Component):
    """The whole int8 student on a streamed LS image; every layer runs concurrently.

    ``head → [fork(c1, skip FIFO) → c1 → c2 → join(skip FIFO, c2) → gate] × B → tail → up``.
    The fork hands a pixel to the block's first conv and its skip FIFO in the same cycle (both
    must be ready); the join offers the gate a beat when the FIFO's head and the second conv's
    output are both there. Handshakes are ``amaranth.lib.stream`` throughout, so back-pressure
    anywhere stalls the producers behind it and no code is lost.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(unsigned(8), 2)))``
        One low-resolution input pixel per beat, raster order: its (re, im) uint8 codes, re
        lowest; ``H·W`` beats per frame.
    y : ``Out(stream.Signature(ArrayLayout(unsigned(8), 2·rf·rs)))``
        One beat per low-resolution pixel, raster order: the up conv's ``2·rf·rs`` uint8 codes,
        element ``c·rf·rs + i·rs + j`` = output pixel ``(rf·h + i, rs·w + j)`` of channel ``c``
        (the PixelShuffle).
    """

    def __init__(self, params: spec.PipelineParams):
        if not isinstance(params, spec.PipelineParams):
            raise HwsimError(f"SwiftChannelPipeline needs PipelineParams, not {type(params).__name__}")
        self.params = p = params
        super().__init__({
            "x": In(stream.Signature(data.ArrayLayout(unsigned(8), p.in_ch))),
            "y": Out(stream.Signature(data.ArrayLayout(unsigned(8), p.out_ch))),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        engines = [SwiftChannelConv(e) for e in p.conv_engines()]
        gates = [SwiftChannelGate(g) for g in p.gate_params()]
        m.submodules.head = engines[0]
        m.submodules.tail = engines[-2]
        m.submodules.up = engines[-1]
        wiring.connect(m, wiring.flipped(self.x), engines[0].x)
        src = engines[0].y
        for b, gate in enumerate(gates):
            c1, c2 = engines[1 + 2 * b], engines[2 + 2 * b]
            feat = len(src.payload)
            fifo = SyncFIFOBuffered(width=8 * feat, depth=p.skip_depth)
            m.submodules[f"block{b}_c1"] = c1
            m.submodules[f"block{b}_c2"] = c2
            m.submodules[f"block{b}_gate"] = gate
            m.submodules[f"block{b}_skip"] = fifo
            # fork: the pixel goes to c1 and into the skip FIFO in the same cycle
            m.d.comb += [
                c1.x.payload.eq(src.payload),
                c1.x.valid.eq(src.valid & fifo.w_rdy),
                fifo.w_data.eq(src.payload.as_value()),
                fifo.w_en.eq(src.valid & c1.x.ready),
                src.ready.eq(c1.x.ready & fifo.w_rdy),
            ]
            wiring.connect(m, c1.y, c2.x)
            # join: the gate takes x (skip FIFO) and c2 of the same pixel together
            m.d.comb += [
                gate.x.payload.x.eq(fifo.r_data),
                gate.x.payload.c.eq(c2.y.payload),
                gate.x.valid.eq(fifo.r_rdy & c2.y.valid),
                fifo.r_en.eq(c2.y.valid & gate.x.ready),
                c2.y.ready.eq(fifo.r_rdy & gate.x.ready),
            ]
            src = gate.y
        wiring.connect(m, src, engines[-2].x)
        wiring.connect(m, engines[-2].y, engines[-1].x)
        wiring.connect(m, engines[-1].y, wiring.flipped(self.y))
        return m
