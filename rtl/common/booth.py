"""Radix-4 Booth multiplier (VitaLLM's BoothFlex datapath) and the multiplier-style switch.

:func:`booth_multiply` builds ``a · b`` from ``ceil(width(b)/2)`` partial products, each
``digit · a · 4**j`` with a Booth digit in {−2, −1, 0, 1, 2} selected from three bits of ``b``
(:func:`hwsim.golden.common.int8_matmul.booth_digits` is the arithmetic, bit for bit). No ``*``
operator appears, so synthesis builds it from LUTs and carry chains and never infers a DSP.
In BoothFlex's ternary mode (``ternary`` high) ``b[0:2]`` is a ternary weight in bitnet.cpp's
I2_S code (0 → −1, 1 → 0, 2 → +1, 3 → 0): it becomes the single digit 0 and the other partial
products are gated off, so one datapath serves int8 × int8 attention and ternary × int8
projections.

:func:`multiply` picks a style: ``"dsp"`` writes the plain ``a * b`` that synthesis maps to
DSP48E2 slices, ``"booth"`` the Booth multiplier. Both are combinational and equal bit for bit.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Value, signed

from hwsim.errors import HwsimError

from .arith import adder_tree

__all__ = ["STYLES", "booth_multiply", "const_multiply", "multiply"]

#: multiplier styles accepted by :func:`multiply`
STYLES = ("dsp", "booth")


def _as_signed(v: Value) -> Value:
    """A signed view of ``v``: unsigned values gain a zero sign bit."""
    v = Value.cast(v)
    return v if v.shape().signed else Cat(v, Const(0, 1)).as_signed()


def booth_multiply(a: Value, b: Value, ternary: Value | None = None) -> Value:
    """``a · b`` (signed or unsigned operands) by radix-4 Booth recoding of ``b``.

    With ``ternary`` given, the product is ``a · t`` for the I2_S ternary code in ``b[0:2]``
    whenever ``ternary`` is high.
    """
    a = _as_signed(a)
    b = _as_signed(b)
    width = len(b)
    n = -(-width // 2)
    ext = Cat(b, b[-1].replicate(2 * n + 1 - width))  # sign-extended so every digit has 3 bits
    partials = []
    for j in range(n):
        hi, mid = ext[2 * j + 1], ext[2 * j]
        lo = ext[2 * j - 1] if j else Const(0, 1)
        one = mid ^ lo
        two = (hi & ~mid & ~lo) | (~hi & mid & lo)
        neg = hi
        if ternary is not None:
            if j == 0:
                code = b[:2]
                one = Mux(ternary, (code == 0) | (code == 2), one)
                two = Mux(ternary, 0, two)
                neg = Mux(ternary, code == 0, neg)
            else:
                one, two, neg = one & ~ternary, two & ~ternary, neg & ~ternary
        mag = Mux(one, a, Mux(two, a << 1, 0))
        partials.append(Mux(neg, -mag, mag) << (2 * j))
    return adder_tree(partials)


def const_multiply(a: Value, c: int) -> Value:
    """``a · c`` for a non-negative integer constant ``c``: a sum of shifted copies of ``a``."""
    if c < 0:
        raise HwsimError(f"const_multiply needs a non-negative constant, not {c}")
    a = _as_signed(a)
    terms = [a << i for i in range(c.bit_length()) if c >> i & 1]
    return adder_tree(terms) if terms else Const(0, signed(2))


def multiply(a: Value, b: Value, style: str) -> Value:
    """``a · b`` in the given style (``"dsp"`` or ``"booth"``); signed or unsigned operands."""
    if style == "dsp":
        a, b = Value.cast(a), Value.cast(b)
        if a.shape().signed != b.shape().signed:
            a, b = _as_signed(a), _as_signed(b)
        return a * b
    if style == "booth":
        return booth_multiply(a, b)
    raise HwsimError(f"multiplier style must be one of {', '.join(STYLES)}, not {style!r}")
