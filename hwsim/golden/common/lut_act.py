"""LUT nonlinearity: ``y = table[x]`` for 8-bit codes, elementwise.

The integer form of a quantized unary activation (``DequantizeLinear → F → QuantizeLinear``
with ``F`` a sigmoid, GELU, tanh, SiLU, ReLU …; the compiler's ``LutAct``,
:mod:`hwsim.compile.dialect`): every one of the 256 input codes has its output code in a
table. This module is the specification of the ``LutAct`` RTL in :mod:`rtl.common.lut_act`,
the source of its cycle formulas and of the estimator's action counts.

Table order: ``table[i]`` is the output code of input code ``min_code + i`` (``min_code`` =
−128 for int8 inputs, 0 for uint8), so the table reads in increasing input order. The RTL's
ROM address is ``code − min_code``: the code's 8-bit pattern for uint8, the pattern with its
top bit inverted for int8.

:func:`table_for` builds the table of a named function from the quantizers' scales and zero
points in float64 (the compiler builds its tables by running the ONNX nodes themselves in
onnxruntime, so its tables are exactly the graph's).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import QType

__all__ = [
    "CODES",
    "FUNCTIONS",
    "PIPELINE_DEPTH",
    "LutActParams",
    "action_counts",
    "interval_cycles",
    "latency_cycles",
    "lut_act",
    "storage_bits",
    "stream_cycles",
    "table_for",
]

#: input codes per table: every 8-bit code
CODES = 256

#: Register stages from the cycle an ``x`` beat is accepted to the cycle its ``y`` beat is
#: presented: the ROM's registered read port.
PIPELINE_DEPTH = 1


@dataclass(frozen=True)
class LutActParams:
    """Elaboration parameters of the LUT nonlinearity.

    Parameters
    ----------
    lanes : int
        Codes per beat (one ROM per lane).
    in_signed, out_signed : bool
        Input / output codes are int8 (True) or uint8 (False).
    table : tuple of 256 int
        ``table[i]`` is the output code of input code ``min_code + i``; every entry inside the
        output code range. A list (as a plan's JSON gives it back) becomes a tuple.

    Raises
    ------
    HwsimError
        On ``lanes`` < 1, non-bool signedness, a table that is not 256 integers, or an entry
        outside the output range.
    """

    lanes: int = 4
    in_signed: bool = True
    out_signed: bool = True
    table: tuple[int, ...] = tuple(range(-128, 128))  # identity on int8

    def __post_init__(self):
        check_ints(self, "lut-act", ("lanes",))
        for name in ("in_signed", "out_signed"):
            if not isinstance(getattr(self, name), bool):
                raise HwsimError(f"lut-act {name} must be true or false, "
                                 f"not {getattr(self, name)!r}")
        table = self.table
        if isinstance(table, np.ndarray):
            table = table.tolist()
        if not isinstance(table, list | tuple) or len(table) != CODES:
            n = len(table) if hasattr(table, "__len__") else type(table).__name__
            raise HwsimError(f"lut-act table must hold {CODES} output codes (one per input "
                             f"code), not {n}")
        bad = [v for v in table if isinstance(v, bool) or not isinstance(v, int | np.integer)]
        if bad:
            raise HwsimError(f"lut-act table entries must be integers, not {bad[0]!r}")
        table = tuple(int(v) for v in table)
        out = self.out
        outside = [(i, v) for i, v in enumerate(table) if not out.min_code <= v <= out.max_code]
        if outside:
            i, v = outside[0]
            raise HwsimError(f"lut-act table entry {i} (input code {self.inp.min_code + i}) is "
                             f"{v}, outside the {out} range {out.min_code} … {out.max_code} "
                             f"({len(outside)} entries outside)")
        object.__setattr__(self, "table", table)

    @property
    def inp(self) -> QType:
        """Input format: int8 or uint8."""
        return QType(8, signed=self.in_signed)

    @property
    def out(self) -> QType:
        """Output format: int8 or uint8."""
        return QType(8, signed=self.out_signed)


# ------------------------------------------------------------------------------------------
# The function
def lut_act(codes, p: LutActParams) -> np.ndarray:
    """Golden LUT nonlinearity: ``table[code − min_code]`` for every code of ``codes`` (any
    shape, input codes of ``p.inp``). Returns int64 codes of ``p.out``, the same shape.

    Raises
    ------
    HwsimError
        Where a code lies outside the input range (or is not an integer).
    """
    x = p.inp.check(codes, "lut-act input codes")
    return np.asarray(p.table, dtype=np.int64)[x - p.inp.min_code]


# ------------------------------------------------------------------------------------------
# Tables of named functions
def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


#: function name → float64 function (elementwise on arrays)
FUNCTIONS = {
    "identity": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
    "gelu": _gelu,  # erf form, as ONNX Gelu (approximate="none")
    "silu": lambda x: x / (1.0 + np.exp(-x)),
}


def table_for(function: str, in_scale: float, in_zero: int, out_scale: float, out_zero: int,
              in_signed: bool = True, out_signed: bool = True) -> tuple[int, ...]:
    """The table of ``function`` (a key of :data:`FUNCTIONS`) between two quantizers:
    ``table[i] = sat_out(round_half_even(f((c − in_zero) · in_scale) / out_scale) + out_zero)``
    for input code ``c = min_code + i``, in float64.

    Raises
    ------
    HwsimError
        On an unknown function, a non-positive scale or a zero point outside its code range.
    """
    if function not in FUNCTIONS:
        raise HwsimError(f"lut-act function {function!r} is not one of "
                         f"{', '.join(sorted(FUNCTIONS))}")
    inp, out = QType(8, signed=bool(in_signed)), QType(8, signed=bool(out_signed))
    scales = []
    for what, scale in (("in_scale", in_scale), ("out_scale", out_scale)):
        try:
            s = math.nan if isinstance(scale, bool) else float(scale)
        except (TypeError, ValueError):
            s = math.nan
        if not (math.isfinite(s) and s > 0):
            raise HwsimError(f"lut-act {what} must be a positive number, not {scale!r}")
        scales.append(s)
    for what, zero, q in (("in_zero", in_zero, inp), ("out_zero", out_zero, out)):
        if isinstance(zero, bool) or not isinstance(zero, int | np.integer) \
                or not q.min_code <= zero <= q.max_code:
            raise HwsimError(f"lut-act {what} must be an integer {q.min_code} … {q.max_code}, "
                             f"not {zero!r}")
    codes = np.arange(inp.min_code, inp.max_code + 1, dtype=np.float64)
    with np.errstate(over="ignore"):
        y = FUNCTIONS[function]((codes - int(in_zero)) * scales[0])
    q = np.rint(y / scales[1]) + int(out_zero)  # rint: half to even
    return tuple(int(v) for v in np.clip(q, out.min_code, out.max_code))


# ------------------------------------------------------------------------------------------
# Cycle formulas (the RTL docstring states these; cocotb and the Amaranth tests measure them)
def latency_cycles(p: LutActParams) -> int:
    """Cycles from the cycle an ``x`` beat is accepted to the cycle its ``y`` beat is
    presented (the backend's fixed pipeline latency)."""
    return PIPELINE_DEPTH


def interval_cycles(p: LutActParams) -> int:
    """Initiation interval: cycles between back-to-back ``x`` beats (one beat per cycle)."""
    return 1


def stream_cycles(p: LutActParams, beats: int) -> int:
    """Cycles from the first accepted ``x`` beat to the last ``y`` beat, both counted, for
    ``beats`` back-to-back beats with no idle input and no back-pressure."""
    return beats + latency_cycles(p)


def storage_bits(p: LutActParams) -> int:
    """Bits of the RTL's memories: one 256 × 8-bit ROM per lane."""
    return p.lanes * CODES * 8


def action_counts(p: LutActParams, beats: int = 1) -> dict[str, int]:
    """Hardware actions for ``beats`` beats of ``lanes`` codes: one table read per code."""
    n = beats * p.lanes
    return {"lut_read": n, "lut_read_bits": 8 * n, "out_bits": 8 * n,
            "cycles": stream_cycles(p, beats)}
