"""The FFN's gated product ``relu(g)²·u`` of two accumulator streams, exact.

Specification: :func:`hwsim.golden.vitallm.layer_codes.relu2_mul` (widths and depth from
:mod:`hwsim.golden.vitallm.ffn_in`). This module only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm.ffn_in import RELU2_DEPTH

__all__ = ["Relu2Mul"]


class Relu2Mul(wiring.Component):
    """``y = max(g, 0)² · u``, one element per beat, ``RELU2_DEPTH`` (2) register stages.

    ``g`` and ``u`` are joined (a transfer needs both valid); stage 1 registers the square
    ``relu(g)²`` (unsigned, ``2·(acc_width − 1)`` bits) and ``u``; stage 2 is the output
    register holding the product. With ``|g|, |u| ≤ bound`` the product fits ``out_width``
    signed bits when ``bound³ < 2**(out_width − 1)`` (checked here). Back-pressure on ``y``
    stalls both stages; one beat per cycle otherwise.

    Parameters
    ----------
    acc_width : int
        Signed bits of ``g`` and ``u`` (the MVUs' accumulators).
    out_width : int
        Signed bits of ``y``.
    bound : int
        The largest ``|g|``, ``|u|`` (``FfnInParams.acc_bound``).

    Members
    -------
    g, u : ``In(stream.Signature(signed(acc_width)))``
    y : ``Out(stream.Signature(signed(out_width)))``
    """

    def __init__(self, acc_width: int, out_width: int, bound: int):
        for name, v in (("acc_width", acc_width), ("out_width", out_width), ("bound", bound)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                self._MustUse__silence = True
                raise HwsimError(f"Relu2Mul {name} must be a positive integer, not {v!r}")
        if bound >= 1 << (acc_width - 1) or bound ** 3 >= 1 << (out_width - 1):
            self._MustUse__silence = True
            raise HwsimError(f"Relu2Mul: |g|, |u| ≤ {bound} do not fit {acc_width} bits or "
                             f"their product {out_width} bits")
        self.acc_width, self.out_width = acc_width, out_width
        super().__init__({
            "g": In(stream.Signature(signed(acc_width))),
            "u": In(stream.Signature(signed(acc_width))),
            "y": Out(stream.Signature(signed(out_width))),
        })

    def elaborate(self, platform):
        m = Module()
        AW = self.acc_width
        assert RELU2_DEPTH == 2    # the two stages below
        advance = Signal()
        s1_valid = Signal()
        take = Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready),
                     take.eq(self.g.valid & self.u.valid & advance),
                     self.g.ready.eq(self.u.valid & advance),
                     self.u.ready.eq(self.g.valid & advance)]

        # ---- stage 1: relu(g)², u delayed ----------------------------------------------------
        gp = Signal(unsigned(AW - 1))
        m.d.comb += gp.eq(Mux(self.g.payload[-1], 0, self.g.payload[:AW - 1]))
        sq = Signal(unsigned(2 * (AW - 1)))
        u1 = Signal(signed(AW))
        with m.If(advance):
            m.d.sync += s1_valid.eq(take)
            with m.If(take):
                m.d.sync += [sq.eq(gp * gp), u1.eq(self.u.payload)]

        # ---- stage 2: the product into the output register ----------------------------------
        with m.If(advance):
            m.d.sync += self.y.valid.eq(s1_valid)
            with m.If(s1_valid):
                m.d.sync += self.y.payload.eq(sq * u1)
        return m
