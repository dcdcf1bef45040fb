"""Combinational arithmetic in Amaranth that mirrors :mod:`quant.qtype` bit for bit.

Each function returns an Amaranth value; none adds registers (:func:`comb_signal` names a value
through a comb signal of a module). The rounding and overflow
semantics are exactly those of :func:`quant.qtype.round_shift` and :meth:`quant.qtype.QType.fit`,
so a requantizer built from them equals the golden ``requantize``.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed

from quant.qtype import Overflow, QType, Rounding

__all__ = ["adder_tree", "comb_signal", "max_tree", "norm_shift", "round_shift",
           "round_shift_parts", "saturate", "shift_add_multiply", "shift_add_partials"]


def comb_signal(m: Module, value, shape, name: str) -> Signal:
    """``value`` through a named comb signal of ``m``: keeps expression trees shallow (and
    readable in waveforms)."""
    sig = Signal(shape, name=name)
    m.d.comb += sig.eq(value)
    return sig


def adder_tree(terms: list[Value], between=None) -> Value:
    """Balanced binary sum of ``terms`` (log2 depth); widths grow so no sum can overflow.
    ``between(depth, level)``, where given, may replace a level's values before the adders of
    ``depth`` ≥ 1 sum them (a pipeline registers them there)."""
    if not terms:
        return Const(0, signed(2))
    level, depth = list(terms), 0
    while len(level) > 1:
        if between is not None and depth:
            level = between(depth, level)
        depth += 1
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def max_tree(values: list[Value]) -> Value:
    """Balanced binary maximum of ``values`` (log2 depth of comparators)."""
    level = list(values)
    while len(level) > 1:
        nxt = [Mux(level[i] > level[i + 1], level[i], level[i + 1])
               for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def norm_shift(peak: Value, bits: int) -> Value:
    """The right shift that brings a row whose peak ``|·|`` is the unsigned ``peak`` to
    ``bits`` significant bits: ``max(0, bit_length(peak) − bits)`` (the highest set bit wins),
    as :func:`hwsim.golden.vitallm.layer_codes.shift_rows` computes it."""
    shift = Const(0, range(max(2, len(peak) - bits + 1)))
    for b in range(bits, len(peak)):
        shift = Mux(peak[b], b + 1 - bits, shift)
    return shift


def shift_add_multiply(a: Value, b: Value) -> Value:
    """``a · b`` for signed ``a`` and unsigned ``b`` as a sum of shifted partial products.

    No ``*`` operator appears, so synthesis builds it from LUTs and carry chains instead of a
    DSP block: this is how the multiplier-free units keep their requantizer DSP-free.
    """
    return adder_tree(shift_add_partials(a, b))


def shift_add_partials(a: Value, b: Value) -> list[Value]:
    """The partial products ``a · b[i] · 2**i`` whose sum is :func:`shift_add_multiply`."""
    return [Mux(b[i], a.as_signed() << i, 0) for i in range(len(b))]


def round_shift(value: Value, shift: Value, rounding: Rounding) -> Value:
    """``value / 2**shift`` rounded by ``rounding`` (signed ``value``, unsigned ``shift``)."""
    floor, inc = round_shift_parts(value, shift, rounding)
    return floor + inc


def round_shift_parts(value: Value, shift: Value, rounding: Rounding,
                      thermometer: bool = False) -> tuple[Value, Value]:
    """:func:`round_shift` in two parts, ``(floor(value / 2**shift), inc)`` with the rounded
    value ``floor + inc`` — a pipeline may register them before the final add. With
    ``thermometer`` the remainder mask is decoded from ``shift`` bit by bit (no carry chain:
    shorter path, more LUTs) instead of ``(1 << shift) − 1``."""
    value = value.as_signed()
    floor = value >> shift
    if rounding is Rounding.FLOOR:
        return floor, Const(0, 1)
    # The remainder is taken on the sign-extended value, wide enough for any shift, so a shift
    # past the value's width rounds exactly as the golden integer arithmetic does.
    width = len(value) + (1 << len(shift))
    ext = Cat(value, value[-1].replicate(1 << len(shift)))
    one = Const(1, 1)
    if thermometer:
        rem = ext & Cat(*(shift > i for i in range(width)))
        half = Cat(*(shift == i + 1 for i in range(width)))
    else:
        rem = ext & ((one << shift) - 1)
        half = (one << shift) >> 1
    negative = value[-1]
    if rounding is Rounding.TRUNC:
        inc = negative & (rem != 0)
    else:
        above = rem > half
        tie = (rem == half) & (shift != 0)
        if rounding is Rounding.HALF_UP:
            inc = above | tie
        elif rounding is Rounding.HALF_AWAY:
            inc = above | (tie & ~negative)
        elif rounding is Rounding.HALF_EVEN:
            inc = above | (tie & floor[0])
        else:  # pragma: no cover - every Rounding is handled above
            raise AssertionError(rounding)
    return floor, inc


def saturate(value: Value, qt: QType) -> Value:
    """Bring ``value`` into ``qt``'s code range by its overflow mode; result has ``qt.width`` bits."""
    value = value.as_signed()
    if qt.overflow is Overflow.SATURATE:
        clamped = Mux(value > qt.max_code, qt.max_code, Mux(value < qt.min_code, qt.min_code, value))
    else:
        low = value[: qt.width]
        clamped = low.as_signed() if qt.signed else low
        if qt.narrow and qt.signed:
            clamped = Mux(clamped < qt.min_code, qt.min_code, clamped)
    out = clamped[: qt.width]
    return out.as_signed() if qt.signed else out
