"""The TINT → Booth front end of one decode step on the accelerator (the ``qkv-frontend`` kernel,
:class:`rtl.vitallm.qkv_frontend.QkvFrontend`): q, k, v of one token by three ternary MVUs, RoPE and the
static int8 requantizer, exactly as the layer's own :func:`hwsim.golden.vitallm.bitnet_layer.
qkv_frontend`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.vitallm import ternary_mvu as mvu
from hwsim.golden.vitallm.layer_codes import NORM_OUT, rope, to_static_int8
from quant.qtype import INT8, QType

__all__ = ["AMAX_BITS", "QkvFrontendParams", "qkv_codes", "qkv_frontend_cycles", "storage_bits"]

AMAX_BITS = NORM_OUT.width                         # amax of int24 norm codes fits 24 bits


@dataclass(frozen=True)
class QkvFrontendParams:
    """q, k, v of one token: three ternary MVUs (``lanes`` wide) on the same int8 activation
    vector, then one element per cycle through RoPE and the static int8 requantizer."""

    hidden: int = 128
    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    lanes: int = 16

    def __post_init__(self):
        check_ints(self, "qkv-frontend", ("hidden", "heads", "kv_heads", "head_dim", "lanes"))
        if self.heads % self.kv_heads:
            raise HwsimError(f"qkv-frontend kv_heads ({self.kv_heads}) must divide heads "
                             f"({self.heads})")
        if self.head_dim % 2:
            raise HwsimError(f"qkv-frontend head_dim must be even (RoPE), not {self.head_dim}")
        self.mvu("wq")

    def rows(self, name: str) -> int:
        return (self.heads if name == "wq" else self.kv_heads) * self.head_dim

    def mvu(self, name: str) -> mvu.TernaryMvuParams:
        """A projection's MVU: its accumulators leave unscaled (``M = 1``, ``S = 0``)."""
        t = mvu.TernaryMvuParams(lanes=self.lanes, rows=self.rows(name), cols=self.hidden)
        return mvu.TernaryMvuParams(lanes=self.lanes, rows=t.rows, cols=t.cols,
                                    out=QType(t.acc_width))

    @property
    def elements(self) -> int:
        return (self.heads + 2 * self.kv_heads) * self.head_dim


def qkv_codes(W: dict, a, amax: int, cos_row, sin_row, mults,
              p: QkvFrontendParams) -> np.ndarray:
    """Golden of the front end for one token: ``(heads + 2·kv_heads)·hd`` int8 codes, q (head
    major) then k then v. ``mults``: (heads + 2·kv_heads) ``(M, S)`` pairs in that order.
    The same functions as :func:`hwsim.golden.vitallm.bitnet_layer.qkv_frontend` (the
    layer's own)."""
    H, G, hd = p.heads, p.kv_heads, p.head_dim
    a = INT8.check(np.asarray(a).reshape(1, p.hidden), "front-end activations")
    am = np.array([int(amax)], dtype=np.int64)
    acc = {n: mvu.ternary_mvu_acc(W[n], a) for n in ("wq", "wk", "wv")}
    cos, sin = np.asarray(cos_row)[None], np.asarray(sin_row)[None]
    mults = [tuple(int(v) for v in m) for m in mults]
    q = to_static_int8(rope(acc["wq"].reshape(1, H, hd), cos, sin), am, mults[:H])
    k = to_static_int8(rope(acc["wk"].reshape(1, G, hd), cos, sin), am, mults[H:H + G])
    v = to_static_int8(acc["wv"].reshape(1, G, hd), am, mults[H + G:])
    return np.concatenate([q.ravel(), k.ravel(), v.ravel()])


def qkv_frontend_cycles(p: QkvFrontendParams) -> int:
    """First ``x`` beat to last output code, both counted: the wq MVU (the most rows; wk and wv
    finish earlier on the same beats), one cycle to see every accumulator stored, then one
    element per cycle."""
    return mvu.latency_cycles(p.mvu("wq")) + 1 + p.elements


def storage_bits(p: QkvFrontendParams) -> int:
    """Bits of the qkv-frontend RTL's memories: the ternary weights of wq, wk and wv."""
    return sum(mvu.storage_bits(p.mvu(n)) for n in ("wq", "wk", "wv"))
