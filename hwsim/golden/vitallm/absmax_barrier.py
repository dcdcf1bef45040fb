"""Absmax re-quantization barrier: wide accumulators of one token → int8 with a per-token scale.

VitaLLM (arXiv 2605.00320) places an absmax re-quantization barrier between its ternary (TINT)
core and its Booth (BoothFlex) int8 core: the projection outputs of a token are rescaled so that
their largest magnitude maps to 127, BitNet b1.58's per-token absmax activation quantizer
(``x_q = round(x · 127 / max|x|)``, arXiv 2402.17764) done on integers.

The rule is hwsim's one absmax requantizer,
:func:`hwsim.golden.common.attention_head.absmax_requant` (also the BitNet layer's activation
quantizer :func:`hwsim.golden.vitallm.layer_codes.act_quant`, i.e. step 3 of ``norm-quant``, and
the attention head's output); its RTL, :class:`rtl.vitallm.absmax_barrier.AbsmaxBarrier`, is the
quantizer inside :class:`rtl.vitallm.norm_quant.NormQuant`:

1. ``m = max_i |a_i|`` over the token's ``length`` accumulators;
2. one normalized reciprocal per token, ``(r, k) = reciprocal(m, recip_bits)``
   (:func:`hwsim.golden.common.softmax_int.reciprocal`: ``k = bitlen(m) − 1 + recip_bits``,
   ``r = floor(2**k / m)``, ``r = 0`` when ``m = 0``), a restoring divider of
   ``recip_bits + 1`` quotient bits (:class:`rtl.common.recip.Reciprocal`);
3. ``q_i = out.fit(round_shift(a_i · r · 127, k, out.rounding))`` (127 = ``out.max_code``).

The token's real scale is ``s_in · m / 127``; ``m`` travels with every output code.

Why this rule and not the barrier's former ``r = floor(127 · 2**F / m)``, ``q = round_shift(a ·
r, F)`` (``F = in_width``), measured in ``tests/golden/test_absmax_barrier.py``
(``test_rule_choice_measured``) against the exact rational ``round(a · 127 / m)`` (half even):

* worst case before rounding: ``a · r · 127 / 2**k`` lies in ``(a·127/m − 127·|a|/2**k,
  a·127/m]``, below ``254 · 2**-recip_bits`` = 0.0039 LSB (measured 0.0038); the former rule's
  gap is below ``|a| / 2**F``, up to 0.5 LSB (measured 0.486). Both give ±127 at ``|a| = m``
  and differ from the exact quantizer by at most 1 code;
* 96 000 random elements (1 500 rows of 64, widths 2 … 24 bits): 255 codes off by one with
  this rule, 790 with the former; the integer BitNet model's own norm rows (16 384 elements):
  3 against 11;
* hardware: both are one reciprocal per token and one multiply per element; this one divides
  ``recip_bits + 1`` = 17 quotient bits (the former ``in_width + 7`` = 31) and multiplies by a
  17-bit ``r`` (×127 is a shift and a subtract) instead of a 31-bit one, at the price of a
  leading-one normalizer and a variable right shift by ``k``;
* the integer model, its contract (``tests/models/bitnet``) and ``hwsim run bitnet`` already
  use it: choosing it changes no layer's numbers.

Contract: the element with ``|a_i| = m`` maps to exactly ±127 (nearest rounding modes), every
element satisfies ``|q_i − round(a_i · 127 / m)| ≤ 1`` and codes never leave [−127, 127].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import attention_head as ah
from quant.qtype import INT8, QType

__all__ = [
    "RECIP_BITS",
    "AbsmaxBarrierParams",
    "absmax_barrier",
    "action_counts",
    "interval_cycles",
    "latency_cycles",
    "storage_bits",
    "stream_cycles",
]

#: precision of the reciprocal of the absmax (``hwsim.golden.vitallm.layer_codes.ACT_RECIP_BITS``)
RECIP_BITS = 16


@dataclass(frozen=True)
class AbsmaxBarrierParams:
    """Elaboration parameters of the barrier.

    Parameters
    ----------
    length : int
        Accumulators per token (the projection's output width).
    in_width : int
        Signed width of the incoming accumulators (e.g. the ternary MVU's ``acc_width``).
    lanes : int
        Accumulators per beat (and multipliers); must divide ``length``.
    recip_bits : int
        Precision of the reciprocal of the absmax (``r`` has ``recip_bits + 1`` bits).
    out : QType
        Output code format (int8, half-even, saturate).
    mul_style : str
        RTL multiplier of ``a × r``: ``"dsp"`` (``a * r``, maps to DSP48E2 / an ASIC
        multiplier) or ``"shift_add"`` (partial products in LUTs). Both are bit-identical.
    """

    length: int = 256
    in_width: int = 24
    lanes: int = 1
    recip_bits: int = RECIP_BITS
    out: QType = INT8
    mul_style: str = "dsp"

    def __post_init__(self):
        check_ints(self, "absmax-barrier", ("length", "in_width", "lanes", "recip_bits"))
        if self.in_width < 2 or self.in_width > 47:
            raise HwsimError(f"absmax-barrier in_width must be 2 … 47 bits, not {self.in_width}")
        if not 1 <= self.recip_bits <= 63 - self.in_width:
            raise HwsimError(f"absmax-barrier recip_bits must be 1 … {63 - self.in_width} "
                             f"(in_width − 1 + recip_bits ≤ 62), not {self.recip_bits}")
        if self.length % self.lanes:
            raise HwsimError(f"absmax-barrier lanes ({self.lanes}) must divide length "
                             f"({self.length})")
        if self.mul_style not in ("dsp", "shift_add"):
            raise HwsimError(f"absmax-barrier mul_style must be 'dsp' or 'shift_add', "
                             f"not {self.mul_style!r}")
        if self.out.width < 8 or not self.out.signed:
            raise HwsimError(f"absmax-barrier output must be a signed type of ≥ 8 bits, "
                             f"not {self.out}")

    @property
    def chunks(self) -> int:
        """Beats per token."""
        return self.length // self.lanes

    @property
    def r_bits(self) -> int:
        """Width of the reciprocal ``r`` (``2**(recip_bits−1) ≤ r ≤ 2**recip_bits``)."""
        return self.recip_bits + 1

    @property
    def div_cycles(self) -> int:
        """The reciprocal: one cycle to normalize, ``recip_bits + 1`` quotient bits."""
        return self.recip_bits + 2


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
    q, m = ah.absmax_requant(a, p.out, p.recip_bits)
    shape = np.shape(acc)
    return q.reshape(shape), m.reshape(shape[:-1])


def interval_cycles(p: AbsmaxBarrierParams) -> int:
    """Cycles between the first input beats of back-to-back tokens: the next token loads once
    the last output beat is taken, so this is :func:`latency_cycles`."""
    return latency_cycles(p)


def latency_cycles(p: AbsmaxBarrierParams) -> int:
    """First input beat of a token to its last output beat, both counted: ``C`` load beats,
    one cycle to start the reciprocal, ``recip_bits + 2`` until it is done, one to latch it,
    two pipeline stages (read, scale) and ``C − 1`` more output beats."""
    return p.chunks + 1 + p.div_cycles + 1 + 2 + p.chunks - 1


def storage_bits(p: AbsmaxBarrierParams) -> int:
    """Bits of the RTL's token buffer (one token of ``length`` accumulators)."""
    return p.length * p.in_width


def stream_cycles(p: AbsmaxBarrierParams, tokens: int) -> int:
    return tokens * interval_cycles(p)


def action_counts(p: AbsmaxBarrierParams, tokens: int = 1) -> dict[str, int]:
    return {
        "abs_compare": tokens * p.length,
        "div_step": tokens * p.r_bits,                # one subtract-and-shift per quotient bit
        "requant_mul": tokens * p.length,
        "buffer_write_bits": tokens * p.length * p.in_width,
        "buffer_read_bits": tokens * p.length * p.in_width,
        "out_bits": tokens * p.length * (p.out.width + p.in_width),
        "cycles": stream_cycles(p, tokens),
    }
