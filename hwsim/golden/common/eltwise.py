"""Element-wise add or multiply of two quantized tensors (residual adds, gates ``x · g``).

The integer form of ``DequantizeLinear(a), DequantizeLinear(b) → Add|Mul [→ Relu] →
QuantizeLinear`` (the compiler's ``IntEltwise``, :mod:`hwsim.compile.dialect`). This module is
the specification of the ``Eltwise`` RTL in :mod:`rtl.common.eltwise`, the source of its cycle
formulas and of the estimator's action counts.

Numerics, on int8/uint8 codes ``a``, ``b`` with zero points ``za``, ``zb`` (exact integers,
no float anywhere):

* ``add``: ``t = (a − za) · Ma + (b − zb) · Mb``;
* ``mul``: ``t = (a − za) · (b − zb) · M``;
* ``y = sat_out(round_half_even(t · 2**−S) + zy)``, and with ``relu`` ``y = max(y, zy)``
  (:func:`quant.qtype.round_shift`, :meth:`quant.qtype.QType.fit`).

:func:`params_for` folds float scales into the integers: for ``add`` ``Ma · 2**−S ≈ sa / sy``
and ``Mb · 2**−S ≈ sb / sy`` share one shift (:func:`quant.qtype.quantize_multipliers_shared`,
the larger multiplier normalized to :data:`MULT_BITS` bits: relative error < 2**−23); for
``mul`` ``M · 2**−S ≈ sa · sb / sy`` (:func:`quant.qtype.quantize_multiplier`).

A tensor streams as beats of ``lanes`` codes (lane 0 in the low byte); ``a`` and ``b`` beats
pair one to one. The golden function takes whole arrays of any (numpy-broadcastable) shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import (
    QType,
    Rounding,
    quantize_multiplier,
    quantize_multipliers_shared,
    round_shift,
)

__all__ = [
    "MULT_BITS",
    "OPS",
    "PIPELINE_DEPTH",
    "EltwiseParams",
    "action_counts",
    "eltwise",
    "interval_cycles",
    "latency_cycles",
    "params_for",
    "real_factors",
    "storage_bits",
    "stream_cycles",
]

#: width of the unsigned integer multipliers (a 25 × 18 DSP takes a 24-bit M and a 9-bit code)
MULT_BITS = 24
#: the operations
OPS = ("add", "mul")
#: register stages from an accepted ``a``/``b`` beat pair to its ``y`` beat: zero points and
#: products, sum / rescale product, round + zero point + saturate (the output register)
PIPELINE_DEPTH = 3
#: the largest rounding shift
MAX_SHIFT = 62


@dataclass(frozen=True)
class EltwiseParams:
    """Elaboration parameters of the element-wise unit (every constant baked in).

    Parameters
    ----------
    lanes : int
        Codes per beat (element-wise operations per cycle).
    op : str
        ``"add"`` or ``"mul"``.
    a_signed, b_signed, out_signed : bool
        int8 (True) or uint8 (False) codes of ``a``, ``b`` and ``y``.
    a_zero, b_zero, out_zero : int
        Zero points (the code of real 0), each inside its code range.
    a_mult, b_mult : int
        ``add``: the multipliers ``Ma``, ``Mb`` (0 … 2**MULT_BITS − 1); ``mul`` ignores them.
    mult : int
        ``mul``: the multiplier ``M`` (1 … 2**MULT_BITS − 1); ``add`` ignores it.
    shift : int
        The rounding right shift ``S`` (0 … 62).
    relu : bool
        Clip the output at ``out_zero`` (``Add → Relu`` before the quantizer).
    out_narrow : bool
        Signed output without its most negative code (−127 … 127).

    Raises
    ------
    HwsimError
        On an unknown op, a zero point outside its range, a multiplier or shift outside its
        range, or ``mul`` without a multiplier.
    """

    lanes: int = 1
    op: str = "add"
    a_signed: bool = True
    b_signed: bool = True
    out_signed: bool = True
    a_zero: int = 0
    b_zero: int = 0
    out_zero: int = 0
    a_mult: int = 1 << (MULT_BITS - 1)
    b_mult: int = 1 << (MULT_BITS - 1)
    mult: int = 0
    shift: int = MULT_BITS - 1
    relu: bool = False
    out_narrow: bool = False

    def __post_init__(self):
        check_ints(self, "eltwise", (("lanes", 1, 4096),))
        if self.op not in OPS:
            raise HwsimError(f"eltwise op must be one of {', '.join(OPS)}, not {self.op!r}")
        for name in ("a_signed", "b_signed", "out_signed", "relu", "out_narrow"):
            if not isinstance(getattr(self, name), bool):
                raise HwsimError(f"eltwise {name} must be true or false, "
                                 f"not {getattr(self, name)!r}")
        for name, qt in (("a_zero", self.a), ("b_zero", self.b), ("out_zero", self.out)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) \
                    or not qt.min_code <= v <= qt.max_code:
                raise HwsimError(f"eltwise {name} must be an integer {qt.min_code} … "
                                 f"{qt.max_code} ({qt}), not {v!r}")
        for name in ("a_mult", "b_mult", "mult", "shift"):
            v = getattr(self, name)
            hi = MAX_SHIFT if name == "shift" else (1 << MULT_BITS) - 1
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi:
                raise HwsimError(f"eltwise {name} must be an integer 0 … {hi}, not {v!r}")
        if self.op == "mul" and self.mult == 0:
            raise HwsimError("eltwise op mul needs a multiplier mult > 0")

    @property
    def a(self) -> QType:
        """Format of ``a``: int8 or uint8."""
        return QType(8, signed=self.a_signed)

    @property
    def b(self) -> QType:
        """Format of ``b``: int8 or uint8."""
        return QType(8, signed=self.b_signed)

    @property
    def out(self) -> QType:
        """Output format: int8 (narrow where ``out_narrow``) or uint8, saturating, half even."""
        return QType(8, signed=self.out_signed, narrow=self.out_narrow and self.out_signed,
                     rounding=Rounding.HALF_EVEN)

    @property
    def a_peak(self) -> int:
        """The largest ``|a − za|``."""
        return max(self.a_zero - self.a.min_code, self.a.max_code - self.a_zero)

    @property
    def b_peak(self) -> int:
        """The largest ``|b − zb|``."""
        return max(self.b_zero - self.b.min_code, self.b.max_code - self.b_zero)

    @property
    def t_width(self) -> int:
        """Signed bits of ``t`` (the value before the rounding shift): never overflows."""
        if self.op == "add":
            peak = self.a_peak * self.a_mult + self.b_peak * self.b_mult
        else:
            peak = self.a_peak * self.b_peak * self.mult
        return max(peak, 1).bit_length() + 1


# ------------------------------------------------------------------------------------------
# The function
def eltwise(a, b, p: EltwiseParams) -> np.ndarray:
    """Golden element-wise unit: ``y = sat(round_half_even(t · 2**−S) + zy)`` (``relu``:
    ``max(y, zy)``), ``t = (a−za)·Ma + (b−zb)·Mb`` (add) or ``(a−za)·(b−zb)·M`` (mul).

    ``a``, ``b``: integer code arrays of ``p.a`` / ``p.b`` (any shapes numpy broadcasts).
    Returns int64 codes of ``p.out``.
    """
    da = p.a.check(a, "eltwise a") - p.a_zero
    db = p.b.check(b, "eltwise b") - p.b_zero
    if p.op == "add":
        t = da * p.a_mult + db * p.b_mult
    else:
        t = da * db * p.mult
    y = p.out.fit(round_shift(t, p.shift, Rounding.HALF_EVEN) + p.out_zero)
    return np.maximum(y, p.out_zero) if p.relu else y


def real_factors(p: EltwiseParams) -> tuple[float, ...]:
    """The real factors the integers stand for: ``(Ma·2**−S, Mb·2**−S)`` for add,
    ``(M·2**−S,)`` for mul."""
    mults = (p.a_mult, p.b_mult) if p.op == "add" else (p.mult,)
    return tuple(m * 2.0 ** -p.shift for m in mults)


def params_for(op: str, a_scale: float, a_zero: int, b_scale: float, b_zero: int,
               out_scale: float, out_zero: int, *, lanes: int = 1, a_signed: bool = True,
               b_signed: bool = True, out_signed: bool = True, relu: bool = False,
               out_narrow: bool = False, mult_bits: int = MULT_BITS) -> EltwiseParams:
    """The :class:`EltwiseParams` of ``y = Q_out(op(sa·(a − za), sb·(b − zb)))``: float scales
    folded into ``Ma, Mb`` (add, one shared shift) or ``M`` (mul) of ``mult_bits`` ≤
    :data:`MULT_BITS` bits."""
    if not 2 <= mult_bits <= MULT_BITS:
        raise HwsimError(f"eltwise multipliers have 2 … {MULT_BITS} bits, not {mult_bits}")
    for name, s in (("a_scale", a_scale), ("b_scale", b_scale), ("out_scale", out_scale)):
        if not (isinstance(s, int | float | np.floating) and np.isfinite(s) and s > 0):
            raise HwsimError(f"eltwise {name} must be a positive finite real, not {s!r}")
    common = dict(lanes=lanes, op=op, a_signed=bool(a_signed), b_signed=bool(b_signed),
                  out_signed=bool(out_signed), a_zero=int(a_zero), b_zero=int(b_zero),
                  out_zero=int(out_zero), relu=bool(relu), out_narrow=bool(out_narrow))
    if op == "add":
        (ma, mb), shift = quantize_multipliers_shared(
            [float(a_scale) / float(out_scale), float(b_scale) / float(out_scale)],
            bits=mult_bits, max_shift=MAX_SHIFT)
        return EltwiseParams(**common, a_mult=ma, b_mult=mb, mult=0, shift=shift)
    if op == "mul":
        m, shift = quantize_multiplier(float(a_scale) * float(b_scale) / float(out_scale),
                                       bits=mult_bits, max_shift=MAX_SHIFT)
        return EltwiseParams(**common, a_mult=0, b_mult=0, mult=m, shift=shift)
    raise HwsimError(f"eltwise op must be one of {', '.join(OPS)}, not {op!r}")


def storage_bits(p: EltwiseParams) -> int:
    """Bits of the RTL's registers (no memories): per lane the two operands, the products'
    sum and its rounded copy down the pipeline, and the output code."""
    return p.lanes * (16 + 2 * p.t_width + 8)


# ------------------------------------------------------------------------------------------
# Cycle formulas (the RTL docstring states these; cocotb and the Amaranth tests measure them)
def latency_cycles(p: EltwiseParams) -> int:
    """Cycles from the cycle an ``a``/``b`` beat pair is accepted to the cycle its ``y`` beat
    is first valid (the dataflow contract's latency): :data:`PIPELINE_DEPTH`."""
    return PIPELINE_DEPTH


def interval_cycles(p: EltwiseParams) -> int:
    """Initiation interval: one beat pair per cycle."""
    return 1


def stream_cycles(p: EltwiseParams, beats: int = 1) -> int:
    """Cycles from the first accepted beat pair to the last ``y`` beat, both counted, for
    ``beats`` back-to-back beats with no idle input and no back-pressure."""
    return beats * interval_cycles(p) + latency_cycles(p)


def action_counts(p: EltwiseParams, beats: int = 1) -> dict[str, int]:
    """Hardware actions for ``beats`` beats of ``lanes`` elements."""
    n = beats * p.lanes
    muls = {"requant_mul": 2 * n} if p.op == "add" else {"int8_mul": n, "requant_mul": n}
    return {
        "add8": 3 * n,  # two zero-point subtracts, the output zero point (with saturation)
        **muls,
        "add32": n * (2 if p.op == "add" else 1),  # the sum (add) and the rounding increment
        "register_read_bits": 16 * n,
        "out_bits": 8 * n,
        "cycles": stream_cycles(p, beats),
    }
