"""The end of a BitNet decode step on the accelerator: the last layer's residual row → the final
RMSNorm + absmax int8 quantizer → the int8 LM head → the greedy next token (the ``lm-head``
kernel, :class:`rtl.vitallm.lm_head.LmHead`).

The chain of the existing units, exactly as :func:`models.bitnet.integer_model.integer_forward`
computes a row's logits and its greedy choice:

1. the residual row's peak → shift and the final RMSNorm (integer ε of the norm's constant
   ``E``, power 0) + absmax activation quantizer: the ``norm-quant`` unit on the shifted row
   (:func:`hwsim.golden.vitallm.norm_quant.norm_quant_row`, the piece ``ffn-in`` uses) → int8
   ``a`` + ``amax``;
2. the int8 LM head ``W`` (vocab × hidden, per-tensor step) on ``a``: exact int32 logits
   ``W · a`` (the ``int8-mvu`` unit with ``M = 1``, ``S = 0``, 32-bit output);
3. the greedy token: the index of the largest logit, the lowest index among equal ones
   (``numpy.argmax``). A row's real logits are ``W · a`` times the positive step
   ``amax · s_a · s_W``, so the choice on the integers is the choice on the reals.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import int8_mvu as im
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from quant.qtype import INT8, QType

__all__ = ["ARGMAX_DEPTH", "LmHeadParams", "latency_cycles", "lm_head", "phase_cycles",
           "storage_bits"]

#: Register stages after the head's last logit: the running maximum, then the token beat.
ARGMAX_DEPTH = 1


@dataclass(frozen=True)
class LmHeadParams:
    """The final norm, LM head and greedy choice of one decode token on the accelerator.

    Parameters
    ----------
    hidden, vocab : int
        Residual row length and vocabulary (the head ``W`` is ``vocab × hidden`` int8).
    lanes : int
        Elements per beat of the residual row, the norm unit and the head's MVU (int8
        multipliers); divides ``hidden``.
    gamma_frac, e_width : int
        Fractional bits of the final RMSNorm's gains and bits of its ε constant ``E``.
    res_width : int
        Bits of the residual codes of the input row.

    Raises
    ------
    HwsimError
        One line, on sizes out of range or lanes that do not divide hidden.
    """

    hidden: int = 128
    vocab: int = 256
    lanes: int = 16
    gamma_frac: int = 16
    e_width: int = 64
    res_width: int = 48

    def __post_init__(self):
        check_ints(self, "lm-head", (("hidden", 1, 1 << 16), ("vocab", 2, 1 << 20),
                                     ("lanes", 1, 64), ("e_width", 1, 256),
                                     ("res_width", 2, 62),
                                     ("gamma_frac", 0, lc.NORM_GAMMA_BITS - 2)))
        if self.hidden % self.lanes:
            raise HwsimError(f"lm-head lanes ({self.lanes}) must divide hidden ({self.hidden})")
        self.norm_quant()
        self.mvu()

    @property
    def chunks(self) -> int:
        """``C``: beats of a residual row (``hidden / lanes``)."""
        return self.hidden // self.lanes

    @property
    def shift_width(self) -> int:
        """Bits of a residual row's shift (its peak's bits above ``NORM_IN_BITS``)."""
        return lc.shift_width(self.res_width)

    @property
    def res(self) -> QType:
        return QType(self.res_width)

    @property
    def token_width(self) -> int:
        """Bits of a token index (``0 … vocab − 1``)."""
        return max(1, (self.vocab - 1).bit_length())

    def norm_quant(self) -> nq.NormQuantParams:
        """The final RMSNorm's norm unit."""
        return nq.NormQuantParams(n=self.hidden, lanes=self.lanes, gamma_frac=self.gamma_frac,
                                  e_width=self.e_width, shift_width=self.shift_width)

    def mvu(self) -> im.Int8MvuParams:
        """The head's int8 MVU: exact logits out (``M = 1``, ``S = 0``, 32-bit codes; ``|W·a|
        ≤ hidden · 2**14`` fits while ``hidden < 2**17``)."""
        return im.Int8MvuParams(lanes=self.lanes, rows=self.vocab, cols=self.hidden,
                                out_bits=32)

    @property
    def logit(self) -> QType:
        return QType(32)


def lm_head(x, gamma, E: int, W, p: LmHeadParams) -> tuple[int, int, np.ndarray]:
    """Golden of one token: the residual row ``x`` (hidden,), the final RMSNorm's gains
    ``gamma`` (hidden,) and ε constant ``E``, the int8 head ``W`` (vocab, hidden) →
    ``(token, its logit, the logits (vocab,) int64)``."""
    x = p.res.check(np.ravel(x), "lm-head residual codes")
    if x.shape != (p.hidden,):
        raise HwsimError(f"lm-head needs {p.hidden} residual codes, got {x.size}")
    if isinstance(E, bool) or not isinstance(E, int | np.integer) or not 0 <= E < 1 << p.e_width:
        raise HwsimError(f"lm-head E must be an integer 0 … 2**{p.e_width} − 1, not {E!r}")
    if np.shape(W) != (p.vocab, p.hidden):
        raise HwsimError(f"lm-head W must be ({p.vocab}, {p.hidden}), got {np.shape(W)}")
    W = INT8.check(W, "lm-head weights")
    a, _ = nq.norm_quant_row(x, gamma, int(E), p.norm_quant())
    logits = im.int8_mvu_acc(W, a)
    tok = int(np.argmax(logits))
    return tok, int(logits[tok]), logits


def phase_cycles(p: LmHeadParams) -> dict[str, int]:
    """Cycles of one token on :class:`rtl.vitallm.lm_head.LmHead` by phase, in sequence (their
    sum is :func:`latency_cycles`), no idle input and no back-pressure:

    * ``final_norm``: the ``C`` row beats are stored while their peak is tracked, then sent
      shifted to the norm unit, whose ``C`` output beats are the head MVU's input beats: from
      the first row beat to the MVU's first input beat (:func:`hwsim.golden.vitallm.
      norm_quant.latency_cycles`, as ``ffn-in``'s ``ffn_norm``);
    * ``head``: the int8 MVU, first input beat to its last logit
      (:func:`hwsim.golden.common.int8_mvu.latency_cycles`);
    * ``argmax``: the running maximum takes each logit as it leaves; the token beat follows
      the last one after ``ARGMAX_DEPTH`` register.
    """
    return {"final_norm": nq.latency_cycles(p.norm_quant()),
            "head": im.latency_cycles(p.mvu()),
            "argmax": ARGMAX_DEPTH}


def latency_cycles(p: LmHeadParams) -> int:
    """First residual beat to the token beat, both counted: the sum of :func:`phase_cycles`."""
    return sum(phase_cycles(p).values())


def storage_bits(p: LmHeadParams) -> int:
    """Bits of the head MVU's memories and the norm unit's."""
    return im.storage_bits(p.mvu()) + nq.storage_bits(p.norm_quant())
