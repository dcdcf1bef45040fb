"""Predictive sparse attention, first half: leading-one score surrogate and comparison-free top-K.

VitaLLM (arXiv 2605.00320) predicts which of the ``M`` cached tokens matter before doing exact
attention: each QKᵀ score is estimated from the positions of the operands' leading ones — no
multiplier — and a comparison-free selector keeps the ``K`` best; exact int8 attention then runs
on those ``K`` tokens only. The paper names both blocks but does not publish their equations;
this module is hwsim's definition (an assumption, stated here and in the docs):

Leading-one surrogate
    ``lo(v) = floor(log2 |v|)`` for ``v ≠ 0`` (the leading-one position of the magnitude, 0…7 for
    int8); a product ``q·k`` is estimated as ``sign(q)·sign(k)·2**(lo(q) + lo(k))`` (0 when either
    is 0), and a score as the sum over the head dimension. Each term is within a factor 4 of the
    true product's magnitude (``2**lo(v) ≤ |v| < 2**(lo(v)+1)``), with the same sign.

Comparison-free top-K (MSB-first radix selection)
    Scores are offset to unsigned keys ``key = s + 2**(W−1)``. Going from the most significant bit
    down, the tokens still undecided are split by that bit: if at least ``need`` of them have a
    1, the zeros are dropped; otherwise all the ones are selected, ``need`` shrinks by their
    count and the search continues among the zeros. After the last bit the undecided tokens
    have equal keys and the lowest-indexed ``need`` of them are taken. Only population counts
    and masks are used — no pairwise comparison. The result equals the ``K`` largest keys with
    ties broken toward the lower token index (proved against a stable sort in the tests);
    ``K = M`` selects every token, so sparse attention with ``K = M`` is dense attention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import INT8

__all__ = [
    "RTL_MAX_TOKENS",
    "LoTopKParams",
    "action_counts",
    "check_length",
    "latency_cycles",
    "leading_one",
    "lo_scores",
    "rtl_limits",
    "select_cycles",
    "storage_bits",
    "topk_radix",
]


@dataclass(frozen=True)
class LoTopKParams:
    """``M`` cached tokens, head dimension ``d``, ``K`` kept; int8 operands."""

    tokens: int = 128      # M
    head_dim: int = 64     # d
    keep: int = 16         # K

    def __post_init__(self):
        check_ints(self, "lo-topk", ("tokens", "head_dim", "keep"))
        if self.keep > self.tokens:
            raise HwsimError(f"lo-topk keep (K={self.keep}) cannot exceed tokens "
                             f"(M={self.tokens})")

    @property
    def score_width(self) -> int:
        """Signed width of a surrogate score: d terms of magnitude ≤ 2**14."""
        return (self.head_dim << 14).bit_length() + 1


def leading_one(v) -> np.ndarray:
    """``floor(log2 |v|)`` of int8 codes (−128 → 7); −1 marks a zero."""
    a = np.abs(INT8.check(v, "int8 codes"))
    out = np.full(a.shape, -1, dtype=np.int64)
    nz = a > 0
    out[nz] = np.floor(np.log2(a[nz])).astype(np.int64)  # exact for integers < 2**52
    return out


def lo_scores(q, K) -> np.ndarray:
    """Surrogate scores of one query ``q`` (d,) against cached keys ``K`` (M, d): int64 (M,)."""
    q, K = np.asarray(q), np.asarray(K)
    if q.ndim != 1 or K.ndim != 2 or K.shape[1] != q.shape[0]:
        raise HwsimError(f"lo_scores needs q (d,) and K (M, d), got {q.shape} and {K.shape}")
    lq, lk = leading_one(q), leading_one(K)
    live = (lq >= 0)[None, :] & (lk >= 0)
    sign = np.sign(q)[None, :] * np.sign(K)
    mag = np.where(live, np.left_shift(1, np.where(live, lq[None, :] + lk, 0)), 0)
    return (sign * mag).sum(axis=1).astype(np.int64)


def topk_radix(scores, keep: int, width: int) -> np.ndarray:
    """Comparison-free top-K of signed ``width``-bit scores; a boolean mask of ``keep`` tokens."""
    s = np.asarray(scores, dtype=np.int64)
    if not 1 <= keep <= s.size:
        raise HwsimError(f"top-K needs 1 ≤ K ≤ {s.size}, got K={keep}")
    lim = 1 << (width - 1)
    if s.size and (s.min() < -lim or s.max() >= lim):
        raise HwsimError(f"scores do not fit {width} signed bits")
    key = s + lim
    undecided = np.ones(s.size, dtype=bool)
    selected = np.zeros(s.size, dtype=bool)
    need = keep
    for b in range(width - 1, -1, -1):
        ones = undecided & (((key >> b) & 1) == 1)
        n = int(ones.sum())
        if n >= need:
            undecided = ones
        else:
            selected |= ones
            need -= n
            undecided &= ~ones
        if need == 0:
            break
    if need:
        first = np.flatnonzero(undecided)[:need]  # equal keys: lowest indices first
        selected[first] = True
    return selected


def check_length(length: int | None, tokens: int, kind: str = "lo-topk") -> int:
    """The run-time sequence length ``L`` of a decode step (``None``: ``tokens``), checked to be
    an integer ``1 … tokens``; one line naming ``kind`` otherwise."""
    if length is None:
        return tokens
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) \
            or not 1 <= length <= tokens:
        raise HwsimError(f"{kind} length must be an integer 1 … {tokens} (the tokens M), "
                         f"not {length!r}")
    return int(length)


def select_cycles(p: LoTopKParams) -> int:
    """Radix selection: one cycle per key bit plus one for the tie-break by index."""
    return p.score_width + 1


def latency_cycles(p: LoTopKParams, length: int | None = None) -> int:
    """RTL: the query beat, one key row per cycle for the ``L = length`` visible tokens
    (default ``M``), the selection, the output register: ``1 + L + (W + 1) + 1``."""
    return 1 + check_length(length, p.tokens) + select_cycles(p) + 1


def action_counts(p: LoTopKParams, queries: int = 1) -> dict[str, int]:
    """Per query: surrogate adds and shifts, population counts, and KV bytes read.

    KV traffic model (hwsim's assumption; the paper states only the ≈ 1 − K/M outcome): when a
    token's key enters the KV cache its 4-bit (sign, leading-one) codes are written to an
    on-chip table, so the surrogate reads ``M·d/2`` bytes of SRAM and no DRAM; exact attention
    reads the int8 key and value rows of the ``K`` kept tokens from the KV cache. Dense
    attention reads every key and value row.
    """
    M, d, K = p.tokens, p.head_dim, p.keep
    return {
        "lo_shift_add": queries * M * d,
        "popcount_bits": queries * select_cycles(p) * M,
        "lo_sram_read_bytes": queries * (M * d // 2),
        "kv_read_bytes_sparse": queries * 2 * K * d,
        "kv_read_bytes_dense": queries * 2 * M * d,
    }


def storage_bits(p: LoTopKParams) -> int:
    """Bits of the RTL's state: every cached token's biased score in a register (the selector
    reads them all at once, with a ``tokens``-long prefix count), and the query."""
    return p.tokens * (p.score_width + 2) + p.head_dim * 8


#: Largest ``tokens`` the RTL is elaborated for: its selector counts the undecided tokens with a
#: prefix chain ``tokens`` deep, and Amaranth's converter recurses along it — 4 096 tokens
#: emit in 9 s, 16 384 exhausted Python's recursion limit after 37 s.
RTL_MAX_TOKENS = 4096


def rtl_limits(p: LoTopKParams) -> list[tuple[str, int, int]]:
    """``(parameter, value, limit)`` of the RTL's elaboration limits (not the golden's)."""
    return [("tokens", p.tokens, RTL_MAX_TOKENS)]
