"""The BitNet b1.58 decoder in PyTorch: float baseline and ternary QAT model, one code path.

Architecture (arXiv 2402.17764; BitNet b1.58 2B4T report; see ``shared/REFERENCE.md``)::

    x = embed(tokens)                                   # (B, T, d)
    for each layer:
        h = RMSNorm(x)
        q, k, v = wq(h), wk(h), wv(h)                    # BitLinear, no biases
        q, k = RoPE(q), RoPE(k)                          # rotate-half form (LLaMA / HF)
        a = softmax(q kᵀ / √hd + causal) v               # GQA: KV head h // (heads / kv_heads)
        x = x + wo(SubLN(a))                             # SubLN only when config.subln
        h = RMSNorm(x)
        x = x + w2(SubLN(act(w1 h) ⊙ w3 h))              # act: relu(·)² (2B4T) or SiLU
    logits = head(RMSNorm(x))                            # float embedding and head

In the quantized model (``quantized=True``) every projection is a :class:`BitLinear`: a Brevitas
``QuantLinear`` with the absmean ternary weight quantizer, fed through the per-token absmax int8
activation quantizer (:mod:`quant.brevitas_quantizers`). The float model uses ``nn.Linear``
with the same parameter names, so a checkpoint of either loads into either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from brevitas.nn import QuantLinear
from torch import nn

from quant.brevitas_quantizers import PerTokenAbsmaxInt8, TernaryAbsmeanWeight

from .config import BitNetConfig

__all__ = ["PROJECTIONS", "AttentionQuant", "BitLinear", "BitNetModel", "DecoderLayer", "RMSNorm",
           "rope_tables"]

#: Projection names of one decoder layer → attribute path inside :class:`DecoderLayer`.
PROJECTIONS = {"wq": "attn.wq", "wk": "attn.wk", "wv": "attn.wv", "wo": "attn.wo",
               "w1": "ffn.w1", "w3": "ffn.w3", "w2": "ffn.w2"}


class BitLinear(QuantLinear):
    """Ternary-weight, int8-activation projection without bias (the paper's BitLinear).

    ``weight_gain`` (a buffer, 1 after training) multiplies the output. It is set only when a
    pre-quantized checkpoint is loaded whose stored weight scale is not the absmean of its
    dequantized weights (bitnet.cpp / Hugging Face 2-bit packed weights, see
    :mod:`models.bitnet.hf`): the per-matrix scale is then ``mean|W| · weight_gain``.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__(in_features, out_features, bias=False, weight_quant=TernaryAbsmeanWeight)
        self.act_quant = PerTokenAbsmaxInt8()
        self.register_buffer("weight_gain", torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(self.act_quant(x))
        return y if bool(self.weight_gain == 1) else y * self.weight_gain


def _linear(in_f: int, out_f: int, quantized: bool) -> nn.Module:
    return BitLinear(in_f, out_f) if quantized else nn.Linear(in_f, out_f, bias=False)


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x²) + eps) · weight`` over the last dimension."""

    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(head_dim: int, positions: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables (positions, head_dim) of rotate-half RoPE: frequency ``θ^(−2i/hd)``."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = torch.arange(positions, dtype=torch.float64)[:, None] * inv[None, :]  # (P, hd/2)
    ang = torch.cat([ang, ang], dim=-1)                                           # (P, hd)
    return ang.cos().float(), ang.sin().float()


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x`` (B, H, T, hd) rotated by the tables' first T rows."""
    T = x.shape[-2]
    return x * cos[:T] + _rotate_half(x) * sin[:T]


@dataclass
class AttentionQuant:
    """Static int8 attention datapath of the integer model, as fake quantization (inference).

    ``s_q`` (heads,), ``s_k``, ``s_v`` (kv_heads,): per-head int8 steps of q, k (after RoPE)
    and v; scores are int8 with ``score_frac`` fractional bits; probabilities uint8 / 256;
    each head's output is per-token absmax int8. Set by
    :func:`models.bitnet.integer_model.attach_datapath`; not used in training.
    """

    s_q: torch.Tensor
    s_k: torch.Tensor
    s_v: torch.Tensor
    score_frac: int


def _fq_static(x: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
    """x (B, heads, T, hd) → int8 codes at a per-head step, dequantized."""
    s = step.view(1, -1, 1, 1).to(x.dtype)
    return torch.clamp(torch.round(x / s), -128, 127) * s


def _fq_per_row(x: torch.Tensor) -> torch.Tensor:
    step = x.abs().amax(dim=-1, keepdim=True).clamp(min=1e-30) / 127
    return torch.clamp(torch.round(x / step), -128, 127) * step


class Attention(nn.Module):
    def __init__(self, cfg: BitNetConfig, quantized: bool):
        super().__init__()
        d, hd = cfg.hidden, cfg.head_dim
        self.heads, self.kv_heads, self.head_dim = cfg.heads, cfg.kv_heads, hd
        self.wq = _linear(d, cfg.heads * hd, quantized)
        self.wk = _linear(d, cfg.kv_dim, quantized)
        self.wv = _linear(d, cfg.kv_dim, quantized)
        self.wo = _linear(cfg.heads * hd, d, quantized)
        self.sub_norm = RMSNorm(cfg.heads * hd, cfg.norm_eps) if cfg.subln else None
        #: optional int8 attention datapath (see :class:`AttentionQuant`); None: float attention
        self.datapath: AttentionQuant | None = None

    def forward(self, x, cos, sin):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.heads, self.head_dim).transpose(1, 2)     # (B, H, T, hd)
        k = self.wk(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        v = self.wv(x).view(B, T, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        dp = self.datapath
        if dp is not None:
            q, k, v = (_fq_static(q, dp.s_q), _fq_static(k, dp.s_k), _fq_static(v, dp.s_v))
        rep = self.heads // self.kv_heads
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)                                   # (B, H, T, hd)
            v = v.repeat_interleave(rep, dim=1)
        scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)           # (B, H, T, T)
        pos = torch.arange(T, device=x.device)
        mask = pos[None, :] > pos[:, None]                                       # (T, T) future
        if dp is not None:
            step = 2.0 ** -dp.score_frac
            scores = torch.clamp(torch.round(scores / step), -128, 127) * step
        scores = scores.masked_fill(mask, float("-inf"))
        probs = scores.softmax(dim=-1)
        if dp is not None:
            probs = torch.clamp(torch.round(probs * 256), 0, 255) / 256
        a = probs @ v                                                            # (B, H, T, hd)
        if dp is not None:
            a = _fq_per_row(a)
        a = a.transpose(1, 2).reshape(B, T, -1)                                  # (B, T, H·hd)
        if self.sub_norm is not None:
            a = self.sub_norm(a)
        return self.wo(a)


class FeedForward(nn.Module):
    def __init__(self, cfg: BitNetConfig, quantized: bool):
        super().__init__()
        self.act = cfg.act
        self.w1 = _linear(cfg.hidden, cfg.ffn, quantized)  # gate
        self.w3 = _linear(cfg.hidden, cfg.ffn, quantized)  # up
        self.w2 = _linear(cfg.ffn, cfg.hidden, quantized)  # down
        self.sub_norm = RMSNorm(cfg.ffn, cfg.norm_eps) if cfg.subln else None
        #: optional fixed-point SiLU of the integer datapath: the gate and its SiLU rounded to
        #: ``2**-silu_frac`` (set by :func:`models.bitnet.integer_model.attach_datapath`)
        self.silu_frac: int | None = None

    def forward(self, x):
        g = self.w1(x)
        if self.act == "relu2":
            g = F.relu(g).pow(2)
        elif self.silu_frac is None:
            g = F.silu(g)
        else:                   # the integer SiLU: round(silu(round(g·2**F)·2**-F)·2**F)·2**-F
            s = 2.0 ** self.silu_frac
            gq = torch.round(g.double() * s) / s
            g = (torch.floor(F.silu(gq) * s + 0.5) / s).to(g.dtype)
        h = g * self.w3(x)                                                       # (B, T, ffn)
        if self.sub_norm is not None:
            h = self.sub_norm(h)
        return self.w2(h)


class DecoderLayer(nn.Module):
    def __init__(self, cfg: BitNetConfig, quantized: bool):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.attn = Attention(cfg, quantized)
        self.ffn_norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.ffn = FeedForward(cfg, quantized)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.ffn(self.ffn_norm(x))


class BitNetModel(nn.Module):
    """BitNet b1.58 decoder; ``quantized=False`` gives the float baseline of the same shape.

    ``forward(tokens)`` maps (B, T) int64 tokens, T ≤ ``config.max_seq``, to (B, T, vocab)
    logits of the next token.
    """

    def __init__(self, cfg: BitNetConfig, quantized: bool = True):
        cfg.check_memory()  # one line, before any tensor, for a model this machine cannot hold
        super().__init__()
        self.config, self.quantized = cfg, quantized
        self.embed = nn.Embedding(cfg.vocab, cfg.hidden)
        self.layers = nn.ModuleList(DecoderLayer(cfg, quantized) for _ in range(cfg.layers))
        self.norm = RMSNorm(cfg.hidden, cfg.norm_eps)
        self.head = nn.Linear(cfg.hidden, cfg.vocab, bias=False)
        if cfg.tie_embeddings:
            self.head.weight = self.embed.weight
        #: optional int8 per-tensor step of the LM head (integer datapath); None: float head
        self.head_step: float | None = None
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self._init_weights()

    def _init_weights(self) -> None:
        std = 0.02
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                continue
            # residual-branch outputs scaled by depth (GPT-2 / nanoGPT)
            scale = 1 / math.sqrt(2 * self.config.layers) if name.endswith(("wo.weight",
                                                                           "w2.weight")) else 1
            nn.init.normal_(p, 0.0, std * scale)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.embed(tokens)                                                   # (B, T, d)
        for layer in self.layers:
            x = layer(x, self.rope_cos, self.rope_sin)
        h = self.norm(x)
        if self.head_step is None:
            return self.head(h)                                                  # (B, T, V)
        w = torch.clamp(torch.round(self.head.weight / self.head_step), -128, 127)
        return _fq_per_row(h) @ (w * self.head_step).t()
