"""One BitNet decoder layer for one decode token in one controller: the residual row in, the
layer's output residual row out (the ``decoder-layer`` kernel).

The chain of the three verified halves, exactly as :func:`hwsim.golden.decoder_layer.
layer_forward` computes ``x_out`` and with their own goldens:

1. ``attn-layer`` (:func:`hwsim.golden.attn_layer.attn_layer`): peak → shift, attention
   RMSNorm + quantizer, decode step (ternary q, k, v, RoPE, static int8, KV append, LO top-K +
   int8 attention), v-rescale, SubLN + quantizer, ``wo``, residual add → ``x_attn``
   (``res_width + 1`` bits, the exact sum);
2. ``ffn-in`` (:func:`hwsim.golden.ffn_in.ffn_in`) on ``x_attn``: peak → shift, FFN RMSNorm +
   quantizer, ``w1`` ∥ ``w3``, ``relu(g)²·u`` → ``prod`` and the FFN activations' amax;
3. ``ffn-out`` (:func:`hwsim.golden.ffn_out.ffn_out`): peak → shift of ``prod``, the wide ε
   divider, SubLN + quantizer, ``w2``, residual add into ``x_attn`` → ``x_out``
   (``res_width + 2`` bits).

The FFN half carries residual codes one bit wider than the attention half (``x_attn`` is an
exact sum); its ``w2`` rows saturate to ``res_width`` bits before the add, as
``layer_forward``'s do (``ffn-out``'s ``sat_width``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints

from . import attn_layer as al
from . import ffn_in as fi
from . import ffn_out as fo

__all__ = ["LayerRtlParams", "decoder_layer", "latency_cycles", "phase_cycles",
           "storage_bits"]


@dataclass(frozen=True)
class LayerRtlParams:
    """One decoder layer on the accelerator (the three halves' parameters in one place).

    Parameters
    ----------
    heads, kv_heads, head_dim, tokens, keep, exp_lanes, score_frac : int
        The attention half (:class:`hwsim.golden.attn_layer.AttnLayerParams`);
        ``hidden = heads · head_dim``.
    ffn : int
        FFN width (``w1``, ``w3``: ffn × hidden; ``w2``: hidden × ffn).
    lanes : int
        Elements per beat of every unit; divides ``head_dim`` and ``ffn``.
    norm_gamma_frac, norm_e_width, sub_gamma_frac, sub_e_width : int
        Gains' fractional bits and ε-constant bits of the attention RMSNorm and SubLN.
    ffn_gamma_frac, ffn_e_width, ffn_sub_gamma_frac, ffn_sub_e_width : int
        The same for the FFN RMSNorm and the FFN SubLN (whose ``E`` is wide: ε power 6).
    res_width : int
        Bits of the input residual codes; ``x_attn`` has ``res_width + 1``, the output
        ``res_width + 2``.

    Raises
    ------
    HwsimError
        One line, on sizes out of range, lanes that do not divide ``head_dim`` or ``ffn``, or a
        half that rejects its share (e.g. ``K > M``, a product wider than 64 bits).
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

    def __post_init__(self):
        check_ints(self, "decoder-layer", ("heads", "kv_heads", "head_dim", "tokens", "keep",
                                           "exp_lanes", ("ffn", 1, 1 << 16), ("lanes", 1, 64),
                                           ("res_width", 2, 60)))
        for f in ("head_dim", "ffn"):
            if getattr(self, f) % self.lanes:
                raise HwsimError(f"decoder-layer lanes ({self.lanes}) must divide {f} "
                                 f"({getattr(self, f)})")
        self.attn_layer()
        self.ffn_in()
        self.ffn_out()

    @property
    def hidden(self) -> int:
        return self.heads * self.head_dim

    @property
    def chunks(self) -> int:
        """``C``: beats of a residual row at ``ffn-in``'s input (``hidden / lanes``)."""
        return self.hidden // self.lanes

    def attn_layer(self) -> al.AttnLayerParams:
        return al.AttnLayerParams(heads=self.heads, kv_heads=self.kv_heads,
                                  head_dim=self.head_dim, tokens=self.tokens, keep=self.keep,
                                  lanes=self.lanes, exp_lanes=self.exp_lanes,
                                  score_frac=self.score_frac,
                                  norm_gamma_frac=self.norm_gamma_frac,
                                  norm_e_width=self.norm_e_width,
                                  sub_gamma_frac=self.sub_gamma_frac,
                                  sub_e_width=self.sub_e_width, res_width=self.res_width)

    def ffn_in(self) -> fi.FfnInParams:
        """The FFN's input half on ``x_attn`` (``res_width + 1`` bits)."""
        return fi.FfnInParams(hidden=self.hidden, ffn=self.ffn, lanes=self.lanes,
                              gamma_frac=self.ffn_gamma_frac, e_width=self.ffn_e_width,
                              res_width=self.res_width + 1)

    def ffn_out(self) -> fo.FfnOutParams:
        """The FFN's output half: ``prod`` as wide as ``ffn-in`` makes it, the FFN
        activations' amax as wide as its norm unit's, residual codes of ``x_attn``."""
        f = self.ffn_in()
        return fo.FfnOutParams(hidden=self.hidden, ffn=self.ffn, lanes=self.lanes,
                               prod_width=f.prod_width,
                               amax_width=f.norm_quant().norm().out.width,
                               gamma_frac=self.ffn_sub_gamma_frac,
                               e_width=self.ffn_sub_e_width, res_width=self.res_width + 1,
                               sat_width=self.res_width)


def decoder_layer(a: dict, p: LayerRtlParams) -> np.ndarray:
    """Golden of one token: ``a`` holds :func:`hwsim.golden.attn_layer.attn_layer`'s arrays
    (the residual row ``x``, the attention half's weights, cache, norms and scales) and the
    FFN's ``ffn_g``, ``ffn_E`` (FFN RMSNorm), ``w1``, ``w3``, ``ffn_sub_g``, ``ffn_sub_E``
    (FFN SubLN), ``w2`` and ``w2_mult`` (``w2``'s residual scale ``(M, S)``) → the layer's
    output residual row (hidden,), int64."""
    for k in ("ffn_g", "ffn_E", "w1", "w3", "ffn_sub_g", "ffn_sub_E", "w2", "w2_mult"):
        if k not in a:
            raise HwsimError(f"decoder-layer golden needs the array {k!r}")
    x_attn = al.attn_layer(a, p.attn_layer())
    prod, amax = fi.ffn_in(x_attn, a["ffn_g"], a["ffn_E"], a["w1"], a["w3"], p.ffn_in())
    return fo.ffn_out(prod, amax, a["ffn_sub_g"], a["ffn_sub_E"], a["w2"], a["w2_mult"], x_attn,
                      p.ffn_out())


def phase_cycles(p: LayerRtlParams) -> dict[str, int]:
    """Cycles of one token on :class:`rtl.decoder_layer.DecoderLayer` by phase, in sequence
    (their sum is :func:`latency_cycles`), no idle input and no back-pressure:

    * ``attn_norm`` … ``attn_out``: ``attn-layer`` (:func:`hwsim.golden.attn_layer.
      phase_cycles`), first residual beat to its last ``y`` code;
    * ``ffn_norm``: the repacker gathers ``lanes`` of ``attn-layer``'s codes into one
      ``ffn-in`` beat and passes the beat on in the cycle its last code arrives, so the
      ``ffn-in`` row store runs during ``attn_out`` (one beat every ``lanes`` ``wo`` rows) and
      its last beat is ``attn-layer``'s last code. Nothing in ``ffn-in`` waits on the spacing
      of its row beats (the shifted row goes to the norm unit from the cycle after the last
      one), so what is left after it is ``ffn-in``'s own latency less its ``C`` row beats:
      ``latency(norm-quant) − C`` (:func:`hwsim.golden.ffn_in.phase_cycles`' ``ffn_norm``
      less ``C``);
    * ``w1_w3``: as ``ffn-in`` (its ``prod`` beats are ``ffn-out``'s ``p`` beats, taken as
      they leave, so ``ffn-out``'s ``ffn`` input beats overlap it);
    * ``ffn_subln``, ``w2``: ``ffn-out`` after its last ``p`` beat (:func:`hwsim.golden.
      ffn_out.phase_cycles`); the residual codes it adds are ``ffn-in``'s held row (``res``),
      ready from the cycle after ``ffn-in``'s last row beat.
    """
    fin = fi.phase_cycles(p.ffn_in())
    return {**al.phase_cycles(p.attn_layer()),
            "ffn_norm": fin["ffn_norm"] - p.chunks, "w1_w3": fin["w1_w3"],
            **fo.phase_cycles(p.ffn_out())}


def latency_cycles(p: LayerRtlParams) -> int:
    """First residual beat to the last output code, both counted: the sum of
    :func:`phase_cycles`, ``latency(attn-layer) + latency(ffn-in) − C + latency(ffn-out) −
    ffn``."""
    return sum(phase_cycles(p).values())



def storage_bits(p: LayerRtlParams) -> int:
    """Bits of the attention half's and the FFN halves' memories."""
    return (al.storage_bits(p.attn_layer()) + fi.storage_bits(p.ffn_in())
            + fo.storage_bits(p.ffn_out()))
