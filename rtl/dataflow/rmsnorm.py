"""An RMSNorm node of the dataflow top: the registry kernel ``rmsnorm``
(:class:`rtl.vitallm.rmsnorm_int.RmsNorm`) with its gains in a constant table and its
``eps_code`` tied off, between one-lane int8 code streams ``x`` → ``y``.

The kernel takes ``{x, g}`` beats: a counter over the vector's beats picks the gain of each
``x`` code from the table (the constants of the dialect op ``IntRmsNorm``); ``eps`` is the
constant ``eps_code``. Timing is the kernel's (:func:`hwsim.golden.vitallm.rmsnorm_int.
latency_cycles`): one vector at a time. Golden: :class:`hwsim.compile.dialect.IntRmsNorm`.
"""

from __future__ import annotations

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.golden.vitallm import rmsnorm_int as spec
from rtl.dataflow.glue import _sig
from rtl.vitallm.rmsnorm_int import RmsNorm

__all__ = ["RmsNormNode"]


class RmsNormNode(wiring.Component):
    """``RmsNorm(params)`` (``lanes`` codes per beat) with constant gains ``gamma`` (``n``
    codes) and ``eps_code``; streams ``x`` and ``y`` of signed int8 codes."""

    def __init__(self, params: spec.RmsNormParams, gamma, eps_code: int):
        assert len(gamma) == params.n and params.x.width == 8 and params.out.width == 8
        self.params, self.gamma, self.eps_code = params, [int(g) for g in gamma], int(eps_code)
        super().__init__({"x": In(_sig(True, params.lanes)), "y": Out(_sig(True, params.lanes))})

    def elaborate(self, platform):
        m = Module()
        p = self.params
        L, C = p.lanes, p.chunks
        m.submodules.norm = norm = RmsNorm(p)
        beat = Signal(range(C))
        gw = p.gamma.width
        rows = Array(Const(sum((self.gamma[c * L + j] & ((1 << gw) - 1)) << (j * gw)
                               for j in range(L)), L * gw) for c in range(C))
        take = self.x.valid & norm.inp.ready
        with m.If(take):
            m.d.sync += beat.eq(beat + 1 if C > 1 else 0)
            with m.If(beat == C - 1):
                m.d.sync += beat.eq(0)
        g = Signal(L * gw)
        m.d.comb += [
            g.eq(rows[beat]),
            norm.eps.eq(self.eps_code),
            norm.inp.valid.eq(self.x.valid),
            self.x.ready.eq(norm.inp.ready),
            norm.inp.payload.x.as_value().eq(self.x.payload.as_value()),
            norm.inp.payload.g.as_value().eq(g),
            self.y.valid.eq(norm.y.valid),
            norm.y.ready.eq(self.y.ready),
            self.y.payload.as_value().eq(norm.y.payload.as_value()),
        ]
        return m
