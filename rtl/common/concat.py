"""Concatenation of two code streams along the vector axis.

Specification: :mod:`hwsim.golden.common.concat` (golden function, cycle formulas). This
module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.common import concat as spec

__all__ = ["Concat"]


class Concat(wiring.Component):
    """``y = a ‖ b`` per vector: the ``len_a / lanes`` beats of ``a``, then the
    ``len_b / lanes`` beats of ``b``, each passed unchanged.

    One register stage (:data:`hwsim.golden.common.concat.PIPELINE_DEPTH`): a beat counter
    (0 … ``beats − 1``, wrapping per vector) selects the input; the selected stream's beat is
    taken when it is valid and the output advances (``advance = ~y.valid | y.ready``) and
    lands in the output register. The other stream's ``ready`` stays low, so a ``b`` beat that
    arrives early waits in its FIFO until the vector's ``a`` beats have passed.

    Latency and throughput (:mod:`hwsim.golden.common.concat`): a beat accepted in cycle ``c``
    is valid on ``y`` from cycle ``c + 1``; back-to-back beats pass one per cycle, so ``v``
    vectors take ``v · (len_a + len_b) / lanes + 1`` cycles from the first accepted ``a`` beat
    to the last ``y`` beat. Back-pressure on ``y`` holds the register and both inputs.

    Parameters
    ----------
    params : ConcatParams
        ``lanes``, ``len_a``, ``len_b``, ``signed``.

    Members
    -------
    a : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        The first part of each vector, ``len_a / lanes`` beats, lane 0 in the low 8 bits.
    b : ``In(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        The second part of each vector, ``len_b / lanes`` beats.
    y : ``Out(stream.Signature(ArrayLayout(signed(8) or unsigned(8), lanes)))``
        The concatenated vectors, ``(len_a + len_b) / lanes`` beats each, in order.
    """

    def __init__(self, params: spec.ConcatParams):
        if not isinstance(params, spec.ConcatParams):
            self._MustUse__silence = True  # never elaborated: no "created but never used" warning
            raise HwsimError(f"Concat needs ConcatParams, not {type(params).__name__}")
        self.params = p = params
        layout = data.ArrayLayout(signed(8) if p.signed else unsigned(8), p.lanes)
        super().__init__({
            "a": In(stream.Signature(layout)),
            "b": In(stream.Signature(layout)),
            "y": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()

        count = Signal(unsigned(p.count_width))
        from_a = Signal()
        advance = Signal()
        take = Signal()
        m.d.comb += [
            from_a.eq(count < p.beats_a),
            advance.eq(~self.y.valid | self.y.ready),
            self.a.ready.eq(advance & from_a),
            self.b.ready.eq(advance & ~from_a),
            take.eq(Mux(from_a, self.a.valid, self.b.valid)),
        ]
        with m.If(advance):
            m.d.sync += self.y.valid.eq(take)
        with m.If(advance & take):
            with m.If(from_a):
                m.d.sync += self.y.payload.eq(self.a.payload)
            with m.Else():
                m.d.sync += self.y.payload.eq(self.b.payload)
            with m.If(count == p.beats - 1):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m
