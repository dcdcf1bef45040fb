"""Concatenation of two code streams along the vector axis (multi-branch models: Inception
blocks, U-Net skips, DenseNet, feature fusion).

The integer form of ``Concat(axis=-1)`` of two code tensors that share one quantizer (the
compiler's ``IntConcat``, :mod:`hwsim.compile.dialect_ops.concat`; inputs with another scale
are first rescaled to the output's codes by a ``lut-act`` table). This module is the
specification of the ``Concat`` RTL in :mod:`rtl.common.concat`, the source of its cycle
formulas and of the estimator's action counts.

Numerics: none — every code passes unchanged. An output vector is the ``len_a`` codes of the
matching ``a`` vector followed by the ``len_b`` codes of the matching ``b`` vector. The codes
are int8 or uint8 (``signed``), the same format on ``a``, ``b`` and ``y``.

Streams: a vector of ``n`` codes is ``n / lanes`` beats of ``lanes`` codes (lane 0 in the low
byte); per output vector the RTL takes the ``len_a / lanes`` beats of ``a``, then the
``len_b / lanes`` beats of ``b``, and passes each one beat per cycle, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import QType

__all__ = ["PIPELINE_DEPTH", "ConcatParams", "action_counts", "concat", "interval_cycles",
           "latency_cycles", "storage_bits", "stream_cycles"]

#: register stages from an accepted beat to its ``y`` beat: the output register
PIPELINE_DEPTH = 1


@dataclass(frozen=True)
class ConcatParams:
    """Elaboration parameters of the concatenation unit.

    Parameters
    ----------
    lanes : int
        Codes per beat; divides ``len_a`` and ``len_b``.
    len_a, len_b : int
        Codes per vector of ``a`` and of ``b`` (the output vector has ``len_a + len_b``).
    signed : bool
        int8 (True) or uint8 (False) codes on every stream.

    Raises
    ------
    HwsimError
        On a size outside its range or ``lanes`` not dividing both lengths.
    """

    lanes: int = 1
    len_a: int = 4
    len_b: int = 4
    signed: bool = True

    def __post_init__(self):
        check_ints(self, "concat", (("lanes", 1, 4096), ("len_a", 1, 1 << 20),
                                    ("len_b", 1, 1 << 20)))
        if not isinstance(self.signed, bool):
            raise HwsimError(f"concat signed must be true or false, not {self.signed!r}")
        if self.len_a % self.lanes or self.len_b % self.lanes:
            raise HwsimError(f"concat lanes {self.lanes} must divide len_a {self.len_a} and "
                             f"len_b {self.len_b}")

    @property
    def code(self) -> QType:
        """Format of every code: int8 or uint8."""
        return QType(8, signed=self.signed)

    @property
    def beats_a(self) -> int:
        """Beats of ``a`` per vector."""
        return self.len_a // self.lanes

    @property
    def beats_b(self) -> int:
        """Beats of ``b`` per vector."""
        return self.len_b // self.lanes

    @property
    def beats(self) -> int:
        """Beats of ``y`` per vector."""
        return self.beats_a + self.beats_b

    @property
    def count_width(self) -> int:
        """Bits of the RTL's beat counter (0 … ``beats − 1``)."""
        return max(1, (self.beats - 1).bit_length())


# ------------------------------------------------------------------------------------------
# The function
def concat(a, b, p: ConcatParams) -> np.ndarray:
    """Golden concatenation: ``y[…, :len_a] = a``, ``y[…, len_a:] = b``.

    ``a`` ``(…, len_a)`` and ``b`` ``(…, len_b)``: integer code arrays of ``p.code`` with the
    same leading shape. Returns int64 codes ``(…, len_a + len_b)``.
    """
    a = p.code.check(a, "concat a")
    b = p.code.check(b, "concat b")
    if a.shape[-1:] != (p.len_a,) or b.shape[-1:] != (p.len_b,) or a.shape[:-1] != b.shape[:-1]:
        raise HwsimError(f"concat needs a (…, {p.len_a}) and b (…, {p.len_b}) with one leading "
                         f"shape, not {a.shape} and {b.shape}")
    return np.concatenate([a, b], axis=-1).astype(np.int64)


def storage_bits(p: ConcatParams) -> int:
    """Bits of the RTL's registers (no memories): the output beat, its valid bit and the
    beat counter."""
    return 8 * p.lanes + 1 + p.count_width


# ------------------------------------------------------------------------------------------
# Cycle formulas (the RTL docstring states these; cocotb and the Amaranth tests measure them)
def latency_cycles(p: ConcatParams) -> int:
    """Cycles from the cycle a beat is accepted to the cycle its ``y`` beat is first valid
    (the dataflow contract's latency): :data:`PIPELINE_DEPTH`."""
    return PIPELINE_DEPTH


def interval_cycles(p: ConcatParams) -> int:
    """Initiation interval in cycles per output vector: one beat per cycle,
    ``(len_a + len_b) / lanes``."""
    return p.beats


def stream_cycles(p: ConcatParams, vectors: int = 1) -> int:
    """Cycles from the first accepted ``a`` beat to the last ``y`` beat, both counted, for
    ``vectors`` back-to-back vectors with no idle input and no back-pressure."""
    return vectors * interval_cycles(p) + latency_cycles(p)


def action_counts(p: ConcatParams, vectors: int = 1) -> dict[str, int]:
    """Hardware actions for ``vectors`` output vectors: each code is read from its input
    register path and written to the output register once; no arithmetic."""
    n = vectors * (p.len_a + p.len_b)
    return {
        "register_read_bits": 8 * n,
        "out_bits": 8 * n,
        "cycles": stream_cycles(p, vectors),
    }
