"""Number formats: the one fixed-point type every part of hwsim shares.

A :class:`QType` names an integer code format and the real value each code stands for
(``value = code * 2**-frac``). Quantizers, golden kernels, RTL generators and the estimator
all take a ``QType``; rounding and overflow are always named (:class:`Rounding`,
:class:`Overflow`), never implied.

This module needs only numpy: golden kernels import it, and importing it must never pull in
torch or Amaranth.

Integer-only requantization (:func:`requantize`) follows the integer-arithmetic-only inference
scheme (Jacob et al., CVPR 2018): a real rescale factor ``r`` is replaced by an integer
multiplier ``M`` and a right shift ``S`` with ``r ≈ M · 2**-S``
(:func:`quantize_multiplier`), and ``y = round(acc · M / 2**S)`` is computed on integers alone,
so that a golden model and the RTL agree bit for bit.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError

__all__ = [
    "INT8",
    "INT32",
    "UINT8",
    "Overflow",
    "QType",
    "Rounding",
    "dequantize",
    "quantize",
    "quantize_multiplier",
    "quantize_multipliers_shared",
    "requantize",
    "requantize_float",
    "round_exact",
    "round_shift",
]


class Rounding(enum.Enum):
    """How a value between two codes becomes a code."""

    #: to the nearest code, ties to the even code (IEEE 754 default, ``numpy.round``)
    HALF_EVEN = "half_even"
    #: to the nearest code, ties away from zero (C ``round``, ``torch.round`` is HALF_EVEN)
    HALF_AWAY = "half_away"
    #: to the nearest code, ties toward +∞ (add half an LSB, then floor: the cheapest in RTL)
    HALF_UP = "half_up"
    #: toward −∞ (an arithmetic right shift)
    FLOOR = "floor"
    #: toward zero (C integer division)
    TRUNC = "trunc"


class Overflow(enum.Enum):
    """What happens to a value outside the code range."""

    #: clamp to the most negative / most positive code
    SATURATE = "saturate"
    #: keep the low ``width`` bits (two's complement wrap-around)
    WRAP = "wrap"


@dataclass(frozen=True)
class QType:
    """A fixed-point integer format.

    Parameters
    ----------
    width : int
        Bits per code, 1 … 64.
    frac : int
        Fractional bits: a code ``q`` stands for ``q * 2**-frac``. May be negative or larger
        than ``width`` (pure scale); 0 for plain integers.
    signed : bool
        Two's complement codes if true, unsigned otherwise.
    rounding : Rounding
        Rounding used when a real value or a wider integer is brought to this format.
    overflow : Overflow
        Overflow handling used when a value falls outside ``[min_code, max_code]``.
    narrow : bool
        Symmetric signed range (drop the most negative code, e.g. −127 … 127 for int8), as
        ternary and some weight quantizers use.

    Raises
    ------
    HwsimError
        If the width is impossible (< 1 or > 64, or 1 for a narrow signed type).
    """

    width: int
    frac: int = 0
    signed: bool = True
    rounding: Rounding = Rounding.HALF_EVEN
    overflow: Overflow = Overflow.SATURATE
    narrow: bool = False

    def __post_init__(self):
        if isinstance(self.width, bool) or not isinstance(self.width, int):
            raise HwsimError(f"QType width must be an integer, not {self.width!r}")
        if not 1 <= self.width <= 64:
            raise HwsimError(f"QType width must be 1 … 64 bits, not {self.width}")
        if isinstance(self.frac, bool) or not isinstance(self.frac, int):
            raise HwsimError(f"QType frac must be an integer, not {self.frac!r}")
        if not isinstance(self.rounding, Rounding):
            raise HwsimError(f"QType rounding must be a Rounding, not {self.rounding!r}")
        if not isinstance(self.overflow, Overflow):
            raise HwsimError(f"QType overflow must be an Overflow, not {self.overflow!r}")
        if self.narrow and self.signed and self.width < 2:
            raise HwsimError("a narrow signed QType needs at least 2 bits")

    # -- code range -----------------------------------------------------------------------
    @property
    def min_code(self) -> int:
        if not self.signed:
            return 0
        return -(1 << (self.width - 1)) + (1 if self.narrow else 0)

    @property
    def max_code(self) -> int:
        if not self.signed:
            return (1 << self.width) - 1
        return (1 << (self.width - 1)) - 1

    @property
    def peak(self) -> int:
        """Largest code magnitude, ``max(|min_code|, |max_code|)``."""
        return max(-self.min_code, self.max_code)

    @property
    def lsb(self) -> float:
        """Real value of one code step, ``2**-frac``."""
        return math.ldexp(1.0, -self.frac)

    @property
    def min_value(self) -> float:
        return self.min_code * self.lsb

    @property
    def max_value(self) -> float:
        return self.max_code * self.lsb

    @property
    def numpy_dtype(self) -> np.dtype:
        """The smallest numpy integer dtype that holds every code."""
        for bits in (8, 16, 32, 64):
            if self.width <= bits:
                return np.dtype(f"{'' if self.signed else 'u'}int{bits}")
        raise AssertionError("unreachable: width checked in __post_init__")

    def __str__(self) -> str:
        kind = "int" if self.signed else "uint"
        frac = f".{self.frac}" if self.frac else ""
        return f"{kind}{self.width}{frac}"

    # -- serialization (manifests, test plans, reports) ------------------------------------
    def to_dict(self) -> dict:
        return {"width": self.width, "frac": self.frac, "signed": self.signed,
                "rounding": self.rounding.value, "overflow": self.overflow.value,
                "narrow": self.narrow}

    @classmethod
    def from_dict(cls, d: dict) -> QType:
        try:
            return cls(int(d["width"]), int(d.get("frac", 0)), bool(d.get("signed", True)),
                       Rounding(d.get("rounding", "half_even")),
                       Overflow(d.get("overflow", "saturate")), bool(d.get("narrow", False)))
        except (KeyError, ValueError, TypeError) as e:
            if isinstance(e, HwsimError):
                raise
            raise HwsimError(f"not a QType description: {d!r} ({e})") from None

    # -- helpers bound to the type ---------------------------------------------------------
    def fit(self, codes) -> np.ndarray:
        """Bring integer codes into range by this type's overflow mode (int64 result)."""
        return _apply_overflow(np.asarray(codes, dtype=np.int64), self)

    def check(self, codes, what: str = "codes") -> np.ndarray:
        """Return ``codes`` as int64 if all lie in range, else raise one clear error (int64
        input comes back as itself, not a copy: do not modify the result in place)."""
        arr = np.asarray(codes)
        if arr.dtype.kind not in "iub":
            raise HwsimError(f"{what} must be integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64, copy=False)
        if arr.size:
            lo, hi = int(arr.min()), int(arr.max())
            if lo < self.min_code or hi > self.max_code:
                bad = lo if lo < self.min_code else hi
                raise HwsimError(
                    f"{what} hold {bad}, outside {self} range [{self.min_code}, {self.max_code}]"
                )
        return arr


INT8 = QType(8)
UINT8 = QType(8, signed=False)
INT32 = QType(32)


# ------------------------------------------------------------------------------------------
def _round_float(x: np.ndarray, mode: Rounding) -> np.ndarray:
    if mode is Rounding.HALF_EVEN:
        return np.round(x)
    if mode is Rounding.HALF_AWAY:
        return np.sign(x) * np.floor(np.abs(x) + 0.5)
    if mode is Rounding.HALF_UP:
        return np.floor(x + 0.5)
    if mode is Rounding.FLOOR:
        return np.floor(x)
    if mode is Rounding.TRUNC:
        return np.trunc(x)
    raise AssertionError(mode)


def _apply_overflow(q: np.ndarray, qt: QType) -> np.ndarray:
    if qt.overflow is Overflow.SATURATE:
        return np.clip(q, qt.min_code, qt.max_code)
    # WRAP: keep the low `width` bits, then reinterpret. Work in Python ints for 64-bit types.
    if qt.width == 64:
        return q.astype(np.int64) if qt.signed else q
    mask = (1 << qt.width) - 1
    low = np.bitwise_and(q.astype(np.int64), mask)
    if qt.signed:
        half = 1 << (qt.width - 1)         # 2**width may not fit int64 (width 63): twice half
        low = np.where(low >= half, low - half - half, low)
    if qt.narrow and qt.signed:
        low = np.maximum(low, qt.min_code)
    return low


def quantize(x, qtype: QType, scale: float | np.ndarray = 1.0) -> np.ndarray:
    """Real values → integer codes.

    ``code = overflow(rounding(x / (scale · 2**-frac)))``. ``scale`` is an extra real factor
    (per tensor, or broadcastable for per-channel scales); with ``scale=1`` the codes are
    plain fixed point. Returns int64. Non-finite inputs raise.
    """
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise HwsimError("cannot quantize non-finite values (NaN or ±inf)")
    step = np.asarray(scale, dtype=np.float64) * qtype.lsb
    if np.any(step <= 0):
        raise HwsimError("quantization scale must be positive")
    q = _round_float(x / step, qtype.rounding)
    # Clip in float first so huge values cannot overflow the int64 conversion.
    if qtype.overflow is Overflow.SATURATE:
        q = np.clip(q, qtype.min_code, qtype.max_code)
        return q.astype(np.int64)
    q = np.clip(q, -(2.0**63), 2.0**63 - 1024)
    return _apply_overflow(q.astype(np.int64), qtype)


def dequantize(codes, qtype: QType, scale: float | np.ndarray = 1.0) -> np.ndarray:
    """Integer codes → real values (float64): ``code · scale · 2**-frac``."""
    codes = np.asarray(codes)
    return codes.astype(np.float64) * (np.asarray(scale, dtype=np.float64) * qtype.lsb)


#: integers of magnitude below this are exact in float64, and so is every ``n · 2**-s`` of them
_F64_EXACT = 1 << 53


def round_exact(y: np.ndarray, rounding: Rounding, out: np.ndarray | None = None) -> np.ndarray:
    """Round float64 values that are *exact* binary fractions ``n · 2**-s`` (``|n| < 2**53``) to
    integers (float64) by ``rounding``: every step below is exact for such values (``y − ⌊y⌋``
    is ``(n mod 2**s) · 2**-s``), so the result is the integer rounding of the rational value.
    ``out`` (may be ``y`` itself) receives the result."""
    if rounding is Rounding.HALF_EVEN:
        return np.rint(y, out=out)
    if rounding is Rounding.FLOOR:
        return np.floor(y, out=out)
    if rounding is Rounding.TRUNC:
        return np.trunc(y, out=out)
    f = np.floor(y)
    frac = y - f
    if rounding is Rounding.HALF_UP:
        up = frac >= 0.5
    elif rounding is Rounding.HALF_AWAY:
        up = (frac > 0.5) | ((frac == 0.5) & (y >= 0))
    else:
        raise AssertionError(rounding)
    return np.add(f, up, out=out)


def round_shift(x, shift: int | np.ndarray, rounding: Rounding) -> np.ndarray:
    """Integer ``x / 2**shift`` rounded by ``rounding``, exactly.

    ``x`` is int64; ``0 ≤ shift ≤ 62`` (an array broadcasts against ``x``).
    This is the exact operation the RTL's rounding right shift implements. Where every
    ``|x| < 2**53`` the quotient is computed in float64, where ``x · 2**-shift`` and each
    rounding step are exact (:func:`round_exact`); otherwise in int64 (one biased shift while
    ``|x| < 2**62``, shifts and masks beyond).
    """
    x = np.asarray(x).astype(np.int64, copy=False)
    scalar = isinstance(shift, int | np.integer) and not isinstance(shift, bool)
    if scalar:
        if not 0 <= int(shift) <= 62:
            raise HwsimError("rounding shift must be 0 … 62")
        if int(shift) == 0:
            return x.copy()
    else:
        shift = np.asarray(shift, dtype=np.int64)
        if shift.size and (shift.min() < 0 or shift.max() > 62):
            raise HwsimError("rounding shift must be 0 … 62")
    peak = max(-int(x.min()), int(x.max())) if x.size else 0
    if x.size and peak < _F64_EXACT:
        y = x.astype(np.float64)
        y *= np.ldexp(1.0, -(int(shift) if scalar else shift))
        return round_exact(y, rounding, out=y).astype(np.int64)
    return _round_shift_i64(x, shift, rounding, peak)


def _biased_shift(x: np.ndarray, s: int, rounding: Rounding) -> np.ndarray:
    """``round_shift`` of int64 ``|x| < 2**62`` by a scalar ``s ≥ 1`` as one biased floor shift:
    ``(x + bias) >> s`` with ``bias = 2**(s−1)`` (half up), ``2**(s−1) − 1`` plus the floor's
    parity (half even) or plus ``x ≥ 0`` (half away); ``|x + bias| < 2**63``."""
    half = 1 << (s - 1)
    if rounding is Rounding.HALF_UP:
        t = x + half
    elif rounding is Rounding.HALF_EVEN:
        t = x >> s
        t &= 1
        t += x
        t += half - 1
    elif rounding is Rounding.HALF_AWAY:
        t = (x >= 0).astype(np.int64)
        t += x
        t += half - 1
    else:
        raise AssertionError(rounding)
    t >>= s
    return t


def _round_shift_i64(x: np.ndarray, shift, rounding: Rounding, peak: int) -> np.ndarray:
    """:func:`round_shift` in int64 arithmetic (any int64 ``x``; ``peak = max |x|``)."""
    if isinstance(shift, int | np.integer) and not isinstance(shift, bool):
        s = int(shift)
        if s == 0:
            return x.copy()
        if rounding is Rounding.FLOOR:
            return x >> s
        if peak < 1 << 62 and rounding is not Rounding.TRUNC:
            return _biased_shift(x, s, rounding)
        floor = x >> s
        rem = x & ((1 << s) - 1)           # 0 ≤ rem < 2**s: the bits shifted out
        half = 1 << (s - 1)
        # floor + 1 exactly where rem exceeds the rounding threshold (no int64 overflow:
        # rem + half < 2**63)
        if rounding is Rounding.TRUNC:
            return floor + ((x < 0) & (rem != 0))
        if rounding is Rounding.HALF_UP:
            return floor + ((rem + half) >> s)
        if rounding is Rounding.HALF_AWAY:
            return floor + ((rem + (half - 1) + (x >= 0)) >> s)
        if rounding is Rounding.HALF_EVEN:
            return floor + ((rem + (half - 1) + (floor & 1)) >> s)
        raise AssertionError(rounding)
    s = np.asarray(shift, dtype=np.int64)
    if s.size and x.size:
        # x / 2**s == (x · 2**(smax − s)) / 2**smax: one scalar shift rounds every element the
        # same way, where the lifted values stay below 2**62
        smin, smax = int(s.min()), int(s.max())
        if smin == smax:
            y = _round_shift_i64(x, smax, rounding, peak)
            shape = np.broadcast_shapes(x.shape, s.shape)
            return y if y.shape == shape else np.broadcast_to(y, shape).copy()
        if peak < 1 << (62 - (smax - smin)):
            return _round_shift_i64(x << (smax - s), smax, rounding, peak << (smax - smin))
    floor = x >> s
    if rounding is Rounding.FLOOR:
        return floor
    mask = (np.int64(1) << s) - 1
    rem = x & mask                          # 0 ≤ rem < 2**s
    if rounding is Rounding.TRUNC:
        return floor + ((x < 0) & (rem != 0))
    half_m1 = mask >> 1                     # 2**(s-1) − 1, and 0 where s = 0 (so is rem)
    on = s > 0
    if rounding is Rounding.HALF_UP:
        return floor + ((rem + half_m1 + on) >> s)
    if rounding is Rounding.HALF_AWAY:
        return floor + ((rem + half_m1 + ((x >= 0) & on)) >> s)
    if rounding is Rounding.HALF_EVEN:
        return floor + ((rem + half_m1 + ((floor & 1) & on)) >> s)
    raise AssertionError(rounding)


def _round_shift_int(x: int, s: int, rounding: Rounding) -> int:
    if s == 0:
        return x
    floor = x >> s
    rem = x - (floor << s)
    if rounding is Rounding.FLOOR:
        return floor
    half = 1 << (s - 1)
    if rounding is Rounding.TRUNC:
        return floor + (1 if (x < 0 and rem) else 0)
    if rem > half:
        return floor + 1
    if rem < half:
        return floor
    if rounding is Rounding.HALF_UP:
        return floor + 1
    if rounding is Rounding.HALF_AWAY:
        return floor + (1 if x >= 0 else 0)
    return floor + (floor & 1)  # HALF_EVEN


def requantize(acc, multiplier, shift, out: QType) -> np.ndarray:
    """Integer-only rescale: ``out.fit(round_shift(acc · multiplier, shift, out.rounding))``.

    Parameters
    ----------
    acc : array of int
        Wide accumulator codes (int64).
    multiplier : int or array of int
        Non-negative integer multiplier ``M`` (an array broadcasts against ``acc``: e.g. one
        multiplier per head or channel).
    shift : int or array of int
        Right shift ``S`` ≥ 0 (0 … 62); the real rescale factor is ``M · 2**-S``. An array
        broadcasts like ``multiplier``.
    out : QType
        Output format; its ``rounding`` and ``overflow`` are used.

    Products that could pass 2**62 are computed in Python integers, so the result is exact for
    any accumulator width up to 64 bits.
    """
    scalar = (isinstance(multiplier, int | np.integer) and isinstance(shift, int | np.integer))
    if scalar:
        multiplier, shift = int(multiplier), int(shift)
        m_max = multiplier
        if multiplier < 0:
            raise HwsimError(f"requantization multiplier must be ≥ 0, not {multiplier}")
        if not 0 <= shift <= 62:
            raise HwsimError(f"requantization shift must be 0 … 62, not {shift}")
        m_arr, s_arr = np.array(multiplier, dtype=object), np.array(shift)
    else:
        m_arr = np.asarray(multiplier, dtype=object)
        s_arr = np.asarray(shift)
        if s_arr.dtype.kind not in "iu" or any(not isinstance(v, int | np.integer)
                                               for v in m_arr.ravel()):
            raise HwsimError("requantization multipliers and shifts must be integers")
        m_max = max((int(v) for v in m_arr.ravel()), default=0)
        if m_arr.size and min(int(v) for v in m_arr.ravel()) < 0:
            raise HwsimError("requantization multipliers must be ≥ 0")
        if s_arr.size and (s_arr.min() < 0 or s_arr.max() > 62):
            raise HwsimError("requantization shifts must be 0 … 62")
    acc = np.asarray(acc)
    if acc.dtype.kind not in "iu" and acc.dtype != object:
        raise HwsimError(f"accumulator must hold integers, got dtype {acc.dtype}")
    if not acc.size:
        peak = 0
    elif acc.dtype == object:
        peak = int(np.max(np.abs(acc)))
    else:
        peak = max(-int(acc.min()), int(acc.max()))
    if peak * max(m_max, 1) < _F64_EXACT:
        # acc · M · 2**-S is an exact float64 (|acc · M| < 2**53): one multiply, one rounding
        y = requantize_float(acc.astype(np.float64), m_arr, s_arr, out, overwrite=True)
        if out.overflow is Overflow.SATURATE:
            return y.astype(np.int64)
        return out.fit(y.astype(np.int64))
    if peak * max(m_max, 1) < (1 << 62):
        if scalar:
            prod = acc.astype(np.int64) * np.int64(multiplier)
        else:
            prod = acc.astype(np.int64) * m_arr.astype(np.int64)
            shift = s_arr.astype(np.int64)
        return out.fit(round_shift(prod, shift, out.rounding))
    # Wide path: exact Python integers, overflow applied before narrowing to int64.
    a_b, m_b, s_b = np.broadcast_arrays(acc, m_arr, s_arr)
    flat = [_fit_int(_round_shift_int(int(a) * int(m), int(sh), out.rounding), out)
            for a, m, sh in zip(a_b.ravel(), m_b.ravel(), s_b.ravel(), strict=True)]
    return np.array(flat, dtype=np.int64).reshape(a_b.shape)


def requantize_float(acc: np.ndarray, multiplier, shift, out: QType, *,
                     overwrite: bool = False) -> np.ndarray:
    """:func:`requantize` of accumulators held in float64, result in float64 (integral codes;
    saturated for a SATURATE ``out``, not yet wrapped for a WRAP one).

    Precondition (the caller's, not checked here): every ``acc`` is an integer and every
    ``|acc| · M < 2**53``, so ``acc · M · 2**-S`` is an exact float64 and its rounding exact
    (:func:`round_exact`). ``multiplier``, ``shift``: integers or integer arrays broadcasting
    against ``acc``. ``overwrite``: ``acc`` (float64) may hold the result."""
    c = np.ldexp(np.asarray(multiplier).astype(np.float64),
                 np.negative(np.asarray(shift, dtype=np.int64)))
    if overwrite and np.broadcast_shapes(acc.shape, c.shape) == acc.shape:
        y = acc
        y *= c
    else:
        y = acc * c
    round_exact(y, out.rounding, out=y)
    if out.overflow is Overflow.SATURATE:
        np.clip(y, out.min_code, out.max_code, out=y)
    return y


def _fit_int(v: int, qt: QType) -> int:
    if qt.overflow is Overflow.SATURATE:
        return min(max(v, qt.min_code), qt.max_code)
    v &= (1 << qt.width) - 1
    if qt.signed and v >> (qt.width - 1):
        v -= 1 << qt.width
    return max(v, qt.min_code)


def quantize_multiplier(real: float, bits: int = 16, max_shift: int = 62) -> tuple[int, int]:
    """Approximate a positive real rescale factor by ``M · 2**-S`` with ``M < 2**bits``.

    ``M`` is normalized into ``[2**(bits-1), 2**bits)`` (most precision) unless the shift
    would pass ``max_shift`` or drop below 0; the relative error is below ``2**-(bits-1)``
    when normalized. Returns ``(M, S)``.
    """
    if not (isinstance(real, int | float | np.floating) and math.isfinite(real) and real > 0):
        raise HwsimError(f"rescale factor must be a positive finite real, not {real!r}")
    if not 2 <= bits <= 62:
        raise HwsimError(f"multiplier width must be 2 … 62 bits, not {bits}")
    _, exp = math.frexp(real)  # real = m · 2**exp with 0.5 ≤ m < 1
    shift = bits - exp
    if shift < 0:
        raise HwsimError(f"rescale factor {real} is too large for a {bits}-bit multiplier")
    shift = min(shift, max_shift)
    m = round(real * (1 << shift)) if shift < 1023 else 0
    if m >= (1 << bits):  # rounding carried into a new bit
        m >>= 1
        shift -= 1
    if m == 0:
        raise HwsimError(f"rescale factor {real} underflows a shift of {max_shift}")
    return int(m), int(shift)


def quantize_multipliers_shared(reals, bits: int = 16, max_shift: int = 62) -> tuple[list[int], int]:
    """Several positive rescale factors as ``M_i · 2**-S`` with **one** shift ``S``.

    ``S`` is the shift :func:`quantize_multiplier` picks for the largest factor (whose ``M`` is
    normalized); every other ``M_i = round(real_i · 2**S)`` (half even, as there) is then below
    ``2**bits`` too. Used where two operands are rescaled and added before one rounding shift.
    Returns ``([M_0, M_1, …], S)``.
    """
    reals = [float(r) for r in reals]
    if not reals:
        raise HwsimError("need at least one rescale factor")
    _, shift = quantize_multiplier(max(reals), bits, max_shift)
    for r in reals:
        quantize_multiplier(r, bits, max_shift)  # validates each factor
    mults = [round(r * (1 << shift)) for r in reals]
    if min(mults) == 0:
        raise HwsimError(f"rescale factors {reals} are too far apart for one {bits}-bit shift")
    return mults, int(shift)
