"""The attention block of one decode step on the accelerator (the ``decode-step`` kernel,
:class:`rtl.vitallm.decode_step.DecodeStep`): the ``qkv-frontend`` on the token's int8 activations, its
k, v appended to the on-chip KV cache, then the ``decode-attention`` phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decode_attention as da
from hwsim.golden.vitallm import lo_topk as lt
from hwsim.golden.vitallm import qkv_frontend as qf
from hwsim.golden.vitallm.decode_attention import (
    DecodeAttentionParams,
    decode_attention,
    decode_attention_cycles,
)
from hwsim.golden.vitallm.qkv_frontend import QkvFrontendParams, qkv_codes, qkv_frontend_cycles

__all__ = ["DecodeStepParams", "decode_step_attention", "decode_step_cycles", "decode_step_phases",
           "new_kv", "storage_bits"]


@dataclass(frozen=True)
class DecodeStepParams:
    """The attention block of one decode step on the accelerator: the token's int8
    activations → :class:`QkvFrontendParams` → its k, v appended to the on-chip KV cache
    (``tokens`` slots per KV head) at position ``L − 1`` → :class:`DecodeAttentionParams` over
    the ``L`` cached tokens; ``L``, the run-time length, is ``1 … tokens``."""

    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    tokens: int = 128
    keep: int = 16
    lanes: int = 16
    exp_lanes: int = 4
    score_frac: int = 4

    def __post_init__(self):
        self.frontend()
        self.attention_phase()

    def frontend(self) -> QkvFrontendParams:
        return QkvFrontendParams(hidden=self.hidden, heads=self.heads, kv_heads=self.kv_heads,
                                 head_dim=self.head_dim, lanes=self.lanes)

    def attention_phase(self) -> DecodeAttentionParams:
        return DecodeAttentionParams(heads=self.heads, kv_heads=self.kv_heads,
                                     head_dim=self.head_dim, tokens=self.tokens, keep=self.keep,
                                     lanes=math.gcd(self.head_dim, self.lanes),
                                     exp_lanes=self.exp_lanes, score_frac=self.score_frac)


def _codes(a: dict, p: DecodeStepParams):
    H, G, d = p.heads, p.kv_heads, p.head_dim
    codes = qkv_codes({n: a[n] for n in ("wq", "wk", "wv")}, a["a"], int(a["amax"]), a["cos"],
                      a["sin"], np.asarray(a["mults"]).reshape(-1, 2), p.frontend())
    return (codes[:H * d].reshape(H, d), codes[H * d:(H + G) * d].reshape(G, d),
            codes[(H + G) * d:].reshape(G, d))


def new_kv(a: dict, p: DecodeStepParams) -> tuple[np.ndarray, np.ndarray]:
    """The token's own ``k8``, ``v8`` (kv_heads, d): what the step writes at slot ``L − 1`` of
    each KV head (the RTL's ``kv_new`` tap)."""
    _, k8, v8 = _codes(a, p)
    return k8, v8


def decode_step_attention(a: dict, p: DecodeStepParams,
                          length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Golden of the chained block: ``a`` holds the front end's arrays (``wq``, ``wk``, ``wv``,
    ``a``, ``amax``, ``cos``, ``sin``, ``mults``), the earlier cache ``K``, ``V``
    (kv_heads, n, d) with ``n ≥ L − 1`` rows (rows past ``L − 2`` ignored) and ``score_mults``
    (heads, 2), ``L = length`` (default ``tokens``). Returns ``(o, amax)`` per head."""
    G, M, d = p.kv_heads, p.tokens, p.head_dim
    L = lt.check_length(length, M, "decode-step")
    q8, k8, v8 = _codes(a, p)
    Kc, Vc = (np.asarray(a[n]).reshape(G, -1, d) for n in ("K", "V"))
    if Kc.shape[1] < L - 1 or Vc.shape != Kc.shape:
        raise HwsimError(f"decode-step length {L} needs an earlier cache of {L - 1} tokens per "
                         f"KV head, got K {Kc.shape}, V {Vc.shape}")
    pad = np.zeros((G, M - L, d), dtype=np.int64)   # slots past L − 1: never read
    K = np.concatenate([Kc[:, :L - 1], k8[:, None], pad], axis=1)
    V = np.concatenate([Vc[:, :L - 1], v8[:, None], pad], axis=1)
    mults = [tuple(int(v) for v in m) for m in np.asarray(a["score_mults"]).reshape(-1, 2)]
    return decode_attention(q8, K, V, mults, p.attention_phase(), L)


def decode_step_phases(p: DecodeStepParams, length: int | None = None) -> dict[str, int]:
    """The phases of :func:`decode_step_cycles`, in sequence: the front end
    (``qkv_frontend``), ``kv_heads`` cycles to append the new k, v rows (``kv_append``), then
    the attention phase over ``L = length`` tokens (``attention``; its first q beat follows at
    once)."""
    return {"qkv_frontend": qkv_frontend_cycles(p.frontend()), "kv_append": p.kv_heads,
            "attention": decode_attention_cycles(p.attention_phase(), length)}


def decode_step_cycles(p: DecodeStepParams, length: int | None = None) -> int:
    """First ``x`` beat to last output beat: the sum of :func:`decode_step_phases`."""
    return sum(decode_step_phases(p, length).values())


def storage_bits(p: DecodeStepParams) -> int:
    """Bits of the decode-step RTL's memories: its front end's and its attention phase's."""
    return qf.storage_bits(p.frontend()) + da.storage_bits(p.attention_phase())
