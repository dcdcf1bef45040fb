"""The attention phase of one decode step on the accelerator (the ``decode-attention`` kernel,
:class:`rtl.vitallm.decode_attention.DecodeAttention`): every query head against the ``M`` cached
tokens held on chip, the LO surrogate + top-K selector and the int8 attention engine pipelined
one head apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import lo_topk as lt
from hwsim.golden.vitallm import sparse_attention as sa
from quant.qtype import QType

__all__ = ["DecodeAttentionParams", "check_heads_and_keep", "decode_attention", "decode_attention_cycles",
           "storage_bits"]


def check_heads_and_keep(kind: str, p, positive: tuple[str, ...]) -> None:
    """The checks every decode-step parameter set shares: positive integer sizes, 1 ≤ K ≤ M,
    and kv_heads dividing heads (one line naming ``kind`` and the field)."""
    check_ints(p, kind, positive)
    if isinstance(p.keep, bool) or not isinstance(p.keep, int) or p.keep < 1:
        raise HwsimError(f"{kind} keep (K) must be at least 1, not {p.keep!r}")
    if p.keep > p.tokens:
        raise HwsimError(f"{kind} keep (K={p.keep}) cannot exceed the cached tokens "
                         f"(M={p.tokens})")
    if p.heads % p.kv_heads:
        raise HwsimError(f"{kind} kv_heads ({p.kv_heads}) must divide heads ({p.heads})")


@dataclass(frozen=True)
class DecodeAttentionParams:
    """Every query head of one decode step against ``M`` cached tokens held on chip.

    ``heads`` query heads share ``kv_heads`` KV heads (GQA); each query head keeps ``keep``
    (K) of the ``tokens`` (M) cached tokens by the LO surrogate + top-K, then exact int8
    attention on them (``keep = tokens``: dense). ``lanes``: multipliers of the attention
    engine; ``score_frac``: fractional bits of the int8 scores (the softmax's input format);
    ``multiplier``: their style, ``"booth"`` (VitaLLM's BoothFlex core, radix-4 Booth,
    :mod:`rtl.common.booth`; the default, so the decode step, the attention half and the whole
    decoder layer run QKᵀ and A·V on it) or ``"dsp"``. The products, hence every code, and
    the cycles are the same for both.
    """

    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    tokens: int = 128
    keep: int = 16
    lanes: int = 16
    exp_lanes: int = 4
    score_frac: int = 4
    multiplier: str = "booth"

    def __post_init__(self):
        check_heads_and_keep("decode-attention", self, ("heads", "kv_heads", "head_dim",
                                                         "tokens", "lanes", "exp_lanes"))
        if not isinstance(self.score_frac, int) or not 0 <= self.score_frac <= 7:
            raise HwsimError(f"decode-attention score_frac must be 0 … 7, not "
                             f"{self.score_frac!r}")
        self.attention()  # lanes | head_dim, sizes
        self.selector()

    def attention(self) -> ah.AttentionParams:
        """The attention engine: a KV buffer of ``keep`` tokens."""
        return ah.AttentionParams(head_dim=self.head_dim, max_len=self.keep, lanes=self.lanes,
                                  exp_lanes=min(self.exp_lanes, self.keep),
                                  score=QType(8, frac=self.score_frac),
                                  multiplier=self.multiplier)

    def selector(self) -> lt.LoTopKParams:
        return lt.LoTopKParams(tokens=self.tokens, head_dim=self.head_dim, keep=self.keep)


def decode_attention(q, K, V, mults, p: DecodeAttentionParams,
                     length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Golden: ``q`` (heads, d), ``K``, ``V`` (kv_heads, M, d) int8, ``mults`` per head
    ``(score_mult, score_shift)`` → ``(o (heads, d), amax (heads,))``: each head's sparse
    attention (:func:`hwsim.golden.vitallm.sparse_attention.sparse_attention`) on the first
    ``L = length`` tokens (default ``M``) of its KV head, keeping ``min(keep, L)``; rows
    ``L … M − 1`` are ignored."""
    q, K, V = np.asarray(q), np.asarray(K), np.asarray(V)
    H, G, M, d = p.heads, p.kv_heads, p.tokens, p.head_dim
    if q.shape != (H, d) or K.shape != (G, M, d) or V.shape != (G, M, d):
        raise HwsimError(f"decode attention expects q ({H}, {d}), K and V ({G}, {M}, {d}); got "
                         f"{q.shape}, {K.shape}, {V.shape}")
    if len(mults) != H:
        raise HwsimError(f"decode attention needs {H} (score_mult, score_shift) pairs")
    L = lt.check_length(length, M, "decode-attention")
    ap, rep = p.attention(), H // G
    o = np.empty((H, d), dtype=np.int64)
    amax = np.empty(H, dtype=np.int64)
    for h in range(H):
        r = sa.sparse_attention(q[h], K[h // rep, :L], V[h // rep, :L], min(p.keep, L),
                                *mults[h], ap)
        o[h], amax[h] = r["o"], r["amax"]
    return o, amax


def decode_attention_cycles(p: DecodeAttentionParams, length: int | None = None) -> int:
    """Cycles of the RTL's attention phase, first ``q`` beat to last output beat, both counted,
    with no idle input and no back-pressure (:class:`rtl.vitallm.decode_attention.DecodeAttention`),
    for ``L = length`` visible tokens (default ``M``) and ``K' = min(K, L)`` kept.

    Two stages run concurrently, one head apart (head-level pipelining), with a one-entry mask
    buffer between them: the selector (``S = lo_topk.latency_cycles(L)``: q, L key rows,
    selection, mask) and the attention engine (``A = 1 + K'·C + query_cycles(K')``: clear, K'
    kv operations of ``C = d/lanes`` beats, the query). In cycles from the first q beat (cycle
    0): head ``h``'s query enters the selector at ``qb_h`` (``qb_0 = 1``, then the cycle after
    the previous mask leaves), its mask leaves at ``ms_h = max(qb_h + S − 1, tk_{h−1} + 1)``
    (the buffer is free), the attention controller takes it at ``tk_h = max(ms_h + 1,
    qd_{h−1} + 1)`` (after sending head ``h−1``'s q beats at ``qd``), the engine accepts the
    clear at ``cl_h = max(tk_h + 1, end_{h−1} + 1)`` and ends at ``end_h = cl_h + A − 1``.
    """
    ap, sel = p.attention(), p.selector()
    L = lt.check_length(length, p.tokens, "decode-attention")
    kept = min(p.keep, L)
    S = lt.latency_cycles(sel, L)
    C = ap.chunks
    A = 1 + kept * C + ah.query_cycles(ap, kept)
    qb, tk_prev, qd_prev, end_prev = 1, None, None, None
    for _ in range(p.heads):
        ms = qb + S - 1 if tk_prev is None else max(qb + S - 1, tk_prev + 1)
        tk = ms + 1 if qd_prev is None else max(ms + 1, qd_prev + 1)
        cl = tk + 1 if end_prev is None else max(tk + 1, end_prev + 1)
        end_prev = cl + A - 1
        qd_prev = cl + kept * C + C
        tk_prev, qb = tk, ms + 1
    return end_prev + 1


def storage_bits(p: DecodeAttentionParams) -> int:
    """Bits of the decode-attention RTL's memories: the on-chip K and V caches
    (``kv_heads × tokens × head_dim`` int8 each) with the attention engine's memories."""
    return 2 * p.kv_heads * p.tokens * 8 * p.head_dim + ah.storage_bits(p.attention())
