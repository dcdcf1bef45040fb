"""General int8 matrix–vector unit: ``y = requant(W · x + bias)`` with int8 weights.

The integer form of a quantized ``MatMul``/``Gemm`` (the compiler's ``IntMatMul`` followed by
``Requant``, :mod:`hwsim.compile.dialect`): int8 weights, int8 or uint8 activations, an exact
accumulator with an optional int32 bias in accumulator units, and one rescale ``M · 2**-S``
per vector (``mult``/``shift`` ports) or, with ``per_row_scale``, one per output row (a
per-channel weight scale; ``(M, S)`` of each row held in a small memory), with an output zero
point and an optional ReLU clip. This module is the
specification of the ``Int8MVU`` RTL in :mod:`rtl.common.int8_mvu`, the source of its cycle
formulas and of the estimator's action counts.

Numerics (exactly ``dialect.Requant`` after ``dialect.IntMatMul``):

* ``acc = W · x (+ bias)``, exact (:func:`hwsim.golden.common.int8_matmul.int8_matmul`);
* ``v = requantize(acc, M, S, 64-bit format with out's rounding)`` (never clips), then
  ``y = sat_out(v + zero_point)``, and with ``relu`` ``y = max(y, zero_point)``
  (:func:`quant.qtype.requantize`).

Weights live in the RTL's memory as ``lanes`` int8 codes per word (lane 0 in the low byte,
:func:`hwsim.golden.common.lanes.pack_lanes`), the bias as one 32-bit word per row, per-row
scales as one ``M | S << mult_bits`` word per row (:func:`scale_words`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common.int8_matmul import int8_matmul
from hwsim.golden.common.lanes import pack_lanes
from quant.qtype import INT8, QType, Rounding, requantize

__all__ = [
    "BIAS_BITS",
    "PIPELINE_DEPTH",
    "RTL_MAX_WIDTH",
    "Int8MvuParams",
    "action_counts",
    "bias_words",
    "int8_mvu",
    "int8_mvu_acc",
    "interval_cycles",
    "latency_cycles",
    "rtl_limits",
    "scale_words",
    "storage_bits",
    "stream_cycles",
    "weight_load_cycles",
    "weight_words",
]

#: Register stages between the cycle a (row, chunk) address is issued and the cycle its result
#: is on ``y``: memory read, multiply-and-accumulate, multiply by ``M``, round/offset/saturate.
PIPELINE_DEPTH = 4

#: Width of a bias word (int32 in accumulator units, as ONNX ``Gemm``/``MatMulInteger`` biases).
BIAS_BITS = 32

#: Widest signal the RTL may hold (Amaranth numbers the bits of one cell in 16 bits).
RTL_MAX_WIDTH = 1 << 16


@dataclass(frozen=True)
class Int8MvuParams:
    """Elaboration parameters of the int8 MVU.

    Parameters
    ----------
    lanes : int
        int8 multipliers (products per cycle); must divide ``cols``.
    rows, cols : int
        Matrix shape: ``y`` has ``rows`` codes, ``x`` has ``cols``.
    act_signed : bool
        Activations are int8 (True) or uint8 (False) codes.
    out_signed : bool
        Output codes are int8 (True) or uint8 (False); saturating, rounding ``rounding``.
    relu : bool
        Clip the output at ``zero_point`` (a ReLU before the output quantizer).
    zero_point : int
        Output code of real 0, added after rounding; inside the output code range.
    bias : bool
        Add an int32 bias per row (loaded through the ``b`` stream) to the accumulator.
    rounding : str
        A :class:`~quant.qtype.Rounding` value: rounding of the rescale (``half_even`` as
        ``QuantizeLinear``).
    mult_bits, shift_bits : int
        Widths of the requantization ``M`` (unsigned, ≤ 32) and ``S`` (≤ 6 bits).
    per_row_scale : bool
        One ``(M, S)`` per output row (a per-channel weight scale), held in a ``rows``-word
        memory loaded through the ``s`` stream or baked in; no ``mult``/``shift`` ports.
    out_bits : int
        Output code width: 8 (the default), or 32 for wide codes (e.g. the accumulators
        themselves with ``M = 1, S = 0``: a float classifier head finished on the host).

    Raises
    ------
    HwsimError
        On sizes < 1, lanes that do not divide cols, a zero point outside the output range,
        or an accumulator wider than 64 bits.
    """

    lanes: int = 16
    rows: int = 64
    cols: int = 64
    act_signed: bool = True
    out_signed: bool = True
    relu: bool = False
    zero_point: int = 0
    bias: bool = False
    rounding: str = Rounding.HALF_EVEN.value
    mult_bits: int = 16
    shift_bits: int = 6
    per_row_scale: bool = False
    out_bits: int = 8

    def __post_init__(self):
        check_ints(self, "int8-mvu", ("lanes", "rows", "cols", ("mult_bits", 1, 32),
                                      ("shift_bits", 1, 6)))
        for name in ("act_signed", "out_signed", "relu", "bias", "per_row_scale"):
            if not isinstance(getattr(self, name), bool):
                raise HwsimError(f"int8-mvu {name} must be true or false, "
                                 f"not {getattr(self, name)!r}")
        if self.rounding not in {r.value for r in Rounding}:
            raise HwsimError(f"int8-mvu rounding must be one of "
                             f"{', '.join(r.value for r in Rounding)}, not {self.rounding!r}")
        if self.out_bits not in (8, 32):
            raise HwsimError(f"int8-mvu out_bits must be 8 or 32, not {self.out_bits!r}")
        if self.cols % self.lanes:
            raise HwsimError(f"int8-mvu lanes ({self.lanes}) must divide cols ({self.cols})")
        out = self.out
        if (isinstance(self.zero_point, bool) or not isinstance(self.zero_point, int)
                or not out.min_code <= self.zero_point <= out.max_code):
            raise HwsimError(f"int8-mvu zero_point must be an integer {out.min_code} … "
                             f"{out.max_code} ({out}), not {self.zero_point!r}")
        if self.acc_width > 64:
            raise HwsimError(f"int8-mvu accumulator would need {self.acc_width} bits (> 64) "
                             f"for cols={self.cols}")

    @property
    def act(self) -> QType:
        """Activation format: int8 or uint8."""
        return QType(8, signed=self.act_signed)

    @property
    def out(self) -> QType:
        """Output format: int8 or uint8 (``out_bits`` wide), saturating, with ``rounding``."""
        return QType(self.out_bits, signed=self.out_signed, rounding=Rounding(self.rounding))

    @property
    def chunks(self) -> int:
        """Cycles per row: ``cols / lanes``."""
        return self.cols // self.lanes

    @property
    def acc_width(self) -> int:
        """Signed accumulator bits: any ``Σ w·x`` of ``cols`` products plus any int32 bias."""
        peak = self.cols * 128 * max(abs(self.act.min_code), self.act.max_code)
        return (peak + (1 << (BIAS_BITS - 1) if self.bias else 0)).bit_length() + 1

    @property
    def weight_depth(self) -> int:
        """Words in the weight memory: one word of ``lanes`` weights per (row, chunk)."""
        return self.rows * self.chunks

    @property
    def scale_bits(self) -> int:
        """Width of a per-row scale word: ``M`` in the low ``mult_bits``, ``S`` above."""
        return self.mult_bits + self.shift_bits


# ------------------------------------------------------------------------------------------
# The function
def int8_mvu_acc(w, x, bias=None, act: QType = INT8) -> np.ndarray:
    """Exact accumulators ``W · x + bias`` (int64): ``w`` (rows, cols) int8 codes, ``x``
    (cols,) or (n, cols) ``act`` codes, ``bias`` None or (rows,) int32. Returns (rows,) or
    (n, rows)."""
    acc = int8_matmul(x, w, act, INT8)
    if bias is None:
        return acc
    b = QType(BIAS_BITS).check(bias, "bias")
    if b.shape != (acc.shape[-1],):
        raise HwsimError(f"bias has shape {b.shape}, the matrix has {acc.shape[-1]} rows")
    return acc + b


def _requantize_rows(acc: np.ndarray, multiplier, shift, out: QType) -> np.ndarray:
    """``requantize`` with one ``(M, S)`` for all rows (ints) or one per row (the last axis of
    ``acc``; sequences of ``rows`` ints)."""
    M, S = np.asarray(multiplier), np.asarray(shift)
    if M.ndim == 0 and S.ndim == 0:
        return requantize(acc, int(M), int(S), out)
    rows = acc.shape[-1]
    if M.shape not in ((), (rows,)) or S.shape not in ((), (rows,)):
        raise HwsimError(f"per-row multiplier/shift of shapes {M.shape}/{S.shape} for "
                         f"{rows} rows")
    M, S = np.broadcast_to(M, (rows,)), np.broadcast_to(S, (rows,))
    return np.stack([requantize(acc[..., r], int(M[r]), int(S[r]), out) for r in range(rows)],
                    axis=-1)


def int8_mvu(w, x, multiplier, shift, bias=None, act: QType = INT8,
             out: QType = INT8, zero_point: int = 0, relu: bool = False) -> np.ndarray:
    """Golden int8 MVU: ``y = sat_out(requantize(W·x + bias, M, S) + zero_point)``, with
    ``relu`` clipped below at ``zero_point``.

    Parameters
    ----------
    w : (rows, cols) int8 codes
    x : (cols,) or (n, cols) codes of ``act``
    multiplier, shift : int or (rows,) ints
        Requantization ``M``, ``S`` (:func:`quant.qtype.quantize_multiplier`): one for every
        row, or one per row (``per_row_scale``).
    bias : None or (rows,) int32 codes in accumulator units
    act, out : QType
        Activation and output formats (``out``'s rounding and overflow apply).
    zero_point : int
        Output code of real 0.
    relu : bool
        Clip at ``zero_point``.

    Returns
    -------
    numpy.ndarray of int64, shape (rows,) or (n, rows)
    """
    if not out.min_code <= zero_point <= out.max_code:
        raise HwsimError(f"zero_point {zero_point} outside the {out} code range")
    wide = QType(64, rounding=out.rounding)  # the rounded value before the zero point: no clip
    y = out.fit(_requantize_rows(int8_mvu_acc(w, x, bias, act), multiplier, shift, wide)
                + int(zero_point))
    return np.maximum(y, int(zero_point)) if relu else y


# ------------------------------------------------------------------------------------------
# Storage format
def weight_words(w, lanes: int) -> list[int]:
    """The RTL weight memory image: ``rows · cols/lanes`` words of ``8·lanes`` bits; word
    ``r·(cols/lanes) + k`` holds ``W[r, k·lanes : (k+1)·lanes]``, lane 0 in the low byte."""
    w = INT8.check(w, "int8 weights")
    if w.ndim != 2 or w.shape[1] % lanes:
        raise HwsimError(f"weights of shape {w.shape}: need 2-D with lanes ({lanes}) "
                         "dividing cols")
    rows, cols = w.shape
    return [pack_lanes(chunk, 8) for row in w.reshape(rows, cols // lanes, lanes)
            for chunk in row]


def bias_words(bias) -> list[int]:
    """The RTL bias memory image: one 32-bit two's-complement word per row."""
    b = QType(BIAS_BITS).check(bias, "bias")
    return [int(v) & ((1 << BIAS_BITS) - 1) for v in np.ravel(b)]


def scale_words(p: Int8MvuParams, multiplier, shift) -> list[int]:
    """The RTL per-row scale memory image: word ``r`` is ``M[r] | S[r] << mult_bits``."""
    M = np.broadcast_to(np.asarray(multiplier, dtype=object), (p.rows,))
    S = np.broadcast_to(np.asarray(shift, dtype=object), (p.rows,))
    for name, v, bits in (("multiplier", M, p.mult_bits), ("shift", S, p.shift_bits)):
        if any(not 0 <= int(e) < (1 << bits) for e in v):
            raise HwsimError(f"int8-mvu per-row {name} outside 0 … {(1 << bits) - 1}")
    return [int(m) | int(s) << p.mult_bits for m, s in zip(M, S, strict=True)]


# ------------------------------------------------------------------------------------------
# Cycle formulas (the RTL docstring states these; cocotb and the Amaranth tests measure them)
def storage_bits(p: Int8MvuParams) -> int:
    """Bits of the RTL's memories: int8 weights, the optional bias and per-row scales, and one
    activation vector."""
    return (p.rows * p.cols * 8 + (p.rows * BIAS_BITS if p.bias else 0) + p.cols * 8
            + (p.rows * p.scale_bits if p.per_row_scale else 0))


def weight_load_cycles(p: Int8MvuParams) -> int:
    """Cycles to load a weight matrix through the ``w`` stream (one word per cycle)."""
    return p.weight_depth


def interval_cycles(p: Int8MvuParams) -> int:
    """Initiation interval: cycles between the first ``x`` beats of back-to-back vectors."""
    return p.chunks + p.rows * p.chunks


def latency_cycles(p: Int8MvuParams) -> int:
    """Cycles from the first accepted ``x`` beat to the last ``y`` beat, both counted."""
    return interval_cycles(p) + PIPELINE_DEPTH


def stream_cycles(p: Int8MvuParams, vectors: int) -> int:
    """Cycles for ``vectors`` back-to-back vectors with no idle input and no back-pressure."""
    return vectors * interval_cycles(p) + PIPELINE_DEPTH


# ------------------------------------------------------------------------------------------
def action_counts(p: Int8MvuParams, vectors: int = 1) -> dict[str, int]:
    """Hardware actions for ``vectors`` matrix–vector products."""
    return {
        "mac": vectors * p.rows * p.cols,
        "acc_add": vectors * p.rows * p.chunks,  # accumulate one tree sum per cycle
        "bias_add": vectors * p.rows if p.bias else 0,
        "weight_read_bits": vectors * 8 * p.rows * p.cols,
        "act_read_bits": vectors * 8 * p.rows * p.cols,  # x re-read for every row
        "act_write_bits": vectors * 8 * p.cols,
        "requant_mul": vectors * p.rows,
        "out_bits": vectors * p.out_bits * p.rows,
        "cycles": stream_cycles(p, vectors),
    }


def rtl_limits(p: Int8MvuParams) -> list[tuple[str, int, int]]:
    """``(parameter, value, limit)`` of the RTL's elaboration limits: the weight word
    (``lanes`` int8 codes) is one signal."""
    return [("weight word bits (lanes × 8)", p.lanes * 8, RTL_MAX_WIDTH)]
