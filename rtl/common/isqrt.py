"""Digit-by-digit integer square root (one root bit per cycle).

Computes exactly :func:`hwsim.golden.common.isqrt.isqrt`: ``floor(sqrt(value))`` of an
unsigned ``value``. Shared by the integer norms (:mod:`rtl.vitallm.rmsnorm_int`,
:mod:`rtl.common.layernorm`).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common.isqrt import sqrt_steps

__all__ = ["ISqrt"]


class ISqrt(wiring.Component):
    """Sequential square root: ``start`` with ``value`` in cycle ``c``; the root is computed in
    cycles ``c + 1 … c + S`` (``S = (width + 1) // 2``, one root bit per cycle). In cycle
    ``c + S`` ``last`` is high and ``root_next`` holds the root (combinationally, so a
    follower can start in that cycle); from cycle ``c + S + 1`` on ``root`` holds it and
    ``done`` is high, until the next ``start``.

    Members
    -------
    start : ``In(1)``; value : ``In(unsigned(width))``
    root_next, root : ``Out(unsigned(width))``; last, done : ``Out(1)``
    """

    def __init__(self, width: int):
        if width < 1:
            raise HwsimError(f"ISqrt needs width ≥ 1, not {width}")
        self.width = width
        self.steps = sqrt_steps(width)
        super().__init__({
            "start": In(1),
            "value": In(unsigned(width)),
            "root_next": Out(unsigned(width)),
            "root": Out(unsigned(width)),
            "last": Out(1),
            "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        W, S = self.width, self.steps
        op = Signal(W)      # remaining operand
        res = Signal(W)
        one = Signal(2 * S)
        cnt = Signal(range(S + 1))
        trial = Signal(W + 2)
        m.d.comb += trial.eq(res + one)
        ge = op >= trial
        m.d.comb += [self.root_next.eq(Mux(ge, (res >> 1) + one, res >> 1)),
                     self.last.eq(cnt == 1), self.done.eq(cnt == 0), self.root.eq(res)]
        with m.If(self.start):
            m.d.sync += [op.eq(self.value), res.eq(0), one.eq(1 << (2 * (S - 1))), cnt.eq(S)]
        with m.Elif(cnt != 0):
            m.d.sync += [op.eq(Mux(ge, op - trial, op)), res.eq(self.root_next),
                         one.eq(one >> 2), cnt.eq(cnt - 1)]
        return m
