"""Normalized integer reciprocal by restoring division (one quotient bit per cycle).

Computes exactly :func:`hwsim.golden.common.softmax_int.reciprocal`: for an unsigned ``value``,
``k = bitlen(value) − 1 + recip_bits`` and ``r = floor(2**k / value)`` (``r = 0``, ``k =
recip_bits`` for ``value = 0``). The divisor is normalized by its leading one, so the quotient
always has ``recip_bits + 1`` bits whatever the magnitude of ``value``.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError

__all__ = ["Reciprocal"]


class Reciprocal(wiring.Component):
    """Sequential reciprocal: ``start`` with ``value`` in cycle ``c``; ``r`` and ``k`` are valid
    and ``done`` is high from cycle ``c + recip_bits + 2`` on (one cycle to normalize, then
    ``recip_bits + 1`` quotient bits), until the next ``start``.

    Parameters
    ----------
    width : int
        Bits of ``value``.
    recip_bits : int
        Quotient precision (``r`` has ``recip_bits + 1`` bits).

    Members
    -------
    start : ``In(1)``; value : ``In(unsigned(width))``
    r : ``Out(unsigned(recip_bits + 1))``; k : ``Out(range(width + recip_bits))``; done : ``Out(1)``
    """

    def __init__(self, width: int, recip_bits: int):
        if width < 1 or recip_bits < 1:
            raise HwsimError(f"Reciprocal needs width ≥ 1 and recip_bits ≥ 1, got {width}, "
                             f"{recip_bits}")
        self.width, self.recip_bits = width, recip_bits
        super().__init__({
            "start": In(1),
            "value": In(unsigned(width)),
            "r": Out(unsigned(recip_bits + 1)),
            "k": Out(range(width + recip_bits)),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        W, RB = self.width, self.recip_bits
        bitlen = Signal(range(W + 1))
        for i in range(W):  # the last assignment wins: the highest set bit
            with m.If(self.value[i]):
                m.d.comb += bitlen.eq(i + 1)
        lead = Signal(range(W + 1))  # leading zeros
        norm = Signal(W)
        m.d.comb += [lead.eq(W - bitlen), norm.eq((self.value << lead)[:W])]

        div = Signal(W)
        rem = Signal(W + 1)
        quo = Signal(RB + 1)
        count = Signal(range(RB + 2))
        busy = Signal()
        zero = Signal()
        m.d.comb += [self.r.eq(Mux(zero, 0, quo)), self.done.eq(~busy)]
        with m.If(self.start):
            m.d.sync += [
                div.eq(norm), rem.eq(1 << (W - 1)), quo.eq(0), count.eq(RB + 1), busy.eq(1),
                zero.eq(self.value == 0),
                self.k.eq(Mux(bitlen == 0, 0, bitlen - 1) + RB),
            ]
        with m.Elif(busy):
            ge = rem >= div
            m.d.sync += [
                quo.eq((quo << 1) | ge),
                rem.eq((rem - Mux(ge, div, 0)) << 1),
                count.eq(count - 1),
            ]
            with m.If(count == 1):
                m.d.sync += busy.eq(0)
        return m
