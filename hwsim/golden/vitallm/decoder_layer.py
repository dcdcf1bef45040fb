"""One BitNet decoder layer on the accelerator: the ``decoder-layer`` kernel (one decode token
in one controller, :class:`rtl.vitallm.decoder_layer.DecoderLayer`) and the layer's accelerator
parameters, sizing and decode-step counts (:class:`DecoderLayerParams`, :func:`decode_cycles`,
:func:`kv_read_bytes`), which the estimator's VitaLLM target and ``hwsim bench vitallm`` use.

The kernel chains the three verified halves, exactly as :func:`hwsim.golden.vitallm.bitnet_layer.
layer_forward` computes ``x_out`` and with their own goldens:

1. ``attn-layer`` (:func:`hwsim.golden.vitallm.attn_layer.attn_layer`): peak → shift, attention
   RMSNorm + quantizer, decode step (ternary q, k, v, RoPE, static int8, KV append, LO top-K +
   int8 attention), v-rescale, SubLN + quantizer, ``wo``, residual add → ``x_attn``
   (``res_width + 1`` bits, the exact sum);
2. ``ffn-in`` (:func:`hwsim.golden.vitallm.ffn_in.ffn_in`) on ``x_attn``: peak → shift, FFN RMSNorm +
   quantizer, ``w1`` ∥ ``w3``, ``relu(g)²·u`` (or ``silu(g)·u``) → ``prod`` and the FFN
   activations' amax;
3. ``ffn-out`` (:func:`hwsim.golden.vitallm.ffn_out.ffn_out`): peak → shift of ``prod``, the wide ε
   divider, SubLN + quantizer, ``w2``, residual add into ``x_attn`` → ``x_out``
   (``res_width + 2`` bits).

With ``act="silu"``, ``subln=False`` (the 1bitLLM form) the halves run their SiLU and
no-SubLN paths: the absmax quantizer takes the shifted rows before ``wo`` and ``w2`` directly.

The FFN half carries residual codes one bit wider than the attention half (``x_attn`` is an
exact sum); its ``w2`` rows saturate to ``res_width`` bits before the add, as
``layer_forward``'s do (``ffn-out``'s ``sat_width``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import absmax_barrier as ab
from hwsim.golden.vitallm import attn_layer as al
from hwsim.golden.vitallm import attn_out as ao
from hwsim.golden.vitallm import ffn_in as fi
from hwsim.golden.vitallm import ffn_out as fo
from hwsim.golden.vitallm import lo_topk as lt
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.golden.vitallm import rmsnorm_int as rn
from hwsim.golden.vitallm import ternary_mvu as mvu
from hwsim.golden.vitallm.decode_attention import (
    DecodeAttentionParams,
    check_heads_and_keep,
    decode_attention_cycles,
)
from hwsim.golden.vitallm.decode_step import DecodeStepParams
from hwsim.golden.vitallm.layer_codes import NORM_OUT, norm_params

__all__ = ["DecoderLayerParams", "attention_cycles", "decode_cycles", "decoder_layer", "kv_read_bytes",
           "latency_cycles", "phase_cycles", "storage_bits"]


@dataclass(frozen=True)
class DecoderLayerParams:
    """A decoder-layer accelerator holding one BitNet layer on chip: the three halves'
    parameters (``attn-layer``, ``ffn-in``, ``ffn-out``), its memories and its sizing.

    Parameters
    ----------
    heads, kv_heads, head_dim : int
        Query heads, KV heads (GQA; divides ``heads``), head dimension;
        ``hidden = heads · head_dim``.
    ffn : int
        FFN width (``w1``, ``w3``: ffn × hidden; ``w2``: hidden × ffn).
    tokens, keep : int
        ``M``, the KV-cache slots of the kernel: the most tokens a decode step attends to
        (itself included; a step's run-time length ``L`` is ``1 … M``, default ``M``), and
        ``K``, how many the sparse selector keeps (``min(K, L)``; ``K = M``: dense).
    lanes : int
        Elements per beat of every unit (the ternary MVU, the Booth attention engine, the norm
        unit); divides ``head_dim`` and ``ffn``.
    exp_lanes, score_frac : int
        Softmax exponentials per cycle; fractional bits of the int8 scores.
    norm_gamma_frac, norm_e_width, sub_gamma_frac, sub_e_width : int
        Gains' fractional bits and ε-constant bits of the attention RMSNorm and SubLN.
    ffn_gamma_frac, ffn_e_width, ffn_sub_gamma_frac, ffn_sub_e_width : int
        The same for the FFN RMSNorm and the FFN SubLN (whose ``E`` is wide: ε power 6).
    res_width : int
        Bits of the input residual codes; ``x_attn`` has ``res_width + 1``, the output
        ``res_width + 2``.
    max_len : int or None
        KV-cache capacity in tokens (``None``: ``tokens``).
    weight_kib, kv_kib : int or None
        On-chip memories the layer must fit (weights at 2 bits, I2_S packing; the KV cache at
        int8 for ``max_len`` tokens plus the 4-bit LO table); ``None``: not checked.
    act : str
        The FFN's gated product: ``"relu2"`` (2B4T) or ``"silu"`` (``ffn-in``'s and
        ``ffn-out``'s ``act``).
    subln : bool
        The attention and FFN SubLNs; ``False`` (SiLU only, the 1bitLLM form): the absmax
        quantizer takes the shifted rows before ``wo`` and ``w2`` directly (``attn-out``'s and
        ``ffn-out``'s ``subln``).

    Raises
    ------
    HwsimError
        One line, on sizes out of range, ``K > M``, lanes that do not divide ``head_dim`` or
        ``ffn``, a half that rejects its share (e.g. a product wider than 64 bits), more
        tokens than ``max_len``, or weights or a KV cache larger than their memory.
    """

    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    ffn: int = 352
    tokens: int = 128
    keep: int = 16
    lanes: int = 16
    exp_lanes: int = 4
    score_frac: int = 4
    norm_gamma_frac: int = 16
    norm_e_width: int = 64
    sub_gamma_frac: int = 16
    sub_e_width: int = 64
    ffn_gamma_frac: int = 16
    ffn_e_width: int = 64
    ffn_sub_gamma_frac: int = 16
    ffn_sub_e_width: int = 161
    res_width: int = 48
    max_len: int | None = None
    weight_kib: int | None = None
    kv_kib: int | None = None
    act: str = "relu2"
    subln: bool = True

    def __post_init__(self):
        check_heads_and_keep("decoder-layer", self,
                             ("heads", "kv_heads", "head_dim", "tokens", "exp_lanes",
                              ("ffn", 1, 1 << 16), ("lanes", 1, 64), ("res_width", 2, 60)))
        check_ints(self, "decoder-layer", [f for f in ("max_len", "weight_kib", "kv_kib")
                                           if getattr(self, f) is not None])
        for f in ("head_dim", "ffn"):
            if getattr(self, f) % self.lanes:
                raise HwsimError(f"decoder-layer lanes ({self.lanes}) must divide {f} "
                                 f"({getattr(self, f)})")
        self.attn_layer()
        self.ffn_in()
        self.ffn_out()
        if self.tokens > self.kv_tokens:
            raise HwsimError(f"decoder-layer tokens (M={self.tokens}) exceed the KV cache "
                             f"capacity max_len={self.max_len}")
        if self.weight_kib is not None and self.weight_bytes > self.weight_kib * 1024:
            raise HwsimError(f"layer weights need {self.weight_bytes} B at 2 bits, more than the "
                             f"{self.weight_kib} KiB weight memory")
        if self.kv_kib is not None and self.kv_bytes > self.kv_kib * 1024:
            raise HwsimError(f"KV cache of {self.kv_tokens} tokens needs {self.kv_bytes} B, more "
                             f"than the {self.kv_kib} KiB KV memory")

    @property
    def hidden(self) -> int:
        return self.heads * self.head_dim

    @property
    def chunks(self) -> int:
        """``C``: beats of a residual row at ``ffn-in``'s input (``hidden / lanes``)."""
        return self.hidden // self.lanes

    @property
    def kv_dim(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def kv_tokens(self) -> int:
        """Tokens the KV cache holds: ``max_len``, or ``tokens`` when none is given."""
        return self.tokens if self.max_len is None else self.max_len

    def projection_shapes(self) -> dict[str, tuple[int, int]]:
        d, f, kvd = self.hidden, self.ffn, self.kv_dim
        return {"wq": (d, d), "wk": (kvd, d), "wv": (kvd, d), "wo": (d, d),
                "w1": (f, d), "w3": (f, d), "w2": (d, f)}

    @property
    def weight_bytes(self) -> int:
        return sum(r * c for r, c in self.projection_shapes().values()) * 2 // 8

    @property
    def kv_bytes(self) -> int:
        """int8 K and V of ``kv_tokens`` tokens, plus their 4-bit (sign, leading-one) codes."""
        return self.kv_tokens * self.kv_dim * 2 + self.kv_tokens * self.kv_dim // 2

    def kv_read_bytes(self) -> dict[str, int]:
        return kv_read_bytes(self.heads, self.kv_heads, self.head_dim, self.tokens, self.keep)

    def attn_layer(self) -> al.AttnLayerParams:
        """The attention half in one controller (:mod:`hwsim.golden.vitallm.attn_layer`): residual row
        → attention RMSNorm → decode step → output path."""
        return al.AttnLayerParams(heads=self.heads, kv_heads=self.kv_heads,
                                  head_dim=self.head_dim, tokens=self.tokens, keep=self.keep,
                                  lanes=self.lanes, exp_lanes=self.exp_lanes,
                                  score_frac=self.score_frac,
                                  norm_gamma_frac=self.norm_gamma_frac,
                                  norm_e_width=self.norm_e_width,
                                  sub_gamma_frac=self.sub_gamma_frac,
                                  sub_e_width=self.sub_e_width, res_width=self.res_width,
                                  subln=self.subln)

    def ffn_in(self) -> fi.FfnInParams:
        """The FFN's input half (:mod:`hwsim.golden.vitallm.ffn_in`) on ``x_attn`` (``res_width + 1``
        bits): residual row → FFN RMSNorm → w1 ∥ w3 → relu(g)²·u."""
        return fi.FfnInParams(hidden=self.hidden, ffn=self.ffn, lanes=self.lanes,
                              gamma_frac=self.ffn_gamma_frac, e_width=self.ffn_e_width,
                              res_width=self.res_width + 1, act=self.act)

    def ffn_out(self) -> fo.FfnOutParams:
        """The FFN's output half (:mod:`hwsim.golden.vitallm.ffn_out`): ``prod`` as wide as ``ffn-in``
        makes it, the FFN activations' amax as wide as its norm unit's, residual codes of
        ``x_attn``."""
        f = self.ffn_in()
        return fo.FfnOutParams(hidden=self.hidden, ffn=self.ffn, lanes=self.lanes,
                               prod_width=f.prod_width,
                               amax_width=f.norm_quant().norm().out.width,
                               gamma_frac=self.ffn_sub_gamma_frac,
                               e_width=self.ffn_sub_e_width, res_width=self.res_width + 1,
                               sat_width=self.res_width, act=self.act, subln=self.subln)

    def decode_step(self) -> DecodeStepParams:
        """The attention half's decode-step block (:mod:`hwsim.golden.vitallm.decode_step`)."""
        return self.attn_layer().decode_step()

    def decode_attention(self) -> DecodeAttentionParams:
        return self.decode_step().attention_phase()

    def attn_out(self) -> ao.AttnOutParams:
        """The attention output path (:mod:`hwsim.golden.vitallm.attn_out`) after the attention
        phase: its heads' amax are the attention engine's."""
        return self.attn_layer().attn_out()

    def mvu(self, name: str) -> mvu.TernaryMvuParams:
        rows, cols = self.projection_shapes()[name]
        return mvu.TernaryMvuParams(lanes=self.lanes, rows=rows, cols=cols)

    def norm(self, n: int) -> rn.RmsNormParams:
        return norm_params(n, math.gcd(n, self.lanes), 16)

    def norm_quant(self, n: int) -> nq.NormQuantParams:
        """The norm unit (:mod:`hwsim.golden.vitallm.norm_quant`) of a length-``n`` norm with a fixed
        input step."""
        return nq.NormQuantParams(n=n, lanes=math.gcd(n, self.lanes), gamma_frac=16)

    def barrier(self, n: int) -> ab.AbsmaxBarrierParams:
        return ab.AbsmaxBarrierParams(length=n, in_width=NORM_OUT.width)


def decoder_layer(a: dict, p: DecoderLayerParams, length: int | None = None) -> np.ndarray:
    """Golden of one token: ``a`` holds :func:`hwsim.golden.vitallm.attn_layer.attn_layer`'s arrays
    (the residual row ``x``, the attention half's weights, cache, norms and scales) and the
    FFN's ``ffn_g``, ``ffn_E`` (FFN RMSNorm), ``w1``, ``w3``, ``ffn_sub_g``, ``ffn_sub_E``
    (FFN SubLN), ``w2`` and ``w2_mult`` (``w2``'s residual scale ``(M, S)``), with ``L =
    length`` visible tokens (default ``tokens``) → the layer's output residual row (hidden,),
    int64. ``act="silu"`` adds ``gate`` (the gate requantizer ``(M, S)``); without SubLN there
    are no ``sub_g``, ``sub_E``, ``ffn_sub_g``, ``ffn_sub_E``."""
    need = ("ffn_g", "ffn_E", "w1", "w3", "w2", "w2_mult") + (
        ("ffn_sub_g", "ffn_sub_E") if p.subln else ()) + (("gate",) if p.act == "silu" else ())
    for k in need:
        if k not in a:
            raise HwsimError(f"decoder-layer golden needs the array {k!r}")
    x_attn = al.attn_layer(a, p.attn_layer(), length)
    gate = tuple(int(v) for v in np.ravel(a["gate"])) if p.act == "silu" else None
    prod, amax = fi.ffn_in(x_attn, a["ffn_g"], a["ffn_E"], a["w1"], a["w3"], p.ffn_in(), gate)
    return fo.ffn_out(prod, amax, a.get("ffn_sub_g"), a.get("ffn_sub_E"), a["w2"],
                      a["w2_mult"], x_attn, p.ffn_out())


def phase_cycles(p: DecoderLayerParams, length: int | None = None) -> dict[str, int]:
    """Cycles of one token on :class:`rtl.vitallm.decoder_layer.DecoderLayer` by phase, in sequence
    (their sum is :func:`latency_cycles`), ``L = length`` visible tokens (default ``tokens``),
    no idle input and no back-pressure:

    * ``attn_norm`` … ``attn_out``: ``attn-layer`` (:func:`hwsim.golden.vitallm.attn_layer.
      phase_cycles`), first residual beat to its last ``y`` code;
    * ``ffn_norm``: the repacker gathers ``lanes`` of ``attn-layer``'s codes into one
      ``ffn-in`` beat and passes the beat on in the cycle its last code arrives, so the
      ``ffn-in`` row store runs during ``attn_out`` (one beat every ``lanes`` ``wo`` rows) and
      its last beat is ``attn-layer``'s last code. Nothing in ``ffn-in`` waits on the spacing
      of its row beats (the shifted row goes to the norm unit from the cycle after the last
      one), so what is left after it is ``ffn-in``'s own latency less its ``C`` row beats:
      ``latency(norm-quant) − C`` (:func:`hwsim.golden.vitallm.ffn_in.phase_cycles`' ``ffn_norm``
      less ``C``);
    * ``w1_w3``: as ``ffn-in`` (its ``prod`` beats are ``ffn-out``'s ``p`` beats, taken as
      they leave, so ``ffn-out``'s ``ffn`` input beats overlap it);
    * ``ffn_subln``, ``w2``: ``ffn-out`` after its last ``p`` beat (:func:`hwsim.golden.
      ffn_out.phase_cycles`); the residual codes it adds are ``ffn-in``'s held row (``res``),
      ready from the cycle after ``ffn-in``'s last row beat. Without SubLN ``ffn_subln`` is
      ``ffn_quant`` (and ``attn_out`` is the no-SubLN ``attn-out``'s).
    """
    fin = fi.phase_cycles(p.ffn_in())
    return {**al.phase_cycles(p.attn_layer(), length),
            "ffn_norm": fin["ffn_norm"] - p.chunks, "w1_w3": fin["w1_w3"],
            **fo.phase_cycles(p.ffn_out())}


def latency_cycles(p: DecoderLayerParams, length: int | None = None) -> int:
    """First residual beat to the last output code, both counted: the sum of
    :func:`phase_cycles`, ``latency(attn-layer) + latency(ffn-in) − C + latency(ffn-out) −
    ffn``."""
    return sum(phase_cycles(p, length).values())



def attention_cycles(p: DecoderLayerParams) -> dict[str, int]:
    """The attention phase: :func:`hwsim.golden.vitallm.decode_attention.decode_attention_cycles` of
    the RTL-verified :class:`rtl.vitallm.decode_attention.DecodeAttention` (selector and attention
    engine pipelined one head apart), with the per-head selector (``select``) and engine
    (``exact``) latencies."""
    da = p.decode_attention()
    ap = da.attention()
    return {"select": lt.latency_cycles(da.selector()),
            "exact": 1 + da.keep * ap.chunks + ah.query_cycles(ap, da.keep),
            "pipelined": decode_attention_cycles(da)}


def decode_cycles(p: DecoderLayerParams, length: int | None = None) -> dict[str, int]:
    """Cycles of one decode step of one layer over ``L = length`` visible tokens (default
    ``tokens``), by phase, and ``total`` (the phases in sequence): the ``decoder-layer`` RTL's
    schedule (:func:`phase_cycles`), measured exactly in simulation from the first residual
    beat to the last output code.

    The attention half (``attn_norm``, ``qkv_frontend``, ``kv_append``, ``attention``,
    ``attn_out``) is the ``attn-layer`` controller (:func:`hwsim.golden.vitallm.attn_layer.
    phase_cycles`: the residual row's peak → shift, the ``norm-quant`` unit, the
    ``decode-step`` block, the ``attn-out`` path). ``ffn_norm`` and ``w1_w3`` are the
    ``ffn-in`` RTL after its last row beat, which is ``attn-layer``'s last output code (the
    repacker passes a beat on with its last code, so the row store overlaps ``attn_out``):
    ``ffn_norm`` is ``ffn-in``'s norm phase less its ``C`` row beats. ``ffn_subln`` and
    ``w2`` are the ``ffn-out`` RTL after its last ``prod`` beat (:func:`hwsim.golden.vitallm.ffn_out.
    phase_cycles`: the wide ε divider, the SubLN + quantizer fed its code, the ``w2`` MVU and
    the residual add); its ``ffn`` input beats are ``ffn-in``'s output rows."""
    phases = phase_cycles(p, length)
    phases["total"] = sum(phases.values())
    return phases


def kv_read_bytes(heads: int, kv_heads: int, head_dim: int, tokens: int,
                  keep: int) -> dict[str, int]:
    """KV-cache bytes one decode step of one layer reads, built on
    :func:`hwsim.golden.vitallm.lo_topk.action_counts` (one query head: ``2·K·d`` sparse, ``2·M·d``
    dense).

    The query heads of a GQA group run back to back on the same cached rows: dense attention
    reads each KV head's ``M`` key and value rows once; sparse attention reads the union of
    the rows its ``rep = heads / kv_heads`` query heads keep, at most ``min(M, rep·K)`` rows
    (``sparse``, the bound the cycle model and the estimator use; ``hwsim bench vitallm``
    measures the union on real data). With ``rep = 1`` the reduction is exactly ``1 − K/M``
    (``per_head_reduction``). ``lo_table``: the surrogate's 4-bit codes every query head reads
    (on-chip, sparse path only).
    """
    if heads % kv_heads:
        raise HwsimError(f"kv_heads ({kv_heads}) must divide heads ({heads})")
    c = lt.action_counts(lt.LoTopKParams(tokens=tokens, head_dim=head_dim, keep=keep))
    rep = heads // kv_heads
    dense = kv_heads * c["kv_read_bytes_dense"]
    sparse = kv_heads * min(rep * c["kv_read_bytes_sparse"], c["kv_read_bytes_dense"])
    return {"dense": dense, "sparse": sparse, "lo_table": heads * c["lo_sram_read_bytes"],
            "per_head_reduction": 1 - c["kv_read_bytes_sparse"] / c["kv_read_bytes_dense"]}


def storage_bits(p: DecoderLayerParams) -> int:
    """Bits of the attention half's and the FFN halves' memories."""
    return (al.storage_bits(p.attn_layer()) + fi.storage_bits(p.ffn_in())
            + fo.storage_bits(p.ffn_out()))
