"""The wide ε divider: ``eps_code(E, shift, amax, power)`` for a wide build-time constant ``E``.

Specification: :mod:`hwsim.golden.vitallm.eps_divider` (golden, widths, cycle formula). This module
only builds the hardware.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import eps_divider as spec
from hwsim.golden.vitallm import layer_codes as lc

__all__ = ["EpsDivider"]


class EpsDivider(wiring.Component):
    """``code = min(floor((2E + D) / (2D)), EPS_CAP)``, ``D = amax**power · 4**shift``.

    A ``start`` cycle latches ``amax`` and ``shift``; ``power − 1`` cycles multiply the
    running power by ``amax`` (one ``(power·amax_width) × amax_width`` multiplier); one cycle
    forms ``N = 2E + D``, the divisor ``2D`` and the saturation flag ``floor(N / 2**Q) ≥ 2D``
    (``Q = QUOTIENT_BITS``: the quotient would reach ``EPS_CAP``; ``D = 0`` sets it too); then
    ``Q`` restoring steps, one quotient bit per cycle, MSB first (compare the remainder with
    ``2D · 2**i``, subtract when not below).

    Latency: ``done`` rises :func:`hwsim.golden.vitallm.eps_divider.latency_cycles` cycles after the
    ``start`` cycle and stays high with ``code`` valid until the next ``start`` (which clears
    it the next cycle). ``start`` while busy restarts.

    Members
    -------
    e : ``In(unsigned(e_width))``: ``E``, held while the divider runs.
    amax : ``In(unsigned(amax_width))``, shift : ``In(unsigned(shift_width))``: sampled at
        ``start``.
    start : ``In(1)``; done : ``Out(1)``; code : ``Out(unsigned(Q + 1))``
    """

    def __init__(self, params: spec.EpsDividerParams):
        if not isinstance(params, spec.EpsDividerParams):
            self._MustUse__silence = True
            raise HwsimError(f"EpsDivider needs EpsDividerParams, not {type(params).__name__}")
        self.params = p = params
        super().__init__({
            "e": In(unsigned(p.e_width)),
            "amax": In(unsigned(p.amax_width)),
            "shift": In(unsigned(p.shift_width)),
            "start": In(1),
            "done": Out(1),
            "code": Out(unsigned(spec.QUOTIENT_BITS + 1)),
        })

    def elaborate(self, platform):
        p = self.params
        m = Module()
        Q = spec.QUOTIENT_BITS
        DW, NW = p.d_width, p.n_width

        am = Signal(unsigned(p.amax_width))
        sh = Signal(unsigned(p.shift_width))
        pw = Signal(unsigned(p.power * p.amax_width))          # amax**k, k = 1 … power
        cnt = Signal(range(max(p.power, Q) + 1))
        rem = Signal(unsigned(NW))
        dsh = Signal(unsigned(DW + 1 + Q))                      # 2D · 2**i
        quo = Signal(unsigned(Q))
        sat = Signal()

        d = Signal(unsigned(DW))
        n = Signal(unsigned(NW))
        dv = Signal(unsigned(DW + 1))
        m.d.comb += [d.eq(pw << (sh * 2)), n.eq((self.e << 1) + d), dv.eq(d << 1),
                     self.code.eq(Mux(sat, lc.EPS_CAP, quo))]
        fits = Signal()
        diff = Signal(unsigned(NW + 1))
        m.d.comb += [diff.eq(rem - dsh), fits.eq(rem >= dsh)]

        IDLE, POWER, LOAD, DIVIDE = range(4)
        phase = Signal(range(4))
        with m.Switch(phase):
            with m.Case(POWER):
                m.d.sync += [pw.eq(pw * am), cnt.eq(cnt - 1)]
                with m.If(cnt == 1):
                    m.d.sync += phase.eq(LOAD)
            with m.Case(LOAD):
                m.d.sync += [rem.eq(n), dsh.eq(dv << (Q - 1)), quo.eq(0), cnt.eq(Q - 1),
                             sat.eq((n >> Q) >= dv), phase.eq(DIVIDE)]
            with m.Case(DIVIDE):
                m.d.sync += [quo.eq((quo << 1) | fits), dsh.eq(dsh >> 1),
                             rem.eq(Mux(fits, diff, rem)), cnt.eq(cnt - 1)]
                with m.If(cnt == 0):
                    m.d.sync += [self.done.eq(1), phase.eq(IDLE)]
        with m.If(self.start):       # last: a start overrides whatever the phase did
            m.d.sync += [am.eq(self.amax), sh.eq(self.shift), pw.eq(self.amax),
                         cnt.eq(p.power - 1), self.done.eq(0),
                         phase.eq(POWER if p.power > 1 else LOAD)]
        return m
