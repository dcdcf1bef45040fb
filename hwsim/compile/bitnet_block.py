"""BitNet b1.58 decoder blocks with static int8 quantizers, the form ``hwsim compile`` builds
(see docs/compile-models.md, "BitNet blocks"): :class:`BitNetFFNBlock` (the feed-forward half)
and :class:`BitNetDecoderBlock` (a whole layer: causal grouped-query attention with RoPE, then
the feed-forward half; :mod:`models.bitnet.static_layer` fills one from a trained model).

The feed-forward half is
``x + w2(Q(SubLN(Q(Q(relu(w1·h))²) ⊙ Q(w3·h)))))`` with ``h = Q(RMSNorm(x))``: RMSNorm and
SubLN (RMSNorm) with per-channel gains, ternary absmean ``w1``/``w3``/``w2`` without bias,
ReLU² written ``Mul(r, r)`` (the whole layer writes it ``Pow(r, 2)``, which qonnx's
``cleanup`` keeps intact; the compiler takes both), the gating product and the residual
add. Every activation a compute node reads or writes has a per-tensor int8 quantizer set by
calibration
(:class:`brevitas.quant.Int8ActPerTensorFloat`) where the exported BitNet layer
(:mod:`models.bitnet.export`) has dynamic per-token absmax quantizers and float tensors.
"""

from __future__ import annotations

from pathlib import Path

import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFixedPoint

from hwsim.errors import HwsimError
from quant.brevitas_quantizers import TernaryAbsmeanWeight

__all__ = ["BitNetDecoderBlock", "BitNetFFNBlock", "RMSNorm", "calibrated", "calibrated_layer",
           "export", "export_layer", "rope_tables"]


class RMSNorm(torch.nn.Module):
    """``x / sqrt(mean(x²) + ε) · γ`` over the last axis (as :class:`models.bitnet.model.RMSNorm`)."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _q():
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)


def _ternary(i: int, o: int):
    return qnn.QuantLinear(i, o, bias=False, weight_quant=TernaryAbsmeanWeight,
                           output_quant=Int8ActPerTensorFloat)


class BitNetFFNBlock(torch.nn.Module):
    """The FFN half of a BitNet b1.58 2B4T decoder layer (width ``d``, FFN width ``ffn``)."""

    def __init__(self, d: int = 128, ffn: int = 352, eps: float = 1e-5):
        super().__init__()
        self.inp, self.norm, self.qn = _q(), RMSNorm(d, eps), _q()
        self.w1, self.w3, self.qg = _ternary(d, ffn), _ternary(d, ffn), _q()
        self.qm, self.sub_norm, self.qs = _q(), RMSNorm(ffn, eps), _q()
        self.w2, self.out = _ternary(ffn, d), _q()

    def forward(self, x):
        x = self.inp(x)
        h = self.qn(self.norm(x))
        r = torch.relu(self.w1(h))
        m = self.qm(self.qg(r * r) * self.w3(h))
        return self.out(x + self.w2(self.qs(self.sub_norm(m))))


def calibrated(d: int = 128, ffn: int = 352, tokens: int = 8, seed: int = 0) -> BitNetFFNBlock:
    """A seeded block with gains in [0.5, 1.5], its activation scales set by 8 training-mode
    batches of ``tokens`` normal vectors, in eval mode."""
    torch.manual_seed(seed)
    model = BitNetFFNBlock(d, ffn)
    with torch.no_grad():
        model.norm.weight.uniform_(0.5, 1.5)
        model.sub_norm.weight.uniform_(0.5, 1.5)
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(tokens, d) * 2)
    return model.eval()


def export(path: Path, fmt: str, d: int = 128, ffn: int = 352, tokens: int = 8,
           seed: int = 0) -> Path:
    """The calibrated block exported to ``path`` as ``fmt`` (``qonnx``/``qcdq``), input
    ``(tokens, d)``."""
    from quant.onnx import export_brevitas
    return export_brevitas(calibrated(d, ffn, tokens, seed), torch.randn(tokens, d), Path(path),
                           fmt)


def _rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def rope_tables(head_dim: int, tokens: int, theta: float = 10000.0):
    """cos, sin (tokens, head_dim) of rotate-half RoPE (as :func:`models.bitnet.model.rope_tables`)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    ang = torch.arange(tokens, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().float(), ang.sin().float()


class _ProbQuant(Uint8ActPerTensorFixedPoint):
    """Attention probabilities as uint8 codes of 1/256."""

    scaling_impl_type = "const"
    scaling_init = 1.0
    max_val = 1.0


class BitNetDecoderBlock(torch.nn.Module):
    """A whole BitNet b1.58 decoder layer on ``tokens`` positions (causal prefill) with static
    int8 quantizers: the attention half ``x1 = Q(x + wo(Q(SubLN(attn))))`` with
    ``attn = Q(softmax(Q(RoPE(wq·h)) · Q(RoPE(wk·h))ᵀ / √hd + causal) · (wv·h))``,
    ``h = Q(RMSNorm(x))``, grouped-query heads (``heads`` query heads, ``kv_heads`` key/value
    heads), then the feed-forward half of :class:`BitNetFFNBlock` on ``x1``."""

    def __init__(self, d: int = 128, ffn: int = 352, heads: int = 4, kv_heads: int = 2,
                 tokens: int = 8, eps: float = 1e-5, theta: float = 10000.0):
        super().__init__()
        if d % heads or heads % kv_heads or (d // heads) % 2:
            raise HwsimError(f"decoder block: d={d}, heads={heads}, kv_heads={kv_heads} need "
                             "d divisible by heads, heads by kv_heads and an even head dim")
        self.heads, self.kv_heads, self.hd, self.tokens = heads, kv_heads, d // heads, tokens
        self.inp, self.attn_norm, self.qn = _q(), RMSNorm(d, eps), _q()
        self.wq, self.wk = _ternary(d, d), _ternary(d, kv_heads * self.hd)
        self.wv = _ternary(d, kv_heads * self.hd)
        self.qr, self.kr = _q(), _q()
        self.qp, self.qo = qnn.QuantIdentity(act_quant=_ProbQuant), _q()
        self.attn_sub, self.qa = RMSNorm(d, eps), _q()
        self.wo, self.mid = _ternary(d, d), _q()
        self.ffn_norm, self.qf = RMSNorm(d, eps), _q()
        self.w1, self.w3, self.qg = _ternary(d, ffn), _ternary(d, ffn), _q()
        self.qm, self.ffn_sub, self.qs = _q(), RMSNorm(ffn, eps), _q()
        self.w2, self.out = _ternary(ffn, d), _q()
        cos, sin = rope_tables(self.hd, tokens, theta)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)
        self.register_buffer("mask", torch.ones(tokens, tokens, dtype=torch.bool).triu(1))

    def _split(self, z, n):
        return z.reshape(self.tokens, n, self.hd).transpose(0, 1)        # (n, T, hd)

    def forward(self, x):
        T, H, rep = self.tokens, self.heads, self.heads // self.kv_heads
        x = self.inp(x)
        h = self.qn(self.attn_norm(x))
        q = self.qr(self._rope(self._split(self.wq(h), H)))
        k = self.kr(self._rope(self._split(self.wk(h), self.kv_heads)))
        v = self._split(self.wv(h), self.kv_heads)
        if rep > 1:
            k, v = k.repeat_interleave(rep, dim=0), v.repeat_interleave(rep, dim=0)
        s = (q @ k.transpose(-1, -2)) / self.hd ** 0.5
        a = self.qp(torch.softmax(s.masked_fill(self.mask, float("-inf")), dim=-1))
        o = self.qo((a @ v).transpose(0, 1).reshape(T, H * self.hd))
        x = self.mid(x + self.wo(self.qa(self.attn_sub(o))))
        g = self.qf(self.ffn_norm(x))
        r = torch.relu(self.w1(g))
        m = self.qm(self.qg(r.pow(2)) * self.w3(g))  # Pow(r, 2): qonnx's cleanup keeps it whole
        return self.out(x + self.w2(self.qs(self.ffn_sub(m))))

    def _rope(self, z):
        return z * self.cos + _rotate_half(z) * self.sin


def calibrated_layer(d: int = 128, ffn: int = 352, heads: int = 4, kv_heads: int = 2,
                     tokens: int = 8, seed: int = 0) -> BitNetDecoderBlock:
    """A seeded decoder block with gains in [0.5, 1.5], its activation scales set by 8
    training-mode batches of ``tokens`` normal vectors (σ = 2), in eval mode."""
    torch.manual_seed(seed)
    model = BitNetDecoderBlock(d, ffn, heads, kv_heads, tokens)
    with torch.no_grad():
        for norm in (model.attn_norm, model.attn_sub, model.ffn_norm, model.ffn_sub):
            norm.weight.uniform_(0.5, 1.5)
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(tokens, d) * 2)
    return model.eval()


def export_layer(path: Path, fmt: str, d: int = 128, ffn: int = 352, heads: int = 4,
                 kv_heads: int = 2, tokens: int = 8, seed: int = 0) -> Path:
    """The calibrated decoder block exported to ``path`` as ``fmt``, input ``(tokens, d)``."""
    from quant.onnx import export_brevitas
    return export_brevitas(calibrated_layer(d, ffn, heads, kv_heads, tokens, seed),
                           torch.randn(tokens, d), Path(path), fmt)
