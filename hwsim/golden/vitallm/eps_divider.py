"""The wide ε divider: a norm row's ε code when the norm's input step depends on the row's amax.

Golden: :func:`hwsim.golden.vitallm.layer_codes.eps_code` (the layer's own),
``min(floor((2E + D) / (2D)), EPS_CAP)`` with ``D = amax**power · 4**shift``, for a build-time
constant ``E`` wider than 64 bits (161 bits for the trained BitNet-tiny's FFN SubLN, power 6).

Hardware (:class:`rtl.vitallm.eps_divider.EpsDivider`), one row at a time: ``amax**power`` by
repeated multiplication (``power − 1`` cycles), one cycle to form ``N = 2E + D``, ``2D`` and
the saturation compare ``N ≥ 2D · 2**Q`` (``Q = log2(EPS_CAP)``), then a restoring divider
that produces the ``Q`` quotient bits of ``N / 2D`` one per cycle (no more are needed once
the saturation compare failed). ``D = 0`` (``amax = 0``) saturates by the same compare.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.vitallm import layer_codes as lc

__all__ = ["QUOTIENT_BITS", "EpsDividerParams", "eps_divide", "latency_cycles"]

QUOTIENT_BITS = lc.EPS_CAP.bit_length() - 1      # Q: a code below the cap has 62 bits


@dataclass(frozen=True)
class EpsDividerParams:
    """The divider's widths, sized from the largest operands it admits.

    Parameters
    ----------
    e_width : int
        Bits of the norm's constant ``E`` (its bit length; 161 for the trained model).
    amax_width : int
        Bits of a row's amax (at most ``NORM_OUT.width``: the activation amax of int24 codes).
    max_shift : int
        The largest row shift (``prod_width − NORM_IN_BITS`` for a row of ``prod_width`` bits).
    power : int
        The power of amax in ``D`` (``FFN_SUB_EPS_POWER``).
    """

    e_width: int = 161
    amax_width: int = lc.NORM_OUT.width
    max_shift: int = 22
    power: int = lc.FFN_SUB_EPS_POWER

    def __post_init__(self):
        check_ints(self, "eps-divider", (("e_width", 1, 512),
                                         ("amax_width", 1, lc.NORM_OUT.width),
                                         ("max_shift", 0, 63), ("power", 1, 8)))

    @property
    def shift_width(self) -> int:
        """Bits of the ``shift`` port."""
        return max(1, self.max_shift.bit_length())

    @property
    def d_width(self) -> int:
        """Bits of ``D = amax**power · 4**shift`` at the largest amax and shift."""
        return self.power * self.amax_width + 2 * self.max_shift

    @property
    def n_width(self) -> int:
        """Bits of the dividend ``N = 2E + D``."""
        return max(self.e_width + 1, self.d_width) + 1


def eps_divide(E: int, shift: int, amax: int, p: EpsDividerParams) -> int:
    """Golden of one row: :func:`hwsim.golden.vitallm.layer_codes.eps_code` of ``E``, ``shift``,
    ``amax`` and ``p.power``, after checking that the operands fit ``p``."""
    for name, v, bits in (("E", E, p.e_width), ("amax", amax, p.amax_width)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << bits:
            raise HwsimError(f"eps-divider {name} must be an integer 0 … 2**{bits} − 1, "
                             f"not {v!r}")
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift <= p.max_shift:
        raise HwsimError(f"eps-divider shift must be 0 … {p.max_shift}, not {shift!r}")
    return lc.eps_code(E, shift, amax, p.power)


def latency_cycles(p: EpsDividerParams) -> int:
    """Cycles from the ``start`` cycle to the first cycle ``done`` is high (the code valid):
    the start cycle latches amax and shift, ``power − 1`` multiply cycles, one cycle forms the
    dividend, divisor and saturation flag, ``QUOTIENT_BITS`` restoring steps."""
    return 1 + (p.power - 1) + 1 + QUOTIENT_BITS
