"""The output half of a BitNet layer's FFN for one decode token: the gated product
``relu(g)²·u`` or ``silu(g)·u`` and the FFN activations' amax in, the layer's output residual
row out.

The chain of the existing units, exactly as :func:`hwsim.golden.vitallm.bitnet_layer.layer_forward`
computes it (``x_out`` from ``prod``, ``ffn_amax`` and ``x_attn``), with the layer's own
functions:

1. the ``prod`` row's peak → shift (:func:`~hwsim.golden.vitallm.layer_codes.shift_rows`: brought to
   ``NORM_IN_BITS`` bits, half even);
2. the FFN SubLN's ε code ``eps_code(E, shift, amax, 2k)`` (the wide divider,
   :mod:`hwsim.golden.vitallm.eps_divider`; ``amax`` is the FFN activations' amax: ``prod`` has step
   ``∝ amax**k``, ``k = 3`` for ``relu(g)²·u``, 1 for ``silu(g)·u``);
3. the integer RMSNorm with that code and the absmax activation quantizer (the ``norm-quant``
   unit fed an ε code from outside) → int8 ``a3`` + ``amax3``;
4. the ternary ``w2`` projection (:func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu_acc`, exact);
5. the residual add (:func:`~hwsim.golden.vitallm.layer_codes.residual_add`) into ``x_attn``.

Without SubLN (``subln=False``, the SiLU form of the 700M–3B configurations) steps 2–3 are the
absmax quantizer on the shifted row itself (:func:`~hwsim.golden.vitallm.layer_codes.act_quant_wide`,
the ``absmax-barrier`` rule) → int8 ``a3`` + ``amax3``, and the residual add's per-row scale
is ``(amax3 << shift) · amax**k`` (the row's step relative to the model's ``w2`` step), as
:func:`hwsim.golden.vitallm.bitnet_layer.layer_forward` forms it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.vitallm import absmax_barrier as ab
from hwsim.golden.vitallm import attn_out as ao
from hwsim.golden.vitallm import eps_divider as ed
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.golden.vitallm import ternary_mvu as mvu
from quant.qtype import INT8, QType

__all__ = ["FfnOutParams", "ffn_out", "latency_cycles", "phase_cycles", "storage_bits",
           "w2_accumulators"]

SHIFT_BITS = ao.SHIFT_BITS           # the residual requantizer's S (as attn-out)
QUANT_IN_WIDTH = lc.NORM_IN_BITS + 2  # a shifted row's codes: |·| ≤ 2**NORM_IN_BITS (half even)


@dataclass(frozen=True)
class FfnOutParams:
    """The output half of one layer's FFN on the accelerator.

    Parameters
    ----------
    hidden, ffn : int
        Residual row length and FFN width (``w2`` is ``hidden × ffn``).
    lanes : int
        Elements per beat of the norm unit and the ``w2`` MVU; divides ``hidden`` and ``ffn``.
    prod_width : int
        Signed bits of a ``prod`` code (at most 64: the golden computes in int64); sets the
        largest row shift ``prod_width − NORM_IN_BITS``.
    amax_width : int
        Bits of the FFN activations' amax (at most ``NORM_OUT.width``).
    gamma_frac, e_width : int
        Fractional bits of the SubLN's ``NORM_GAMMA_BITS``-bit gains and bits of its ε
        constant ``E``.
    res_width : int
        Bits of the residual codes (the output is the exact sum, one bit wider).
    sat_width : int
        Bits the requantized ``w2`` rows saturate to before the add (0: ``res_width``). A
        layer's ``x_attn`` is an exact sum one bit wider than the model's residual format,
        whose width the integer model saturates ``w2``'s rows to: the ``decoder-layer`` sets
        ``res_width`` to the former and ``sat_width`` to the latter.
    act : str
        The gated product: ``"relu2"`` (``relu(g)²·u``, step ∝ amax³) or ``"silu"``
        (``silu(g)·u``, step ∝ amax).
    subln : bool
        The FFN SubLN before ``w2`` (2B4T; ε power ``2k``). ``False`` (SiLU only, the 1bitLLM
        form): the absmax quantizer takes the shifted row directly; ``gamma_frac`` and
        ``e_width`` are unused.
    """

    hidden: int = 128
    ffn: int = 352
    lanes: int = 16
    prod_width: int = 44
    amax_width: int = lc.NORM_OUT.width
    gamma_frac: int = 16
    e_width: int = 161
    res_width: int = 48
    sat_width: int = 0
    act: str = "relu2"
    subln: bool = True

    def __post_init__(self):
        check_ints(self, "ffn-out", (("hidden", 1, 1 << 16), ("ffn", 1, 1 << 16),
                                     ("lanes", 1, 64), ("prod_width", 2, 64),
                                     ("amax_width", 1, lc.NORM_OUT.width),
                                     ("e_width", 1, 512), ("res_width", 2, 62),
                                     ("gamma_frac", 0, lc.NORM_GAMMA_BITS - 2)))
        if self.sat_width and not 2 <= self.sat_width <= self.res_width:
            raise HwsimError(f"ffn-out sat_width must be 0 or 2 … res_width ({self.res_width}), "
                             f"not {self.sat_width!r}")
        for f in ("hidden", "ffn"):
            if getattr(self, f) % self.lanes:
                raise HwsimError(f"ffn-out lanes ({self.lanes}) must divide {f} "
                                 f"({getattr(self, f)})")
        if self.act not in ("relu2", "silu"):
            raise HwsimError(f"ffn-out act must be relu2 or silu, not {self.act!r}")
        if not isinstance(self.subln, bool):
            raise HwsimError(f"ffn-out subln must be True or False, not {self.subln!r}")
        if not self.subln and self.act == "relu2":
            raise HwsimError("ffn-out without SubLN is the SiLU form (act=silu): the integer "
                             "model's relu² FFN needs SubLN")
        if self.subln:
            self.divider()
        self.norm_quant()
        self.quant()
        self.w2()

    @property
    def chunks(self) -> int:
        """``C``: beats of the SubLN's row (``ffn / lanes``)."""
        return self.ffn // self.lanes

    @property
    def max_shift(self) -> int:
        """The largest shift of a ``prod`` row: its bits above ``NORM_IN_BITS``."""
        return max(0, self.prod_width - lc.NORM_IN_BITS)

    @property
    def prod_power(self) -> int:
        """``k``: the power of the FFN activations' amax in the step of a ``prod`` row."""
        return 3 if self.act == "relu2" else 1

    @property
    def eps_power(self) -> int:
        """The SubLN's ε power ``2k`` (``FFN_SUB_EPS_POWER`` or ``SILU_SUB_EPS_POWER``)."""
        return lc.FFN_SUB_EPS_POWER if self.act == "relu2" else lc.SILU_SUB_EPS_POWER

    @property
    def scale_width(self) -> int:
        """Bits of ``w2``'s per-row residual scale: ``amax3`` (SubLN: ``NORM_OUT`` bits), or
        without SubLN ``(amax3 << shift) · amax**k`` (``amax3`` of a shifted row)."""
        if self.subln:
            return self.norm_quant().norm().out.width
        return QUANT_IN_WIDTH + self.max_shift + self.prod_power * self.amax_width

    @property
    def res(self) -> QType:
        """The residual format of the ``x`` codes."""
        return QType(self.res_width)

    @property
    def req(self) -> QType:
        """The format of the requantized ``w2`` rows (half-even, saturating)."""
        return QType(self.sat_width or self.res_width)

    def divider(self) -> ed.EpsDividerParams:
        return ed.EpsDividerParams(e_width=self.e_width, amax_width=self.amax_width,
                                   max_shift=self.max_shift, power=self.eps_power)

    def norm_quant(self) -> nq.NormQuantParams:
        """The SubLN's norm unit (its ε code comes from the divider)."""
        return nq.NormQuantParams(n=self.ffn, lanes=self.lanes, gamma_frac=self.gamma_frac,
                                  e_width=self.e_width,
                                  shift_width=max(1, self.max_shift.bit_length()))

    def quant(self) -> ab.AbsmaxBarrierParams:
        """Without SubLN: the absmax quantizer of the shifted ``prod`` row."""
        return ab.AbsmaxBarrierParams(length=self.ffn, in_width=QUANT_IN_WIDTH, lanes=self.lanes,
                                      recip_bits=lc.ACT_RECIP_BITS, out=INT8)

    def w2(self) -> mvu.TernaryMvuParams:
        """The ``w2`` MVU: exact accumulators out (``M = 1``, ``S = 0``)."""
        t = mvu.TernaryMvuParams(lanes=self.lanes, rows=self.hidden, cols=self.ffn)
        return mvu.TernaryMvuParams(lanes=self.lanes, rows=t.rows, cols=t.cols,
                                    out=QType(t.acc_width))


def w2_accumulators(prod, amax: int, gamma, E: int, W, p: FfnOutParams):
    """Steps 1–4 of one token: the ``prod`` row (ffn,), the FFN activations' ``amax``, the
    SubLN's gains ``gamma`` (ffn,) and ε constant ``E`` (both unused without SubLN: pass
    ``None``), the ternary ``W`` (hidden, ffn) of ``w2`` → ``(acc (hidden,), scale)``:
    ``w2``'s exact accumulators and their per-row residual scale — the quantized SubLN row's
    amax, or without SubLN ``(amax3 << shift) · amax**k`` (a Python integer)."""
    prod = QType(p.prod_width).check(np.ravel(prod), "ffn-out prod codes")
    if prod.shape != (p.ffn,):
        raise HwsimError(f"ffn-out needs {p.ffn} prod codes, got {prod.size}")
    if np.shape(W) != (p.hidden, p.ffn):
        raise HwsimError(f"ffn-out w2 must be ({p.hidden}, {p.ffn}), got {np.shape(W)}")
    for name, v in (("E", E), ("amax", amax))[not p.subln:]:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise HwsimError(f"ffn-out {name} must be an integer, not {v!r}")
    if not p.subln:
        if not 0 <= amax < 1 << p.amax_width:
            raise HwsimError(f"ffn-out amax must be 0 … 2**{p.amax_width} − 1, not {amax}")
        a3, scale3 = lc.act_quant_wide(prod[None])
        return mvu.ternary_mvu_acc(W, a3)[0], int(scale3[0]) * int(amax) ** p.prod_power
    _, shifts = lc.shift_rows(prod[None])
    ed.eps_divide(int(E), int(shifts[0]), int(amax), p.divider())     # operands fit the divider
    norm = lc.NormCodes(np.asarray(gamma, dtype=np.int64), p.norm_quant().norm(), eps=int(E),
                        eps_power=p.eps_power)
    a3, amax3 = lc.act_quant(lc.rms_rows(prod[None], norm, [int(amax)]))
    return mvu.ternary_mvu_acc(W, a3)[0], int(amax3[0])


def ffn_out(prod, amax: int, gamma, E: int, W, mult, x, p: FfnOutParams) -> np.ndarray:
    """Golden of one token: :func:`w2_accumulators` of ``prod`` … ``W``, then the residual add
    with ``w2``'s residual scale ``mult = (M, S)`` into the residual row ``x`` (hidden,,
    ``x_attn``) → the layer's output residual row (hidden,), int64 (the exact sum)."""
    x = p.res.check(np.ravel(x), "ffn-out residual codes")
    if x.shape != (p.hidden,):
        raise HwsimError(f"ffn-out needs {p.hidden} residual codes, got {x.size}")
    M, S = (int(v) for v in np.ravel(mult))
    if not (0 <= M < 1 << lc.MULT_BITS and 0 <= S < 1 << SHIFT_BITS):
        raise HwsimError(f"ffn-out residual scale (M, S) must fit {lc.MULT_BITS} and "
                         f"{SHIFT_BITS} bits, not {(M, S)}")
    acc, amax3 = w2_accumulators(prod, amax, gamma, E, W, p)
    return lc.residual_add(x[None], acc[None], [amax3], (M, S), p.req)[0]


def phase_cycles(p: FfnOutParams) -> dict[str, int]:
    """Cycles of one token on :class:`rtl.vitallm.ffn_out.FfnOut` after its last ``prod`` beat, by
    phase, in sequence, no idle input and no back-pressure (the ``ffn`` input beats come
    before; in a chained layer they overlap the producer's ``w1``/``w3`` rows):

    * ``ffn_subln``: from the cycle after the last ``prod`` beat to the ``w2`` MVU's first
      input beat. In that first cycle the divider starts (:func:`hwsim.golden.vitallm.eps_divider.
      latency_cycles` ``= DIV``) and the norm unit takes shifted beat 0; beats ``1 … C − 2``
      follow one per cycle, the last one with the ε code, ``max(C − 1, DIV)`` cycles after
      the first. The norm unit's first output beat (the MVU's first input beat) is
      ``latency(norm-quant) − 2C + 1`` cycles after its last input beat
      (:func:`hwsim.golden.vitallm.norm_quant.latency_cycles` counts ``C`` input beats back to back):
      ``max(C − 1, DIV) + 1 − 2C + latency(norm-quant)``;
    * ``w2``: the ``w2`` MVU from its first input beat to its last row
      (:func:`hwsim.golden.vitallm.ternary_mvu.latency_cycles`); each row is requantized and added to
      the residual code in the cycle it leaves.

    Without SubLN the first phase is ``ffn_quant``: the shifted beats go to the absmax
    quantizer from the cycle after the last ``prod`` beat, one per cycle, and its first output
    beat is the MVU's first input beat: ``latency(absmax-barrier) − C``
    (:func:`hwsim.golden.vitallm.absmax_barrier.latency_cycles`).
    """
    C = p.chunks
    if not p.subln:
        return {"ffn_quant": ab.latency_cycles(p.quant()) - C,
                "w2": mvu.latency_cycles(p.w2())}
    div = ed.latency_cycles(p.divider())
    return {"ffn_subln": max(C - 1, div) + 1 - 2 * C + nq.latency_cycles(p.norm_quant()),
            "w2": mvu.latency_cycles(p.w2())}


def latency_cycles(p: FfnOutParams) -> int:
    """First ``prod`` beat to the last output code, both counted: the ``ffn`` input beats
    (one code each) plus :func:`phase_cycles`."""
    return p.ffn + sum(phase_cycles(p).values())


def storage_bits(p: FfnOutParams) -> int:
    """Bits of the ``w2`` MVU's memories (the RTL's largest by far)."""
    return mvu.storage_bits(p.w2())
