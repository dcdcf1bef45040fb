"""Stream glue between the kernels of a compiled design.

Every stream carries 8-bit codes, ``lanes`` per beat (``data.ArrayLayout``, lane 0 lowest);
a vector of ``n`` codes is ``n/lanes`` beats. None of these blocks drives ``valid`` from
``ready`` (no combinational path from a consumer's ``ready`` to a producer's ``valid``).

* :class:`Fifo` — ``depth`` beats, first-word fall-through (``SyncFIFOBuffered``): a beat
  written in cycle ``t`` is readable in cycle ``t + 2``.
* :class:`Serializer` — one beat of ``lanes`` codes → ``lanes`` beats of one code, lane 0
  first; takes a new beat in the cycle its last code leaves (one code per cycle sustained).
* :class:`Packer` — ``lanes`` beats of one code → one beat, the first code in lane 0; a full
  beat is presented the cycle after its last code arrives and codes keep arriving meanwhile
  (one code per cycle sustained).
* :class:`Fork` — one stream to ``n`` streams: a beat is taken when every output register is
  empty or being emptied, then presented on all outputs (registered, one cycle).
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError

__all__ = ["Fifo", "Fork", "Packer", "Serializer", "code_layout"]


def code_layout(signed: bool, lanes: int) -> data.ArrayLayout:
    """``lanes`` 8-bit codes, lane 0 in the low bits."""
    from amaranth.hdl import signed as s
    from amaranth.hdl import unsigned as u
    if lanes < 1:
        raise HwsimError(f"a code stream needs at least one lane, not {lanes}")
    return data.ArrayLayout(s(8) if signed else u(8), lanes)


def _sig(signed: bool, lanes: int) -> stream.Signature:
    return stream.Signature(code_layout(signed, lanes))


class Fifo(wiring.Component):
    """``depth`` beats of ``lanes`` codes, first-word fall-through.

    Members: ``i`` (``In`` stream), ``o`` (``Out`` stream), both ``lanes`` codes per beat.
    """

    def __init__(self, signed: bool, lanes: int, depth: int):
        if depth < 1:
            raise HwsimError(f"a FIFO needs depth ≥ 1, not {depth}")
        self.lanes, self.depth = lanes, depth
        super().__init__({"i": In(_sig(signed, lanes)), "o": Out(_sig(signed, lanes))})

    def elaborate(self, platform):
        m = Module()
        # a SyncFIFOBuffered of depth 2 passes only one beat every other cycle: 3 is the
        # least that takes a beat every cycle (a writer of one beat per cycle never waits)
        m.submodules.mem = fifo = SyncFIFOBuffered(width=8 * self.lanes,
                                                   depth=max(self.depth, 3))
        m.d.comb += [
            fifo.w_data.eq(self.i.payload.as_value()),
            fifo.w_en.eq(self.i.valid),
            self.i.ready.eq(fifo.w_rdy),
            self.o.payload.as_value().eq(fifo.r_data),
            self.o.valid.eq(fifo.r_rdy),
            fifo.r_en.eq(self.o.ready),
        ]
        return m


class Serializer(wiring.Component):
    """One beat of ``lanes`` codes → ``lanes`` one-code beats, lane 0 first.

    Members: ``i`` (``In``, ``lanes`` codes per beat), ``o`` (``Out``, one code per beat).
    """

    def __init__(self, signed: bool, lanes: int):
        self.lanes = lanes
        super().__init__({"i": In(_sig(signed, lanes)), "o": Out(_sig(signed, 1))})

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        held = Signal(8 * n)
        count = Signal(range(n + 1))  # codes of ``held`` not yet sent
        last = (count == 1) & self.o.ready
        m.d.comb += [
            self.o.valid.eq(count != 0),
            self.o.payload.as_value().eq(held[:8]),
            self.i.ready.eq((count == 0) | last),
        ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [held.eq(self.i.payload.as_value()), count.eq(n)]
        with m.Elif(self.o.valid & self.o.ready):
            m.d.sync += [held.eq(held >> 8), count.eq(count - 1)]
        return m


class Packer(wiring.Component):
    """``lanes`` one-code beats → one beat, the first code in lane 0.

    Members: ``i`` (``In``, one code per beat), ``o`` (``Out``, ``lanes`` codes per beat).
    """

    def __init__(self, signed: bool, lanes: int):
        self.lanes = lanes
        super().__init__({"i": In(_sig(signed, 1)), "o": Out(_sig(signed, lanes))})

    def elaborate(self, platform):
        m = Module()
        n = self.lanes
        fill = Signal(8 * n)
        count = Signal(range(n))
        out = Signal(8 * n)
        full = Signal()
        m.d.comb += [
            self.o.valid.eq(full),
            self.o.payload.as_value().eq(out),
            # a code may enter unless it would complete a beat while the last is still held
            self.i.ready.eq(~full | self.o.ready | (count != n - 1)),
        ]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += full.eq(0)
        with m.If(self.i.valid & self.i.ready):
            code = self.i.payload.as_value()
            if n == 1:
                m.d.sync += [out.eq(code), full.eq(1)]
            else:
                with m.If(count == n - 1):
                    m.d.sync += [out.eq(fill[8:] | (code << 8 * (n - 1))), full.eq(1),
                                 count.eq(0)]
                with m.Else():
                    m.d.sync += [fill.eq((fill >> 8) | (code << 8 * (n - 1))),
                                 count.eq(count + 1)]
        return m


class Fork(wiring.Component):
    """One stream to ``n`` copies (registered).

    Members: ``i`` (``In``), ``o0`` … ``o{n-1}`` (``Out``), all ``lanes`` codes per beat.
    """

    def __init__(self, signed: bool, lanes: int, n: int):
        self.n = n
        members = {"i": In(_sig(signed, lanes))}
        members.update({f"o{k}": Out(_sig(signed, lanes)) for k in range(n)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        outs = [getattr(self, f"o{k}") for k in range(self.n)]
        free = [~o.valid | o.ready for o in outs]
        take = Signal()
        m.d.comb += [self.i.ready.eq(free[0] if self.n == 1 else
                                     _all(free)), take.eq(self.i.valid & self.i.ready)]
        for o in outs:
            with m.If(take):
                m.d.sync += [o.valid.eq(1), o.payload.eq(self.i.payload)]
            with m.Elif(o.ready):
                m.d.sync += o.valid.eq(0)
        return m


def _all(values):
    out = values[0]
    for v in values[1:]:
        out = out & v
    return out
