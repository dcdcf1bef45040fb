"""Multi-threshold activation: a wide integer accumulator → an 8-bit code (FINN's idea).

A layer's float activation between its accumulator and an 8-bit quantizer,
``y = Q(F(acc · s))`` (``Q`` rounding half to even and saturating), is a piecewise-constant
function of the integer ``acc``. It is held as sorted breakpoints ``B_0 < … < B_{m−1}`` and
``m + 1`` output codes ``C_0 … C_m``::

    y = C[#{i : acc ≥ B_i}]

Monotone ``F`` (sigmoid, tanh, leaky ReLU) give at most 255 breakpoints; unimodal ones (GELU,
SiLU) a few more. This module is the specification of the RTL in :mod:`rtl.common.threshold`
(golden function, table, cycle formulas).

Table construction (:func:`build_table`): the code function ``g(acc)`` is evaluated in float64
on every integer of ``[lo, hi]`` where that range holds at most :data:`DENSE_LIMIT` values
(exact). On a wider range it is evaluated on a grid of :data:`DENSE_LIMIT` points; every grid
interval whose end codes differ is bisected to its code changes, and every integer within two
grid steps of a grid point where the float value turns (a local extremum) is evaluated
densely: exact for functions whose monotone pieces are longer than two grid steps.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import QType

__all__ = [
    "DENSE_LIMIT",
    "FUNCTIONS",
    "MAX_BREAKPOINTS",
    "PIPELINE_DEPTH",
    "ThresholdParams",
    "action_counts",
    "build_table",
    "interval_cycles",
    "latency_cycles",
    "quantizer",
    "storage_bits",
    "stream_cycles",
    "table_for",
    "threshold",
]

#: register stages from an accepted ``x`` beat to its ``y`` beat: the comparators, the count
#: of breakpoints passed, the code ROM's read
PIPELINE_DEPTH = 3

#: the most breakpoints one table holds (comparators per lane)
MAX_BREAKPOINTS = 1024

#: integers evaluated densely (or grid points) by :func:`build_table`
DENSE_LIMIT = 1 << 22


@dataclass(frozen=True)
class ThresholdParams:
    """Elaboration parameters of the multi-threshold unit.

    Parameters
    ----------
    lanes : int
        Codes per beat (one comparator bank per lane).
    in_bits : int
        Width of the signed input codes (accumulators), 2 … 32.
    out_signed : bool
        Output codes are int8 (True) or uint8 (False).
    breakpoints : tuple of int
        Strictly increasing, each inside the signed ``in_bits`` range; at most
        :data:`MAX_BREAKPOINTS`.
    codes : tuple of int
        ``len(breakpoints) + 1`` output codes, each inside the output range.
    """

    lanes: int = 1
    in_bits: int = 32
    out_signed: bool = True
    breakpoints: tuple[int, ...] = (0,)
    codes: tuple[int, ...] = (0, 1)

    def __post_init__(self):
        check_ints(self, "threshold", ("lanes", "in_bits"))
        if not 2 <= self.in_bits <= 32:
            raise HwsimError(f"threshold in_bits must be 2 … 32, not {self.in_bits}")
        if not isinstance(self.out_signed, bool):
            raise HwsimError(f"threshold out_signed must be true or false, not "
                             f"{self.out_signed!r}")
        bps, codes = (tuple(int(v) for v in np.asarray(t, dtype=object).ravel())
                      for t in (self.breakpoints, self.codes))
        if len(bps) > MAX_BREAKPOINTS:
            raise HwsimError(f"threshold tables hold at most {MAX_BREAKPOINTS} breakpoints, "
                             f"not {len(bps)}")
        if any(b >= c for b, c in itertools.pairwise(bps)):
            raise HwsimError("threshold breakpoints must be strictly increasing")
        lo, hi = -(1 << (self.in_bits - 1)), (1 << (self.in_bits - 1)) - 1
        if bps and not lo <= bps[0] <= bps[-1] <= hi:
            raise HwsimError(f"threshold breakpoints must lie in {lo} … {hi} "
                             f"(signed {self.in_bits}-bit inputs)")
        if len(codes) != len(bps) + 1:
            raise HwsimError(f"threshold needs {len(bps) + 1} codes for {len(bps)} "
                             f"breakpoints, not {len(codes)}")
        out = self.out
        bad = [c for c in codes if not out.min_code <= c <= out.max_code]
        if bad:
            raise HwsimError(f"threshold code {bad[0]} lies outside the {out} range")
        object.__setattr__(self, "breakpoints", bps)
        object.__setattr__(self, "codes", codes)

    @property
    def inp(self) -> QType:
        """Input format: signed ``in_bits``."""
        return QType(self.in_bits, signed=True)

    @property
    def out(self) -> QType:
        """Output format: int8 or uint8."""
        return QType(8, signed=self.out_signed)


# ------------------------------------------------------------------------------------------
# The function
def threshold(acc, p: ThresholdParams) -> np.ndarray:
    """Golden multi-threshold: ``codes[#{i : acc ≥ breakpoints[i]}]`` for every element of
    ``acc`` (any shape, signed ``in_bits`` integers). Returns int64 codes, the same shape."""
    x = p.inp.check(acc, "threshold input codes")
    idx = np.searchsorted(np.asarray(p.breakpoints, np.int64), x, side="right")
    return np.asarray(p.codes, np.int64)[idx]


# ------------------------------------------------------------------------------------------
# Tables
def quantizer(out_scale: float, out_zero: int, out_signed: bool,
              clip: tuple[int, int] | None = None) -> Callable[[np.ndarray], np.ndarray]:
    """``Q(v) = clip(round_half_even(v / out_scale) + out_zero)`` into the 8-bit range (and
    ``clip``, where given), as int64."""
    q = QType(8, signed=bool(out_signed))
    lo, hi = q.min_code, q.max_code
    if clip is not None:
        lo, hi = max(lo, int(clip[0])), min(hi, int(clip[1]))

    def quantize(v):
        with np.errstate(invalid="ignore"):
            c = np.rint(np.asarray(v, np.float64) / out_scale) + int(out_zero)
        return np.clip(np.nan_to_num(c, nan=0.0), lo, hi).astype(np.int64)
    return quantize


def _changes(lo: int, codes: np.ndarray) -> tuple[list[int], list[int]]:
    """Breakpoints and codes of ``codes[k] = g(lo + k)``, every integer of a range."""
    idx = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    return [int(lo + i) for i in idx], [int(codes[0]), *(int(codes[i]) for i in idx)]


def build_table(code_fn: Callable[[np.ndarray], np.ndarray], lo: int, hi: int,
                value_fn: Callable[[np.ndarray], np.ndarray] | None = None
                ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(breakpoints, codes)`` of the code function ``code_fn`` (int64 array of ``acc`` →
    int64 codes, elementwise) on ``[lo, hi]`` (see the module docstring for the method;
    ``value_fn``, the float value before quantizing, finds the turning points on a wide
    range; without it a wide range is taken as monotone between grid points)."""
    lo, hi = int(lo), int(hi)
    if hi < lo:
        raise HwsimError(f"threshold table range {lo} … {hi} is empty")
    if hi - lo + 1 <= DENSE_LIMIT:
        bps, codes = _changes(lo, code_fn(np.arange(lo, hi + 1, dtype=np.int64)))
        return tuple(bps), tuple(codes)
    grid = np.unique(np.linspace(lo, hi, DENSE_LIMIT).round().astype(np.int64))
    step = int(np.max(np.diff(grid)))
    gc = code_fn(grid)
    found: dict[int, int] = {}  # acc of a change → code from it on

    def bisect(a: int, ca: int, b: int, cb: int) -> None:
        while b - a > 1 and ca != cb:
            m = (a + b) // 2
            cm = int(code_fn(np.array([m], np.int64))[0])
            if cm != ca:
                bisect(a, ca, m, cm)
            a, ca = m, cm
        if ca != cb:
            found[b] = cb

    for k in np.flatnonzero(gc[1:] != gc[:-1]):
        bisect(int(grid[k]), int(gc[k]), int(grid[k + 1]), int(gc[k + 1]))
    if value_fn is not None:  # dense around the float function's turning points
        v = np.asarray(value_fn(grid), np.float64)
        sg = np.sign(np.diff(v))
        nz = np.flatnonzero(sg)  # grid intervals where the value moves
        turns = [int(nz[i + 1]) for i in range(len(nz) - 1) if sg[nz[i]] != sg[nz[i + 1]]]
        for t in turns:
            a, b = max(lo, int(grid[t]) - 2 * step), min(hi, int(grid[t]) + 2 * step)
            xs = np.arange(a, b + 1, dtype=np.int64)
            cs = code_fn(xs)
            for x, c0, c1 in zip(xs[1:], cs[:-1], cs[1:], strict=True):
                if c0 != c1:
                    found[int(x)] = int(c1)
                else:
                    found.pop(int(x), None)
    bps = sorted(found)
    codes = [int(gc[0])]
    out_b = []
    for b in bps:
        if found[b] != codes[-1]:
            out_b.append(b)
            codes.append(found[b])
    return tuple(out_b), tuple(codes)


def _leaky(x: np.ndarray, alpha: float = 0.1) -> np.ndarray:
    return np.where(x >= 0, x, alpha * x)


def _gelu(x: np.ndarray) -> np.ndarray:
    from scipy.special import erf
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


#: function name → float64 function (elementwise on arrays)
FUNCTIONS = {
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "gelu": _gelu,
    "silu": lambda x: x / (1.0 + np.exp(-x)),
    "leaky_relu": _leaky,
    "identity": lambda x: x,
}


def table_for(function: str, scale: float, out_scale: float, out_zero: int = 0,
              out_signed: bool = True, in_bits: int = 32, lanes: int = 1,
              lo: int | None = None, hi: int | None = None) -> ThresholdParams:
    """The :class:`ThresholdParams` of ``function`` (a key of :data:`FUNCTIONS`) on
    accumulators of scale ``scale`` into an 8-bit quantizer (``out_scale``, ``out_zero``),
    over ``[lo, hi]`` (default: the whole signed ``in_bits`` range)."""
    if function not in FUNCTIONS:
        raise HwsimError(f"threshold function {function!r} is not one of "
                         f"{', '.join(sorted(FUNCTIONS))}")
    for what, s in (("scale", scale), ("out_scale", out_scale)):
        if not (isinstance(s, int | float) and math.isfinite(s) and s > 0):
            raise HwsimError(f"threshold {what} must be a positive number, not {s!r}")
    f = FUNCTIONS[function]
    q = quantizer(out_scale, out_zero, out_signed)
    lo = -(1 << (in_bits - 1)) if lo is None else lo
    hi = (1 << (in_bits - 1)) - 1 if hi is None else hi

    def value(acc):
        with np.errstate(over="ignore"):
            return f(acc.astype(np.float64) * scale)

    bps, codes = build_table(lambda acc: q(value(acc)), lo, hi, value)
    return ThresholdParams(lanes=lanes, in_bits=in_bits, out_signed=out_signed,
                           breakpoints=bps, codes=codes)


# ------------------------------------------------------------------------------------------
# Cycle formulas (the RTL docstring states these; cocotb and the Amaranth tests measure them)
def latency_cycles(p: ThresholdParams) -> int:
    """Cycles from the cycle an ``x`` beat is accepted to the cycle its ``y`` beat is
    presented."""
    return PIPELINE_DEPTH


def interval_cycles(p: ThresholdParams) -> int:
    """Initiation interval: one beat per cycle."""
    return 1


def stream_cycles(p: ThresholdParams, beats: int) -> int:
    """Cycles from the first accepted ``x`` beat to the last ``y`` beat, both counted, for
    ``beats`` back-to-back beats with no idle input and no back-pressure."""
    return beats + latency_cycles(p)


def storage_bits(p: ThresholdParams) -> int:
    """Bits of constants per lane bank: the breakpoints and the code ROM, times lanes."""
    return p.lanes * (len(p.breakpoints) * p.in_bits + len(p.codes) * 8)


def action_counts(p: ThresholdParams, beats: int = 1) -> dict[str, int]:
    """Hardware actions for ``beats`` beats: one comparison per breakpoint per code, one code
    read per code."""
    n = beats * p.lanes
    return {"compare": n * len(p.breakpoints), "compare_bits": n * len(p.breakpoints) * p.in_bits,
            "lut_read": n, "out_bits": 8 * n, "cycles": stream_cycles(p, beats)}
