"""SwiftChannel SPAB gating unit: parameters, golden function, cycle formula.

Element-wise ``out = requant((x + c2) · lut(c2))`` — the parameter-free attention of a SPAB
(``(x + conv(x)) · (sigmoid(conv(x)) − 0.5)``) with the 512-entry sigmoid LUT, fused: the skip
sum stays a wide integer and only the product is requantized; golden:
:func:`hwsim.golden.swiftchannel.network.spab_gate`. ``lanes`` elements per beat, one beat per cycle.
Latency: a beat accepted in cycle ``c`` leaves in cycle ``c + 2`` (sum + LUT read, product +
requantization), so ``n`` back-to-back beats take ``n + 2`` cycles, first in to last out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.swiftchannel.network import MAX_SHIFT, MULT_BITS, ConvInt, SpabInt, sigmoid_lut, spab_gate

__all__ = ["PIPELINE_DEPTH", "GateParams", "action_counts", "gate", "interval_cycles",
           "storage_bits", "stream_cycles"]

PIPELINE_DEPTH = 2


@dataclass(frozen=True)
class GateParams:
    """``lanes`` and the block's integer constants
    (see :class:`~hwsim.golden.swiftchannel.network.SpabInt`)."""

    lanes: int
    z_x: int
    z_c: int
    lut_mult: int
    lut_shift: int
    sum_mult_x: int
    sum_mult_c: int
    sum_shift: int
    z_out: int

    def __post_init__(self):
        for f in self.__dataclass_fields__:
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int):
                raise HwsimError(f"swiftchannel-gate {f} must be an integer, not {v!r}")
        if self.lanes < 1:
            raise HwsimError(f"swiftchannel-gate lanes must be at least 1, not {self.lanes}")
        for f in ("z_x", "z_c", "z_out"):
            if not 0 <= getattr(self, f) <= 255:
                raise HwsimError(f"swiftchannel-gate {f} must be a uint8 code")
        if not (0 < self.lut_mult < 1 << 16 and 0 <= self.lut_shift <= 40):
            raise HwsimError("swiftchannel-gate LUT multiplier must be 16-bit, shift 0 … 40")
        for f in ("sum_mult_x", "sum_mult_c"):
            if not 0 <= getattr(self, f) < 1 << MULT_BITS:
                raise HwsimError(f"swiftchannel-gate {f} must be a {MULT_BITS}-bit unsigned multiplier")
        if not 0 <= self.sum_shift <= MAX_SHIFT:
            raise HwsimError(f"swiftchannel-gate sum_shift must lie in 0 … {MAX_SHIFT}")

    @classmethod
    def from_block(cls, blk: SpabInt, z_x: int, lanes: int) -> GateParams:
        return cls(lanes=lanes, z_x=int(z_x), z_c=int(blk.c2.z_out), lut_mult=int(blk.lut_mult),
                   lut_shift=int(blk.lut_shift), sum_mult_x=int(blk.sum_mult_x),
                   sum_mult_c=int(blk.sum_mult_c), sum_shift=int(blk.sum_shift),
                   z_out=int(blk.z_out))

    def block(self) -> SpabInt:
        dummy = ConvInt(np.zeros((1, 1, 1, 1), np.int64), np.zeros(1, np.int64),
                        np.ones(1, np.int64), np.zeros(1, np.int64), 0, self.z_c)
        return SpabInt(dummy, dummy, self.lut_mult, self.lut_shift, self.sum_mult_x,
                       self.sum_mult_c, self.sum_shift, self.z_out)


def gate(x, c2, p: GateParams) -> np.ndarray:
    """Golden: uint8 codes ``x``, ``c2`` (same shape) → uint8 output codes."""
    return spab_gate(x, c2, p.block(), sigmoid_lut(), p.z_x)


def stream_cycles(p: GateParams, beats: int) -> int:
    return beats + PIPELINE_DEPTH


def interval_cycles(p: GateParams) -> int:
    """Cycles between back-to-back beats: one beat per cycle (:func:`stream_cycles`)."""
    return stream_cycles(p, 2) - stream_cycles(p, 1)


def action_counts(p: GateParams, beats: int) -> dict[str, int]:
    """Hardware actions for ``beats`` beats of ``lanes`` elements."""
    n = beats * p.lanes
    return {"skip_sum_mul": 2 * n, "lut_read_bits": 8 * n, "mul_gate": n, "requant": n,
            "lut_index_mul": n, "cycles": stream_cycles(p, beats)}


def storage_bits(p: GateParams) -> int:
    """Bits of the RTL's memories: one 8-bit sigmoid LUT ROM per lane."""
    from hwsim.golden.swiftchannel.network import LUT_SIZE

    return p.lanes * LUT_SIZE * 8
