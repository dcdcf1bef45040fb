"""The FFN's gated product ``silu(g)·u`` of two accumulator streams, with the integer SiLU.

Specification: :func:`hwsim.golden.vitallm.layer_codes.silu_mul` (table
:func:`~hwsim.golden.vitallm.layer_codes.silu_table`, formats ``GATE``, ``SILU_FRAC``,
``SILU_LUT_BITS``; depth from :mod:`hwsim.golden.vitallm.ffn_in`). This module only builds the
hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm.ffn_in import SILU_DEPTH
from quant.qtype import Rounding
from rtl.common.arith import round_shift, saturate

__all__ = ["SiluMul"]


class SiluMul(wiring.Component):
    """``y = silu_int(requantize(g · amax, mult, shift, GATE)) · u``, one element per beat,
    ``SILU_DEPTH`` (3) register stages.

    ``g`` and ``u`` are joined (a transfer needs both valid). Stage 1 registers the gate code
    ``n``: ``g · amax · mult`` rounded half even by ``shift`` and saturated to ``GATE`` (24
    bits); stage 2 the SiLU ``T[|n|]`` (a ``2**SILU_LUT_BITS``-entry ROM of 7-bit codes, 0
    beyond it) plus ``max(n, 0)``; stage 3 is the output register holding the product with
    ``u``. With ``|u| ≤ bound`` the product fits ``out_width`` signed bits when
    ``GATE.max_code · bound < 2**(out_width − 1)`` (checked here). Back-pressure on ``y`` stalls
    every stage; one beat per cycle otherwise.

    Parameters
    ----------
    acc_width : int
        Signed bits of ``g`` and ``u`` (the MVUs' accumulators).
    out_width : int
        Signed bits of ``y``.
    bound : int
        The largest ``|u|`` (``FfnInParams.acc_bound``).
    amax_width : int
        Bits of the token's ``amax``.

    Members
    -------
    g, u : ``In(stream.Signature(signed(acc_width)))``
    amax : ``In(unsigned(amax_width))``
        The token's FFN activation amax; held while its ``g`` beats enter.
    mult : ``In(unsigned(MULT_BITS))``, shift : ``In(unsigned(6))``
        The layer's gate requantizer ``(M, S)``. Static.
    y : ``Out(stream.Signature(signed(out_width)))``
    """

    def __init__(self, acc_width: int, out_width: int, bound: int, amax_width: int):
        for name, v in (("acc_width", acc_width), ("out_width", out_width), ("bound", bound),
                        ("amax_width", amax_width)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                self._MustUse__silence = True
                raise HwsimError(f"SiluMul {name} must be a positive integer, not {v!r}")
        if bound >= 1 << (acc_width - 1) or lc.GATE.max_code * bound >= 1 << (out_width - 1):
            self._MustUse__silence = True
            raise HwsimError(f"SiluMul: |u| ≤ {bound} does not fit {acc_width} bits or the "
                             f"product {out_width} bits")
        self.acc_width, self.out_width = acc_width, out_width
        super().__init__({
            "g": In(stream.Signature(signed(acc_width))),
            "u": In(stream.Signature(signed(acc_width))),
            "amax": In(unsigned(amax_width)),
            "mult": In(unsigned(lc.MULT_BITS)),
            "shift": In(unsigned(6)),
            "y": Out(stream.Signature(signed(self.out_width))),
        })

    def elaborate(self, platform):
        m = Module()
        AW, GW, LB = self.acc_width, lc.GATE.width, lc.SILU_LUT_BITS
        assert SILU_DEPTH == 3    # the three stages below
        advance, take = Signal(), Signal()
        s1_valid, s2_valid = Signal(), Signal()
        m.d.comb += [advance.eq(~self.y.valid | self.y.ready),
                     take.eq(self.g.valid & self.u.valid & advance),
                     self.g.ready.eq(self.u.valid & advance),
                     self.u.ready.eq(self.g.valid & advance)]

        # ---- stage 1: the gate code n = sat(round(g · amax · M / 2**S)) ---------------------
        t = Signal(signed(AW + len(self.amax) + lc.MULT_BITS + 1))
        m.d.comb += t.eq(self.g.payload * self.amax * self.mult)
        n = Signal(signed(GW))
        u1 = Signal(signed(AW))
        with m.If(advance):
            m.d.sync += s1_valid.eq(take)
            with m.If(take):
                m.d.sync += [n.eq(saturate(round_shift(t, self.shift, Rounding.HALF_EVEN),
                                           lc.GATE)),
                             u1.eq(self.u.payload)]

        # ---- stage 2: silu(n) = max(n, 0) + T[|n|] (T = 0 past the table) --------------------
        table = [int(v) for v in lc.silu_table()]
        m.submodules.table = rom = memory.Memory(shape=signed(7), depth=len(table), init=table)
        rd = rom.read_port(domain="comb")
        k = Signal(unsigned(GW))
        m.d.comb += [k.eq(Mux(n[-1], -n, n)), rd.addr.eq(k[:LB])]
        s = Signal(signed(GW + 1))
        u2 = Signal(signed(AW))
        with m.If(advance):
            m.d.sync += s2_valid.eq(s1_valid)
            with m.If(s1_valid):
                m.d.sync += [s.eq(Mux(n[-1], 0, n) + Mux(k[LB:] == 0, rd.data, 0)),
                             u2.eq(u1)]

        # ---- stage 3: the product into the output register ----------------------------------
        with m.If(advance):
            m.d.sync += self.y.valid.eq(s2_valid)
            with m.If(s2_valid):
                m.d.sync += self.y.payload.eq(s * u2)
        return m
