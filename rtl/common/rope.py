"""Rotary position embedding on int8 codes: one code per beat, token-major.

Specification: :mod:`hwsim.golden.common.rope` (golden function, cycle formulas). This module
only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import rope as spec
from quant.qtype import INT8
from rtl.common import round_shift, saturate

__all__ = ["Rope"]


class Rope(wiring.Component):
    """``y = sat_int8(round_half_even(a · mult · 2**-shift))`` of the rotated pairs.

    Per head, the first ``half`` beats (``x_i``) shift into an ``half``-deep code shift
    register and give no output. Beat ``i + half`` of the second half meets ``x_i`` at the
    register's end and the tables' words ``C``, ``S`` of ``(token, i)`` (two ROMs of
    ``tokens · half`` words, synchronous read ports addressed one cycle ahead by the next
    state of the position counters); it computes both ``a_i = x_i·C − x_{i+half}·S`` (to the
    accumulator register, stage 1) and ``a_{i+half} = x_{i+half}·C + x_i·S`` (into an
    ``half``-deep accumulator shift register). After a head's last beat, those ``half``
    accumulators drain into stage 1, one per cycle, whether or not input arrives (while the
    next head's first half is accepted, or while the input is idle): the last head of a stream
    needs no further input. Stage 2 multiplies by ``mult``, rounds half even by ``shift`` and
    saturates into the ``y`` register.

    Every register advances together (``advance = ~y.valid | y.ready``; ``x.ready = advance``
    except on a second-half beat while the previous head still drains, which never happens
    without back-pressure). Timing (no idle input, no back-pressure): ``y`` beat ``k`` is
    presented :func:`~hwsim.golden.common.rope.latency_cycles` ``= half + 2`` cycles after
    ``x`` beat ``k`` was accepted; one beat per cycle. The position counter (the tables' row)
    advances per token and wraps after ``tokens`` tokens.

    Members
    -------
    x : ``In(stream.Signature(ArrayLayout(signed(8), 1)))``
        Codes of ``(tokens, heads, head_dim)`` in row-major order, one per beat.
    y : ``Out(stream.Signature(ArrayLayout(signed(8), 1)))``
        The rotated codes in the same order.
    """

    def __init__(self, params: spec.RopeParams):
        if not isinstance(params, spec.RopeParams):
            self._MustUse__silence = True  # never elaborated: no "created but never used" warning
            raise HwsimError(f"Rope needs RopeParams, not {type(params).__name__}")
        self.params = params
        layout = data.ArrayLayout(signed(8), 1)
        super().__init__({"x": In(stream.Signature(layout)),
                          "y": Out(stream.Signature(layout))})

    def elaborate(self, platform):
        p = self.params
        m = Module()
        h, H, T = p.half, p.heads, p.tokens
        acc_shape = signed(p.acc_width)

        # ---- position counters: pair index, half, head, token row base (tok · half) -------
        idx = Signal(range(max(h, 2)))
        second = Signal()
        head = Signal(range(max(H, 2)))
        base = Signal(range(max(T * h, 2)))
        drain = Signal(range(h + 1))  # accumulators of the last head still to send

        advance, take, pair, flush = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            advance.eq(~self.y.valid | self.y.ready),
            self.x.ready.eq(advance & ~(second & (drain != 0))),
            take.eq(self.x.valid & self.x.ready),
            pair.eq(take & second),
            flush.eq(advance & (drain != 0) & ~second),
        ]
        idx_n, second_n = Signal.like(idx), Signal()
        head_n, base_n = Signal.like(head), Signal.like(base)
        m.d.comb += [idx_n.eq(idx), second_n.eq(second), head_n.eq(head), base_n.eq(base)]
        with m.If(take):
            with m.If(idx == h - 1):
                m.d.comb += [idx_n.eq(0), second_n.eq(~second)]
                with m.If(second):
                    m.d.comb += head_n.eq(Mux(head == H - 1, 0, head + 1))
                    with m.If(head == H - 1):
                        m.d.comb += base_n.eq(Mux(base == (T - 1) * h, 0, base + h))
            with m.Else():
                m.d.comb += idx_n.eq(idx + 1)
        m.d.sync += [idx.eq(idx_n), second.eq(second_n), head.eq(head_n), base.eq(base_n)]
        with m.If(pair & (idx == h - 1)):
            m.d.sync += drain.eq(h)
        with m.Elif(flush):
            m.d.sync += drain.eq(drain - 1)

        # ---- tables: read one cycle ahead, so the data is that of (token, idx) now ---------
        words = [(int(c), int(s)) for rc, rs in zip(p.cos, p.sin, strict=True)
                 for c, s in zip(rc, rs, strict=True)]
        rom_c = Memory(shape=signed(p.table_bits), depth=T * h, init=[c for c, _ in words])
        rom_s = Memory(shape=signed(p.table_bits), depth=T * h, init=[s for _, s in words])
        m.submodules.rom_cos, m.submodules.rom_sin = rom_c, rom_s
        rd_c, rd_s = rom_c.read_port(), rom_s.read_port()
        for rd in (rd_c, rd_s):
            m.d.comb += [rd.addr.eq(base_n + idx_n), rd.en.eq(1)]

        # ---- the first-half codes and the second-half accumulators: shift registers ------
        lo = [Signal(signed(8), name=f"lo{i}") for i in range(h)]  # lo[0]: oldest
        hi_acc = [Signal(acc_shape, name=f"hi{i}") for i in range(h)]
        xin = self.x.payload[0]
        with m.If(take):
            m.d.sync += [lo[i].eq(lo[i + 1]) for i in range(h - 1)]
            m.d.sync += lo[-1].eq(xin)
        x_lo, C, S = lo[0], rd_c.data, rd_s.data
        a_lo, a_hi = Signal(acc_shape), Signal(acc_shape)
        m.d.comb += [a_lo.eq(x_lo * C - xin * S), a_hi.eq(xin * C + x_lo * S)]
        with m.If(pair | flush):
            m.d.sync += [hi_acc[i].eq(hi_acc[i + 1]) for i in range(h - 1)]
            m.d.sync += hi_acc[-1].eq(a_hi)

        # ---- stage 1: the accumulator of the next output code; stage 2: requantize --------
        acc, v1 = Signal(acc_shape), Signal()
        prod = Signal(signed(p.acc_width + spec.MULT_BITS + 1))
        m.d.comb += prod.eq(acc * Const(p.mult, spec.MULT_BITS + 1))
        rounded = round_shift(prod, Const(p.shift, 6), INT8.rounding)
        with m.If(advance):
            m.d.sync += [v1.eq(pair | flush), acc.eq(Mux(pair, a_lo, hi_acc[0])),
                         self.y.valid.eq(v1), self.y.payload[0].eq(saturate(rounded, INT8))]
        return m
