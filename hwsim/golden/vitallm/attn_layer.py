"""The attention half of a BitNet decoder layer for one decode token: residual row in,
residual row after the attention block out.

The chain of the existing units, exactly as :func:`hwsim.golden.vitallm.bitnet_layer.layer_forward`
computes it (``x_attn``) and with the layer's own functions:

1. the residual row's peak → shift (:func:`~hwsim.golden.vitallm.layer_codes.shift_rows`: the row
   brought to ``NORM_IN_BITS`` bits, half even);
2. the attention RMSNorm with the integer ε of the norm's constant ``E`` (power 0) and the
   absmax activation quantizer (the ``norm-quant`` unit, :func:`hwsim.golden.vitallm.norm_quant.
   norm_quant`) → int8 + amax;
3. the ``decode-step`` block (:func:`~hwsim.golden.vitallm.decode_step.decode_step_attention`:
   ternary q, k, v, RoPE, static int8, KV append at slot ``L − 1``, LO top-K + int8
   attention over the ``L`` visible tokens; ``L``, the run-time length, defaults to
   ``tokens``) → the heads' ``o`` and ``amax``;
4. the ``attn-out`` path (:func:`hwsim.golden.vitallm.attn_out.attn_out`: v-rescale, SubLN +
   quantizer, ``wo``, residual add into the same residual row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import attn_out as ao
from hwsim.golden.vitallm import decode_step as gds
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq

__all__ = ["AttnLayerParams", "activations", "attn_layer", "latency_cycles", "phase_cycles",
           "storage_bits"]


@dataclass(frozen=True)
class AttnLayerParams:
    """The attention half of one decoder layer on the accelerator.

    Parameters
    ----------
    heads, kv_heads, head_dim, tokens, keep, exp_lanes, score_frac : int
        As :class:`hwsim.golden.vitallm.decode_step.DecodeStepParams`; ``hidden = heads · head_dim``.
    lanes : int
        Elements per beat of the residual row, the norm units, the MVUs and the attention
        engine; divides ``head_dim``.
    norm_gamma_frac, norm_e_width : int
        Fractional bits of the attention RMSNorm's gains and bits of its ε constant ``E``.
    sub_gamma_frac, sub_e_width : int
        The same for the attention SubLN.
    res_width : int
        Bits of the residual codes (the output is the exact sum, one bit wider).
    subln : bool
        The attention SubLN (``attn-out``'s ``subln``; ``False``: the 1bitLLM form, no
        ``sub_g``/``sub_E``).
    """

    heads: int = 4
    kv_heads: int = 2
    head_dim: int = 32
    tokens: int = 128
    keep: int = 16
    lanes: int = 16
    exp_lanes: int = 4
    score_frac: int = 4
    norm_gamma_frac: int = 16
    norm_e_width: int = 64
    sub_gamma_frac: int = 16
    sub_e_width: int = 64
    res_width: int = 48
    subln: bool = True

    def __post_init__(self):
        for name in ("heads", "head_dim", "lanes"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise HwsimError(f"attn-layer {name} must be a positive integer, not {v!r}")
        if self.head_dim % self.lanes:
            raise HwsimError(f"attn-layer lanes ({self.lanes}) must divide head_dim "
                             f"({self.head_dim})")
        self.decode_step()
        self.attn_out()          # res_width 2 … 62
        self.norm_quant()

    @property
    def hidden(self) -> int:
        return self.heads * self.head_dim

    @property
    def chunks(self) -> int:
        """``C``: beats of a row (``hidden / lanes``)."""
        return self.hidden // self.lanes

    @property
    def shift_width(self) -> int:
        """Bits of a residual row's shift (its peak's bits above ``NORM_IN_BITS``)."""
        return lc.shift_width(self.res_width)

    def norm_quant(self) -> nq.NormQuantParams:
        """The attention RMSNorm's norm unit."""
        return nq.NormQuantParams(n=self.hidden, lanes=self.lanes,
                                  gamma_frac=self.norm_gamma_frac, e_width=self.norm_e_width,
                                  shift_width=self.shift_width)

    def decode_step(self) -> gds.DecodeStepParams:
        return gds.DecodeStepParams(hidden=self.hidden, heads=self.heads,
                                    kv_heads=self.kv_heads, head_dim=self.head_dim,
                                    tokens=self.tokens, keep=self.keep, lanes=self.lanes,
                                    exp_lanes=self.exp_lanes, score_frac=self.score_frac)

    def attn_out(self) -> ao.AttnOutParams:
        """The output path; its heads' amax are the attention engine's."""
        amax = self.decode_step().attention_phase().attention().av_acc_width
        return ao.AttnOutParams(heads=self.heads, head_dim=self.head_dim, lanes=self.lanes,
                                amax_width=amax, gamma_frac=self.sub_gamma_frac,
                                e_width=self.sub_e_width, res_width=self.res_width,
                                subln=self.subln)


def _row(x, p: AttnLayerParams) -> np.ndarray:
    x = p.attn_out().res.check(np.ravel(x), "attn-layer residual codes")
    if x.shape != (p.hidden,):
        raise HwsimError(f"attn-layer needs {p.hidden} residual codes, got {x.size}")
    return x


def activations(x, gamma, E: int, p: AttnLayerParams) -> tuple[np.ndarray, int]:
    """Steps 1–2: the residual row ``x`` (hidden,), the attention RMSNorm's gains ``gamma``
    and ε constant ``E`` → ``(a (hidden,) int8, amax)``."""
    return nq.norm_quant_row(_row(x, p), gamma, E, p.norm_quant())


def attn_layer(a: dict, p: AttnLayerParams, length: int | None = None) -> np.ndarray:
    """Golden of one token: ``a`` holds the residual row ``x`` (hidden,), the attention
    RMSNorm's ``norm_g`` and ``norm_E``, the decode step's arrays (``wq``, ``wk``, ``wv``,
    ``cos``, ``sin``, ``mults``, the earlier cache ``K``, ``V`` and ``score_mults``, as
    :func:`~hwsim.golden.vitallm.decode_step.decode_step_attention`), and the output path's
    ``ratio``, ``sub_g``, ``sub_E``, ``wo`` and ``mult`` (as :func:`hwsim.golden.vitallm.attn_out.
    attn_out`), with ``L = length`` visible tokens (default ``tokens``) → the residual row
    after the attention block (hidden,), int64."""
    x = _row(a["x"], p)
    act, amax = activations(x, a["norm_g"], a["norm_E"], p)
    o, amax_o = gds.decode_step_attention({**a, "a": act, "amax": amax}, p.decode_step(),
                                          length)
    return ao.attn_out(o, amax_o, a["ratio"], a.get("sub_g"), a.get("sub_E"), a["wo"],
                       a["mult"], x, p.attn_out())


def phase_cycles(p: AttnLayerParams, length: int | None = None) -> dict[str, int]:
    """Cycles of one token on :class:`rtl.vitallm.attn_layer.AttnLayer` by phase, in sequence (their
    sum is :func:`latency_cycles`), ``L = length`` visible tokens (default ``tokens``), no idle
    input and no back-pressure:

    * ``attn_norm``: the ``C`` row beats are stored while their peak is tracked; from the next
      cycle the shifted beats go to the norm unit, whose ``C`` output beats are the decode
      step's input beats: from the first row beat to the decode step's first input beat is
      ``C + latency(norm-quant) − C`` (:func:`hwsim.golden.vitallm.norm_quant.latency_cycles`);
    * ``qkv_frontend``, ``kv_append``, ``attention``: the decode step
      (:func:`hwsim.golden.vitallm.decode_step.decode_step_phases`); its last output beat is the
      output path's last ``o`` beat;
    * ``attn_out``: the output path after its last ``o`` beat,
      ``latency(attn-out) − C`` (:func:`hwsim.golden.vitallm.attn_out.latency_cycles`).
    """
    return {"attn_norm": nq.latency_cycles(p.norm_quant()),
            **gds.decode_step_phases(p.decode_step(), length),
            "attn_out": ao.latency_cycles(p.attn_out()) - p.chunks}


def latency_cycles(p: AttnLayerParams, length: int | None = None) -> int:
    """First residual beat to the last output code, both counted: the sum of
    :func:`phase_cycles`."""
    return sum(phase_cycles(p, length).values())


def storage_bits(p: AttnLayerParams) -> int:
    """Bits of the decode step's and ``attn-out``'s memories."""
    return gds.storage_bits(p.decode_step()) + ao.storage_bits(p.attn_out())
