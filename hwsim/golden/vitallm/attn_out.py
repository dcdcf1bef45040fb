"""The attention output path of a BitNet decode step: heads' outputs → residual stream.

From the decode-step attention block's per-head outputs (``o`` int8 with its row ``amax``, as
:func:`hwsim.golden.vitallm.decode_attention.decode_attention` returns them) to the token's residual row
after the attention block, exactly as :func:`hwsim.golden.vitallm.bitnet_layer.layer_forward` computes
it (the functions are the layer's own):

1. v-rescale (:func:`~hwsim.golden.vitallm.layer_codes.v_rescale`): head ``h``'s codes times its
   ``amax`` times its ``V_RATIO_FRAC``-bit ratio ``r_h`` (its v step over the layer's largest),
   rounded half even by ``V_RATIO_FRAC`` bits → the "wide" row (``heads · head_dim`` codes);
2. the attention SubLN and activation quantizer (the ``norm-quant`` unit,
   :func:`hwsim.golden.vitallm.norm_quant.norm_quant`): the row shifted to ``NORM_IN_BITS`` bits
   (:func:`~hwsim.golden.vitallm.layer_codes.shift_rows`), RMSNorm with the integer ε of the norm's
   constant ``E`` (power 0: the wide step is fixed), absmax int8 + amax;
3. the ``wo`` ternary projection (:func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu_acc`, exact);
4. the residual add (:func:`~hwsim.golden.vitallm.layer_codes.residual_add`): ``x + sat(round(acc ·
   amax · M / 2**S))`` in the residual format, the add exact.

Without SubLN (``subln=False``, the 700M–3B configurations) step 2 is the absmax quantizer on
the shifted wide row itself (:func:`~hwsim.golden.vitallm.layer_codes.act_quant_wide`), and the
residual add's per-row scale is ``amax << shift``, as ``layer_forward`` forms it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.vitallm import absmax_barrier as ab
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.golden.vitallm import ternary_mvu as mvu
from quant.qtype import INT8, QType

__all__ = ["AttnOutParams", "attn_out", "latency_cycles", "storage_bits",
           "wo_accumulators"]

RATIO_BITS = lc.V_RATIO_FRAC + 1     # a head's v-step ratio is at most 2**V_RATIO_FRAC
SHIFT_BITS = 6                       # the residual requantizer's S


@dataclass(frozen=True)
class AttnOutParams:
    """The attention output path of one decode token.

    Parameters
    ----------
    heads, head_dim : int
        Query heads and their dimension; the residual row has ``heads · head_dim`` codes.
    lanes : int
        Elements per cycle of the input beats, the norm unit and the ``wo`` MVU; divides
        ``head_dim``.
    amax_width : int
        Bits of a head's output ``amax`` (the attention engine's ``av_acc_width``).
    gamma_frac : int
        Fractional bits of the SubLN's ``NORM_GAMMA_BITS``-bit gains.
    e_width : int
        Bits of the SubLN's ε constant ``E``.
    res_width : int
        Bits of the residual codes (the output is the exact sum, one bit wider).
    subln : bool
        The attention SubLN before ``wo``. ``False`` (the 1bitLLM form): the absmax quantizer
        takes the shifted wide row directly; ``gamma_frac`` and ``e_width`` are unused.
    """

    heads: int = 4
    head_dim: int = 32
    lanes: int = 16
    amax_width: int = 20
    gamma_frac: int = 16
    e_width: int = 64
    res_width: int = 48
    subln: bool = True

    def __post_init__(self):
        check_ints(self, "attn-out", (("heads", 1, 256), ("head_dim", 1, 4096), ("lanes", 1, 64),
                                      ("amax_width", 1, 32), ("e_width", 1, 256),
                                      ("res_width", 2, 62),
                                      ("gamma_frac", 0, lc.NORM_GAMMA_BITS - 2)))
        if self.head_dim % self.lanes:
            raise HwsimError(f"attn-out lanes ({self.lanes}) must divide head_dim "
                             f"({self.head_dim})")
        if not isinstance(self.subln, bool):
            raise HwsimError(f"attn-out subln must be True or False, not {self.subln!r}")
        self.wo()

    @property
    def hidden(self) -> int:
        return self.heads * self.head_dim

    @property
    def chunks(self) -> int:
        """``C``: beats of a row (``hidden / lanes``)."""
        return self.hidden // self.lanes

    @property
    def wide_width(self) -> int:
        """Signed bits of a wide code: ``|o · amax · r| / 2**15 < 2**(amax_width + 8)``."""
        return self.amax_width + 9

    @property
    def res(self) -> QType:
        """The residual format (half-even, saturating requantization)."""
        return QType(self.res_width)

    def norm_quant(self) -> nq.NormQuantParams:
        """The SubLN's norm unit; its ``shift`` port holds any wide row's shift."""
        shift = lc.shift_width(self.wide_width)
        return nq.NormQuantParams(n=self.hidden, lanes=self.lanes, gamma_frac=self.gamma_frac,
                                  e_width=self.e_width, shift_width=shift)

    @property
    def scale_width(self) -> int:
        """Bits of ``wo``'s per-row residual scale: the SubLN row's amax (``NORM_OUT`` bits),
        or without SubLN ``amax << shift`` of the shifted wide row."""
        if self.subln:
            return self.norm_quant().norm().out.width
        return self.quant().in_width + max(0, self.wide_width - lc.NORM_IN_BITS)

    def quant(self) -> ab.AbsmaxBarrierParams:
        """Without SubLN: the absmax quantizer of the shifted wide row (as ``ffn-out``'s)."""
        return ab.AbsmaxBarrierParams(length=self.hidden, in_width=lc.NORM_IN_BITS + 2,
                                      lanes=self.lanes, recip_bits=lc.ACT_RECIP_BITS, out=INT8)

    def wo(self) -> mvu.TernaryMvuParams:
        """The ``wo`` MVU: exact accumulators out (``M = 1``, ``S = 0``)."""
        t = mvu.TernaryMvuParams(lanes=self.lanes, rows=self.hidden, cols=self.hidden)
        return mvu.TernaryMvuParams(lanes=self.lanes, rows=t.rows, cols=t.cols,
                                    out=QType(t.acc_width))


def wo_accumulators(o, amax_o, ratios, gamma, E: int, W, p: AttnOutParams):
    """Steps 1–3 of one token: heads' outputs ``o`` (heads, head_dim) int8 with ``amax_o``
    (heads,), the heads' v-step ``ratios`` (heads,), the SubLN's gains ``gamma`` (hidden,) and
    ε constant ``E`` (unused without SubLN: pass ``None``), the ternary ``W`` (hidden, hidden)
    of ``wo`` → ``(acc (hidden,), amax)``: ``wo``'s exact accumulators and the quantized SubLN
    row's amax (without SubLN: the row's scale ``amax << shift``, a Python integer)."""
    H, d = p.heads, p.head_dim
    o = INT8.check(np.asarray(o), "attn-out head outputs")
    if o.shape != (H, d):
        raise HwsimError(f"attn-out expects o of shape ({H}, {d}), got {o.shape}")
    amax_o = QType(p.amax_width, signed=False).check(np.ravel(amax_o), "attn-out amax")
    ratios = QType(RATIO_BITS, signed=False).check(np.ravel(ratios), "attn-out ratios")
    if amax_o.shape != (H,) or ratios.shape != (H,):
        raise HwsimError(f"attn-out needs {H} head amax and {H} ratios")
    if p.subln and (isinstance(E, bool) or not isinstance(E, int | np.integer)
                    or not 0 <= E < 1 << p.e_width):
        raise HwsimError(f"attn-out E must be an integer 0 … 2**{p.e_width} − 1, not {E!r}")
    wide = np.concatenate([lc.v_rescale(o[h][None], amax_o[h:h + 1], int(ratios[h]))[0]
                           for h in range(H)])
    if not p.subln:
        a, scale = lc.act_quant_wide(wide[None])
        return mvu.ternary_mvu_acc(W, a)[0], int(scale[0])
    xs, shifts = lc.shift_rows(wide[None])
    a, amax = nq.norm_quant(xs, gamma, int(E), shifts, p.norm_quant())
    return mvu.ternary_mvu_acc(W, a)[0], int(amax[0])


def attn_out(o, amax_o, ratios, gamma, E: int, W, mult, x, p: AttnOutParams) -> np.ndarray:
    """Golden of one token: :func:`wo_accumulators` of ``o`` … ``W``, then the residual add
    with ``wo``'s residual scale ``mult = (M, S)`` into the residual row ``x`` (hidden,) → the
    residual row after the attention block (hidden,), int64 (the exact sum)."""
    x = p.res.check(np.ravel(x), "attn-out residual codes")
    if x.shape != (p.hidden,):
        raise HwsimError(f"attn-out needs {p.hidden} residual codes, got {x.size}")
    M, S = (int(v) for v in np.ravel(mult))
    if not (0 <= M < 1 << lc.MULT_BITS and 0 <= S < 1 << SHIFT_BITS):
        raise HwsimError(f"attn-out residual scale (M, S) must fit {lc.MULT_BITS} and "
                         f"{SHIFT_BITS} bits, not {(M, S)}")
    acc, amax = wo_accumulators(o, amax_o, ratios, gamma, E, W, p)
    return lc.residual_add(x[None], acc[None], [amax], (M, S), p.res)[0]


def latency_cycles(p: AttnOutParams) -> int:
    """Cycles of one token on :class:`rtl.vitallm.attn_out.AttnOut`, first ``o`` beat to last output
    code, both counted, no idle input and no back-pressure: ``C`` beats rescale and store the
    wide row (tracking its peak); from the next cycle the ``C`` shifted beats go to the norm
    unit (:func:`hwsim.golden.vitallm.norm_quant.latency_cycles` from its first input beat), whose
    ``C`` output beats are the ``wo`` MVU's input beats
    (:func:`hwsim.golden.vitallm.ternary_mvu.latency_cycles` from its first input beat, which loads
    ``C`` beats); each MVU output row is requantized and added to the residual code in the
    cycle it leaves. The norm unit's last output beat is ``C − 1`` cycles after its first, so
    the store's ``C`` cycles and the MVU's input ``C`` cycles overlap exactly:
    ``latency(norm-quant) + latency(wo MVU)``. Without SubLN the absmax quantizer takes the
    norm unit's place: ``latency(absmax-barrier) + latency(wo MVU)``
    (:func:`hwsim.golden.vitallm.absmax_barrier.latency_cycles`)."""
    if not p.subln:
        return ab.latency_cycles(p.quant()) + mvu.latency_cycles(p.wo())
    return nq.latency_cycles(p.norm_quant()) + mvu.latency_cycles(p.wo())


def storage_bits(p: AttnOutParams) -> int:
    """Bits of the ``wo`` MVU's memories (the RTL's largest by far)."""
    return mvu.storage_bits(p.wo())
