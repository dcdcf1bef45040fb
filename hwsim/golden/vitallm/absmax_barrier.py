"""Absmax re-quantization barrier: wide accumulators of one token → int8 with a per-token scale.

VitaLLM (arXiv 2605.00320) places an absmax re-quantization barrier between its ternary (TINT)
core and its Booth (BoothFlex) int8 core: the projection outputs of a token are rescaled so that
their largest magnitude maps to 127, BitNet b1.58's per-token absmax activation quantizer
(``x_q = round(x · 127 / max|x|)``, arXiv 2402.17764) done on integers.

Integer algorithm (the specification of :class:`rtl.vitallm.absmax_barrier.AbsmaxBarrier`):

1. ``m = max_i |a_i|`` over the token's ``length`` accumulators;
2. one reciprocal per token, ``r = floor(127 · 2**F / m)`` (``r = 0`` when ``m = 0``), with
   ``F = frac_bits``; in hardware a restoring divider, one quotient bit per cycle;
3. ``q_i = out.fit(round_shift(a_i · r, F, out.rounding))``.

The token's real scale is ``s_out = s_in · m / 127``; ``m`` travels with every output code.

Contract (proved in ``tests/golden/test_absmax_barrier.py``), with ``m ≤ 2**(F−1)`` (always true
for the default ``F = in_width``): ``a·r/2**F`` lies in ``(a·127/m − |a|/2**F, a·127/m]``, an
interval shorter than half an LSB, so

* the element with ``|a_i| = m`` maps to exactly ±127 under the nearest-rounding modes;
* every element satisfies ``|q_i − round(a_i · 127 / m)| ≤ 1`` (any rounding mode), and codes
  never leave [−127, 127].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import INT8, QType, round_shift

__all__ = [
    "PIPELINE_DEPTH",
    "AbsmaxBarrierParams",
    "absmax_barrier",
    "action_counts",
    "interval_cycles",
    "latency_cycles",
    "storage_bits",
    "stream_cycles",
]

#: target magnitude of the largest element (BitNet's activation quantizer uses 127)
QMAX = 127

#: register stages from issuing a buffer read to the output register: read, multiply, round.
PIPELINE_DEPTH = 3


@dataclass(frozen=True)
class AbsmaxBarrierParams:
    """Elaboration parameters of the barrier.

    Parameters
    ----------
    length : int
        Accumulators per token (the projection's output width).
    in_width : int
        Signed width of the incoming accumulators (e.g. the ternary MVU's ``acc_width``).
    frac_bits : int
        Fractional bits ``F`` of the reciprocal; ``None`` chooses ``in_width`` so that
        ``m < 2**F`` always holds (the contract's condition).
    out : QType
        Output code format (int8, half-even, saturate).
    mul_style : str
        RTL multiplier: ``"dsp"`` (``a * r``, maps to DSP48E2 / an ASIC multiplier) or
        ``"shift_add"`` (partial products in LUTs). Both are bit-identical.
    """

    length: int = 256
    in_width: int = 24
    frac_bits: int | None = None
    out: QType = INT8
    mul_style: str = "dsp"

    def __post_init__(self):
        check_ints(self, "absmax-barrier", ("length", "in_width"))
        if self.in_width < 2 or self.in_width > 48:
            raise HwsimError(f"absmax-barrier in_width must be 2 … 48 bits, not {self.in_width}")
        if self.frac_bits is not None and (not isinstance(self.frac_bits, int)
                                           or not 1 <= self.frac_bits <= 48):
            raise HwsimError(f"absmax-barrier frac_bits must be 1 … 48, not {self.frac_bits!r}")
        if self.mul_style not in ("dsp", "shift_add"):
            raise HwsimError(f"absmax-barrier mul_style must be 'dsp' or 'shift_add', "
                             f"not {self.mul_style!r}")
        if self.out.width < 8 or not self.out.signed:
            raise HwsimError(f"absmax-barrier output must be a signed type of ≥ 8 bits, "
                             f"not {self.out}")

    @property
    def F(self) -> int:
        return self.in_width if self.frac_bits is None else self.frac_bits

    @property
    def recip_bits(self) -> int:
        """Width of ``r = floor(127·2**F / m)`` (largest at ``m = 1``)."""
        return (QMAX << self.F).bit_length()

    @property
    def div_cycles(self) -> int:
        """Restoring division: one quotient bit per cycle."""
        return self.recip_bits


def reciprocal(m: int, p: AbsmaxBarrierParams) -> int:
    return 0 if m == 0 else (QMAX << p.F) // m


def absmax_barrier(acc, p: AbsmaxBarrierParams) -> tuple[np.ndarray, np.ndarray]:
    """Golden barrier. ``acc``: (length,) or (tokens, length) signed codes of ``in_width`` bits.

    Returns ``(q, m)``: int8 codes of the same shape and each token's absmax ``m`` (int64).
    """
    a = np.asarray(acc)
    if a.dtype.kind not in "iu":
        raise HwsimError(f"barrier input must be integer codes, got dtype {a.dtype}")
    a = np.atleast_2d(a.astype(np.int64))
    if a.shape[-1] != p.length:
        raise HwsimError(f"barrier expects {p.length} accumulators per token, got {a.shape[-1]}")
    QType(p.in_width).check(a, "barrier accumulators")
    m = np.abs(a).max(axis=1)
    q = np.empty_like(a)
    for t in range(a.shape[0]):
        r = reciprocal(int(m[t]), p)
        prod = a[t] * r
        if np.abs(prod).max(initial=0) < 2**62:
            q[t] = p.out.fit(round_shift(prod, p.F, p.out.rounding))
        else:  # exact path in Python integers for wide configurations
            from quant.qtype import requantize

            q[t] = requantize(a[t], r, p.F, p.out)
    shape = np.shape(acc)
    return q.reshape(shape), m.reshape(shape[:-1])


def interval_cycles(p: AbsmaxBarrierParams) -> int:
    """Cycles between the first input beats of back-to-back tokens: load, divide, emit."""
    return p.length + p.div_cycles + p.length


def latency_cycles(p: AbsmaxBarrierParams) -> int:
    """First input beat of a token to its last output beat, both counted."""
    return interval_cycles(p) + PIPELINE_DEPTH


def storage_bits(p: AbsmaxBarrierParams) -> int:
    """Bits of the RTL's token buffer (one token of ``length`` accumulators)."""
    return p.length * p.in_width


def stream_cycles(p: AbsmaxBarrierParams, tokens: int) -> int:
    return tokens * interval_cycles(p) + PIPELINE_DEPTH


def action_counts(p: AbsmaxBarrierParams, tokens: int = 1) -> dict[str, int]:
    return {
        "abs_compare": tokens * p.length,
        "div_step": tokens * p.div_cycles,            # one subtract-and-shift per quotient bit
        "requant_mul": tokens * p.length,
        "buffer_write_bits": tokens * p.length * p.in_width,
        "buffer_read_bits": tokens * p.length * p.in_width,
        "out_bits": tokens * p.length * (p.out.width + p.in_width),
        "cycles": stream_cycles(p, tokens),
    }
