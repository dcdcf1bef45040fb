"""Ternary matrix–vector unit: ``y = requant(W · x)`` with ``W ∈ {−1, 0, +1}``, ``x`` int8.

The BitLinear projection of BitNet b1.58 (arXiv 2402.17764): weights are absmean-ternary with
one scale per matrix, activations are per-token absmax int8, the product accumulates in an
integer wide enough never to overflow, and one per-tensor rescale ``M · 2**-S`` brings it back to
int8. This module is the specification of the ``TernaryMVU`` RTL in :mod:`rtl.vitallm.ternary_mvu` and the
source of its cycle formula and of the estimator's action counts.

Contract (proved by ``tests/golden/test_ternary_mvu.py`` and the RTL tests):

* integer codes in, integer codes out; RTL == golden with ``==`` on every code;
* the accumulator is exact (``acc_width`` bits, derived so it cannot overflow);
* the float reference ``round(s · W·x)`` differs from the golden result by at most 1 LSB, and only
  where the integer multiplier ``M · 2**-S`` rounds the real scale ``s``.

Weight storage uses bitnet.cpp's I2_S code: ``{−1, 0, +1} → {0, 1, 2}``, 2 bits per weight, four
weights per byte, weight ``i`` of a row at bits ``[2·(i mod 4), 2·(i mod 4)+2)`` of byte ``i // 4``.
The RTL's weight memory holds the same bits, ``lanes`` weights (``2·lanes`` bits) per word.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.common import exact
from hwsim.golden.common.lanes import pack_lanes
from quant.qtype import INT8, QType, requantize

__all__ = [
    "I2S_CODE",
    "PIPELINES",
    "PIPELINE_DEPTH",
    "RTL_MAX_WIDTH",
    "TREE_LEVELS_PER_STAGE",
    "TernaryMvuParams",
    "TernaryWeights",
    "action_counts",
    "latency_cycles",
    "pack_i2s",
    "pipeline_depth",
    "rtl_limits",
    "storage_bits",
    "stream_cycles",
    "ternary_mvu",
    "ternary_mvu_acc",
    "tree_registers",
    "unpack_i2s",
    "weight_words",
]

#: I2_S code of each ternary value (bitnet.cpp): −1 → 0, 0 → 1, +1 → 2. Code 3 is unused.
I2S_CODE = {-1: 0, 0: 1, 1: 2}

#: Register stages between the cycle a (row, chunk) address is issued and the cycle its result
#: is on ``y``: weight/activation memory read, accumulate, multiply, round-and-saturate
#: (``pipeline="short"``; :func:`pipeline_depth` for the deep pipeline).
PIPELINE_DEPTH = 4

#: Adder levels between two registers inside an adder tree of the deep pipeline
TREE_LEVELS_PER_STAGE = 2

PIPELINES = ("short", "deep")


def tree_registers(terms: int) -> int:
    """Registers a deep-pipeline adder tree of ``terms`` inputs inserts before its sum (one
    after every :data:`TREE_LEVELS_PER_STAGE` levels but the last group)."""
    levels = max(terms - 1, 0).bit_length()
    return max(-(-levels // TREE_LEVELS_PER_STAGE) - 1, 0)


def pipeline_depth(p) -> int:
    """Register stages from issue to ``y`` of a matrix–vector unit with ``p.pipeline``:
    :data:`PIPELINE_DEPTH` for ``"short"``; ``"deep"`` adds a register on the memory outputs,
    the lane adder tree's inner registers and one on its sum, the shift-add multiplier's
    inner registers (:func:`tree_registers` of ``lanes`` and ``mult_bits`` terms) and one
    between rounding and saturation."""
    if getattr(p, "pipeline", "short") == "short":
        return PIPELINE_DEPTH
    return PIPELINE_DEPTH + 3 + tree_registers(p.lanes) + tree_registers(p.mult_bits)


@dataclass(frozen=True)
class TernaryMvuParams:
    """Elaboration parameters of the ternary MVU.

    Parameters
    ----------
    lanes : int
        Weights processed per cycle (ternary adds in the adder tree); must divide ``cols``.
    rows, cols : int
        Matrix shape: ``y`` has ``rows`` codes, ``x`` has ``cols``.
    act : QType
        Activation format (int8 in BitNet b1.58).
    out : QType
        Output format, with its rounding and overflow modes (int8, half-even, saturate).
    mult_bits : int
        Width of the unsigned requantization multiplier ``M``.
    shift_bits : int
        Width of the requantization shift ``S`` (so ``S < 2**shift_bits``).
    pipeline : str
        ``"short"``: :data:`PIPELINE_DEPTH` stages, one adder tree and one multiplier per
        cycle (fewest registers); ``"deep"``: registers inside the adder tree, the multiplier
        and the requantizer for a higher clock (:func:`pipeline_depth` stages, same interval).

    Raises
    ------
    HwsimError
        On sizes < 1, lanes that do not divide cols, or an accumulator wider than 64 bits.
    """

    lanes: int = 16
    rows: int = 256
    cols: int = 256
    act: QType = INT8
    out: QType = INT8
    mult_bits: int = 16
    shift_bits: int = 6
    pipeline: str = "short"

    def __post_init__(self):
        if self.pipeline not in PIPELINES:
            raise HwsimError(f"ternary-mvu pipeline must be short or deep, not {self.pipeline!r}")
        for name in ("lanes", "rows", "cols", "mult_bits", "shift_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise HwsimError(f"ternary-mvu {name} must be an integer, not {v!r}")
            if v < 1:
                raise HwsimError(f"ternary-mvu {name} must be at least 1, not {v}")
        if self.cols % self.lanes:
            raise HwsimError(
                f"ternary-mvu lanes ({self.lanes}) must divide cols ({self.cols})"
            )
        if not self.act.signed or self.act.frac != 0:
            raise HwsimError(f"ternary-mvu activations must be signed integers, not {self.act}")
        if self.acc_width > 64:
            raise HwsimError(
                f"ternary-mvu accumulator would need {self.acc_width} bits (> 64) "
                f"for cols={self.cols} of {self.act}"
            )
        if self.shift_bits > 6:
            raise HwsimError(f"ternary-mvu shift_bits must be ≤ 6, not {self.shift_bits}")
        if self.mult_bits > 32:
            raise HwsimError(f"ternary-mvu mult_bits must be ≤ 32, not {self.mult_bits}")

    @property
    def chunks(self) -> int:
        """Cycles per row: ``cols / lanes``."""
        return self.cols // self.lanes

    @property
    def acc_width(self) -> int:
        """Signed accumulator bits so that ``Σ |w·x| ≤ cols · 2**(act.width-1)`` always fits."""
        return (self.cols << (self.act.width - 1)).bit_length() + 1

    @property
    def tree_width(self) -> int:
        """Signed width of one cycle's adder-tree sum (``lanes`` terms)."""
        return (self.lanes << (self.act.width - 1)).bit_length() + 1

    @property
    def weight_depth(self) -> int:
        """Words in the weight memory: one word of ``lanes`` weights per (row, chunk)."""
        return self.rows * self.chunks


# ------------------------------------------------------------------------------------------
# The function
def _check_weights(w) -> np.ndarray:
    w = np.asarray(w)
    if w.ndim != 2:
        raise HwsimError(f"ternary weights must be a 2-D matrix, got shape {w.shape}")
    if w.dtype.kind not in "iub":
        raise HwsimError(f"ternary weights must be integer codes, got dtype {w.dtype}")
    w = w.astype(np.int64, copy=False)
    if w.size and (w.min() < -1 or w.max() > 1):
        bad = np.argwhere((w < -1) | (w > 1))
        r, c = (int(i) for i in bad[0])
        raise HwsimError(f"weight code {int(w[r, c])} at ({r}, {c}) is not ternary (−1, 0, +1)")
    return w


class TernaryWeights:
    """A ternary weight matrix (rows, cols) checked once and kept in the forms the exact
    product reads (:class:`hwsim.golden.common.exact.ConstOperand` of ``Wᵀ``): pass it to
    :func:`ternary_mvu_acc` in place of the codes when the same weights serve many calls."""

    def __init__(self, w):
        self.W = _check_weights(w)
        self.operand = exact.ConstOperand(self.W.T, 1)

    @property
    def shape(self) -> tuple:
        return self.W.shape


def ternary_mvu_acc(w, x, act: QType = INT8, *, checked: bool = False) -> np.ndarray:
    """Exact integer accumulators ``W · x`` (int64), no requantization.

    ``w``: (rows, cols) ternary codes, or a :class:`TernaryWeights`; ``x``: (cols,) or
    (…, n, cols) codes of ``act``. Returns (rows,) or (…, n, rows). Computed by a float GEMM
    where that is provably exact (:func:`hwsim.golden.common.exact.matmul_codes`:
    ``cols · peak(act) < 2**24`` for float32). ``checked``: ``x`` is known to hold codes of
    ``act`` (a saturating quantizer's output), so the range pass is skipped.
    """
    tw = w if isinstance(w, TernaryWeights) else TernaryWeights(w)
    x = np.asarray(x) if checked else act.check(x, "activation codes")
    if x.shape[-1] != tw.shape[1]:
        raise HwsimError(f"activations have {x.shape[-1]} columns, weights have {tw.shape[1]}")
    return exact.matmul_codes(x, tw.operand, act.peak, 1, checked=True)


def ternary_mvu(w, x, multiplier: int, shift: int, out: QType = INT8, act: QType = INT8):
    """Golden ternary MVU: ``requantize(W · x, M, S, out)`` on integer codes.

    Parameters
    ----------
    w : (rows, cols) int array with values in {−1, 0, +1}
    x : (cols,) or (n, cols) int array of ``act`` codes
    multiplier, shift : int
        Requantization ``M``, ``S`` (see :func:`quant.qtype.quantize_multiplier`).
    out : QType
        Output format (rounding and overflow are taken from it).

    Returns
    -------
    numpy.ndarray of int64, shape (rows,) or (n, rows)
    """
    return requantize(ternary_mvu_acc(w, x, act), multiplier, shift, out)


# ------------------------------------------------------------------------------------------
# Storage format
def pack_i2s(w) -> np.ndarray:
    """Ternary matrix (rows, cols) → I2_S bytes (rows, ceil(cols/4)), uint8."""
    w = _check_weights(w)
    codes = (w + 1).astype(np.uint8)  # −1,0,1 → 0,1,2
    rows, cols = codes.shape
    padded = np.full((rows, -(-cols // 4) * 4), I2S_CODE[0], dtype=np.uint8)
    padded[:, :cols] = codes
    quads = padded.reshape(rows, -1, 4)
    return (quads[..., 0] | quads[..., 1] << 2 | quads[..., 2] << 4 | quads[..., 3] << 6).astype(
        np.uint8
    )


def unpack_i2s(packed, cols: int) -> np.ndarray:
    """I2_S bytes → ternary matrix (rows, cols), int8. Code 3 is rejected."""
    packed = np.asarray(packed, dtype=np.uint8)
    if packed.ndim != 2 or packed.shape[1] * 4 < cols:
        raise HwsimError(f"I2_S data of shape {packed.shape} cannot hold {cols} columns")
    codes = np.stack([(packed >> (2 * i)) & 3 for i in range(4)], axis=-1).reshape(
        packed.shape[0], -1
    )[:, :cols]
    if np.any(codes == 3):
        r, c = (int(i) for i in np.argwhere(codes == 3)[0])
        raise HwsimError(f"I2_S code 3 at ({r}, {c}) is not a ternary weight")
    return codes.astype(np.int8) - 1


def weight_words(w, lanes: int) -> list[int]:
    """The RTL weight memory image: ``rows · cols/lanes`` words of ``2·lanes`` bits.

    Word ``r·(cols/lanes) + k`` holds weights ``W[r, k·lanes : (k+1)·lanes]``, lane 0 lowest,
    each as its I2_S code — the same bit order as :func:`pack_i2s`.
    """
    w = _check_weights(w)
    rows, cols = w.shape
    if cols % lanes:
        raise HwsimError(f"lanes ({lanes}) must divide cols ({cols})")
    codes = (w + 1).reshape(rows, cols // lanes, lanes)
    return [pack_lanes(chunk, 2) for row in codes for chunk in row]


# ------------------------------------------------------------------------------------------
# Cycle formulas (the RTL docstring states these; cocotb and the Amaranth tests measure them)
def storage_bits(p: TernaryMvuParams) -> int:
    """Bits of the RTL's memories: ternary weights (2 bits each) and one activation vector."""
    return p.weight_depth * 2 * p.lanes + p.chunks * p.act.width * p.lanes


def weight_load_cycles(p: TernaryMvuParams) -> int:
    """Cycles to load a full weight matrix through the ``w`` stream (one word per cycle)."""
    return p.weight_depth


def interval_cycles(p: TernaryMvuParams) -> int:
    """Initiation interval: cycles between the first ``x`` beats of back-to-back vectors."""
    return p.chunks + p.rows * p.chunks


def latency_cycles(p: TernaryMvuParams) -> int:
    """Cycles from the first accepted ``x`` beat to the last ``y`` beat, both counted."""
    return interval_cycles(p) + pipeline_depth(p)


def stream_cycles(p: TernaryMvuParams, vectors: int) -> int:
    """Cycles for ``vectors`` back-to-back vectors with no idle input and no back-pressure."""
    return vectors * interval_cycles(p) + pipeline_depth(p)


def ideal_cycles(p: TernaryMvuParams) -> int:
    """Cycles of pure ternary compute per vector at ``lanes`` weights per cycle."""
    return p.rows * p.cols // p.lanes


# ------------------------------------------------------------------------------------------
# Action counts (what the estimator multiplies by its energy tables)
def action_counts(p: TernaryMvuParams, vectors: int = 1, w=None) -> dict[str, int]:
    """Hardware actions for ``vectors`` matrix–vector products.

    Without ``w`` the counts are the worst case (every weight non-zero); with a weight matrix
    the ternary additions are counted exactly (a zero weight is a skipped lane).
    """
    nz = p.rows * p.cols if w is None else int(np.count_nonzero(_check_weights(w)))
    return {
        "ternary_add": vectors * nz,  # one add/subtract per non-zero weight
        "ternary_skip": vectors * (p.rows * p.cols - nz),
        "acc_add": vectors * p.rows * p.chunks,  # accumulate one tree sum per cycle
        "weight_read_bits": vectors * 2 * p.rows * p.cols,
        "act_read_bits": vectors * p.act.width * p.rows * p.cols,  # x re-read for every row
        "act_write_bits": vectors * p.act.width * p.cols,
        "requant_mul": vectors * p.rows,
        "out_bits": vectors * p.out.width * p.rows,
        "cycles": vectors * interval_cycles(p) + pipeline_depth(p),
    }


#: Widest signal the RTL may hold: Amaranth's netlist numbers the bits of one cell in 16 bits
#: (``amaranth.hdl._nir``), so a wider memory word or port fails with an assertion.
RTL_MAX_WIDTH = 1 << 16


def rtl_limits(p: TernaryMvuParams) -> list[tuple[str, int, int]]:
    """``(parameter, value, limit)`` of the RTL's elaboration limits: the activation word
    (``lanes`` codes) is one signal."""
    return [("activation word bits (lanes × act width)", p.lanes * p.act.width, RTL_MAX_WIDTH)]
