"""Predictive sparse attention (VitaLLM): exact int8 attention on the K tokens the LO surrogate
keeps out of M cached tokens.

``sparse_attention`` = :func:`hwsim.golden.vitallm.lo_topk.topk_radix` of
:func:`hwsim.golden.vitallm.lo_topk.lo_scores` → :func:`hwsim.golden.common.attention_head.attention_head` on
the kept rows of K and V (in token order). With ``keep = M`` every token is kept and the result
is dense attention, code for code (tested). Cycles and KV traffic are the two kernels' own
formulas added, not a third copy.
"""

from __future__ import annotations

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import lo_topk as lt

__all__ = ["action_counts", "decode_cycles", "sparse_attention"]


def sparse_attention(q, K, V, keep: int, score_mult: int, score_shift: int,
                     p: ah.AttentionParams | None = None) -> dict[str, np.ndarray]:
    """One decode query ``q`` (d,) against ``M`` cached ``K``, ``V`` (M, d), keeping ``keep``.

    Returns ``o`` (d,) int8, ``amax`` (the output scale), ``mask`` (M,) of kept tokens.
    """
    p = p or ah.AttentionParams()
    q = np.asarray(q)
    if q.ndim != 1:
        raise HwsimError(f"sparse attention takes one decode query (d,), got shape {q.shape}")
    K, V = np.asarray(K), np.asarray(V)
    sel = lt.LoTopKParams(tokens=K.shape[0], head_dim=q.shape[0], keep=keep)
    mask = lt.topk_radix(lt.lo_scores(q, K), sel.keep, sel.score_width)
    o, amax = ah.attention_head(q, K[mask], V[mask], score_mult, score_shift, p)
    return {"o": o[0], "amax": amax[0], "mask": mask}


def decode_cycles(p: ah.AttentionParams, tokens: int, keep: int) -> int:
    """Selector latency plus a query over the kept tokens (sequential, no overlap)."""
    sel = lt.LoTopKParams(tokens=tokens, head_dim=p.head_dim, keep=keep)
    return lt.latency_cycles(sel) + ah.query_cycles(p, keep)


def action_counts(p: ah.AttentionParams, tokens: int, keep: int) -> dict[str, int]:
    sel = lt.LoTopKParams(tokens=tokens, head_dim=p.head_dim, keep=keep)
    counts = dict(ah.action_counts(p, keep))
    for k, v in lt.action_counts(sel).items():
        counts[k] = counts.get(k, 0) + v
    return counts
