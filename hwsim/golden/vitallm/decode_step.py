"""The attention block of one decode step on the accelerator (the ``decode-step`` kernel,
:class:`rtl.vitallm.decode_step.DecodeStep`): the ``qkv-frontend`` on the token's int8 activations, its
k, v appended to the on-chip KV cache, then the ``decode-attention`` phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.golden.vitallm import decode_attention as da
from hwsim.golden.vitallm import qkv_frontend as qf
from hwsim.golden.vitallm.decode_attention import (
    DecodeAttentionParams,
    decode_attention,
    decode_attention_cycles,
)
from hwsim.golden.vitallm.qkv_frontend import QkvFrontendParams, qkv_codes, qkv_frontend_cycles

__all__ = ["DecodeStepParams", "decode_step_attention", "decode_step_cycles", "decode_step_phases",
           "storage_bits"]


@dataclass(frozen=True)
class DecodeStepParams:
    """The attention block of one decode step on the accelerator: the token's int8
    activations → :class:`QkvFrontendParams` → its k, v appended to the on-chip KV cache at
    position ``tokens − 1`` → :class:`DecodeAttentionParams` over the ``tokens`` cached
    tokens."""

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


def decode_step_attention(a: dict, p: DecodeStepParams) -> tuple[np.ndarray, np.ndarray]:
    """Golden of the chained block: ``a`` holds the front end's arrays (``wq``, ``wk``, ``wv``,
    ``a``, ``amax``, ``cos``, ``sin``, ``mults``), the earlier cache ``K``, ``V``
    (kv_heads, tokens − 1, d) and ``score_mults`` (heads, 2). Returns ``(o, amax)`` per head."""
    H, G, d, M = p.heads, p.kv_heads, p.head_dim, p.tokens
    codes = qkv_codes({n: a[n] for n in ("wq", "wk", "wv")}, a["a"], int(a["amax"]), a["cos"],
                      a["sin"], np.asarray(a["mults"]).reshape(-1, 2), p.frontend())
    q8 = codes[:H * d].reshape(H, d)
    k8 = codes[H * d:(H + G) * d].reshape(G, 1, d)
    v8 = codes[(H + G) * d:].reshape(G, 1, d)
    K = np.concatenate([np.asarray(a["K"]).reshape(G, M - 1, d), k8], axis=1)
    V = np.concatenate([np.asarray(a["V"]).reshape(G, M - 1, d), v8], axis=1)
    mults = [tuple(int(v) for v in m) for m in np.asarray(a["score_mults"]).reshape(-1, 2)]
    return decode_attention(q8, K, V, mults, p.attention_phase())


def decode_step_phases(p: DecodeStepParams) -> dict[str, int]:
    """The phases of :func:`decode_step_cycles`, in sequence: the front end
    (``qkv_frontend``), ``kv_heads`` cycles to append the new k, v rows (``kv_append``), then
    the attention phase (``attention``; its first q beat follows at once)."""
    return {"qkv_frontend": qkv_frontend_cycles(p.frontend()), "kv_append": p.kv_heads,
            "attention": decode_attention_cycles(p.attention_phase())}


def decode_step_cycles(p: DecodeStepParams) -> int:
    """First ``x`` beat to last output beat: the sum of :func:`decode_step_phases`."""
    return sum(decode_step_phases(p).values())


def storage_bits(p: DecodeStepParams) -> int:
    """Bits of the decode-step RTL's memories: its front end's and its attention phase's."""
    return qf.storage_bits(p.frontend()) + da.storage_bits(p.attention_phase())
