"""The input half of a BitNet layer's FFN for one decode token: the residual row after the
attention block in, the exact gated product ``relu(g)²·u`` (``act="relu2"``, 2B4T) or
``silu(g)·u`` (``act="silu"``, the 1bitLLM 700M–3B form) and the FFN activations' amax out.

The chain of the existing units, exactly as :func:`hwsim.golden.vitallm.bitnet_layer.layer_forward`
computes it (``capture["prod"]``, ``capture["ffn_amax"]``) and with the layer's own functions:

1. the residual row's peak → shift and the FFN RMSNorm (integer ε of the norm's constant
   ``E``, power 0) + absmax activation quantizer: the ``norm-quant`` unit on the shifted row
   (:func:`hwsim.golden.vitallm.norm_quant.norm_quant_row`, the same piece ``attn-layer`` uses) →
   int8 ``a`` + ``amax``;
2. the ternary ``w1`` and ``w3`` projections of ``a`` (two MVUs on the same activation beats,
   :func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu_acc`, exact accumulators ``g``, ``u``);
3. ``prod = relu(g)²·u`` (:func:`hwsim.golden.vitallm.layer_codes.relu2_mul`), exact, in
   ``prod_width`` bits; or ``prod = silu(g)·u``
   (:func:`hwsim.golden.vitallm.layer_codes.silu_mul`: the gate requantized by the layer's
   ``(M, S)`` with the token's amax to ``GATE`` codes, the integer SiLU table, the exact product
   with ``u``).

The ``ffn-out`` kernel takes it from there (peak → shift of ``prod``, the FFN SubLN whose ε
code is ``eps_code(E, shift, amax, 6)``, the quantizer, ``w2``, the residual add).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.golden.vitallm import ternary_mvu as mvu
from quant.qtype import INT8, QType

__all__ = ["RELU2_DEPTH", "SILU_DEPTH", "FfnInParams", "ffn_in", "latency_cycles",
           "phase_cycles", "silu_action_counts", "silu_stream_cycles", "storage_bits"]

#: Register stages of the ``relu(g)²·u`` unit (:class:`rtl.vitallm.relu2_mul.Relu2Mul`): the square,
#: then the product into the output register.
RELU2_DEPTH = 2
#: Register stages of the ``silu(g)·u`` unit (:class:`rtl.vitallm.silu_mul.SiluMul`): the gate
#: requantizer, the SiLU table and add, then the product into the output register.
SILU_DEPTH = 3


@dataclass(frozen=True)
class FfnInParams:
    """The input half of one layer's FFN on the accelerator.

    Parameters
    ----------
    hidden, ffn : int
        Residual row length and FFN width (``w1``, ``w3`` are ``ffn × hidden``).
    lanes : int
        Elements per beat of the residual row, the norm unit and the two MVUs; divides
        ``hidden``.
    gamma_frac, e_width : int
        Fractional bits of the FFN RMSNorm's ``NORM_GAMMA_BITS``-bit gains and bits of its ε
        constant ``E``.
    res_width : int
        Bits of the residual codes (the input row and the pass-through ``res`` stream).
    act : str
        The gated product: ``"relu2"`` (``relu(g)²·u``) or ``"silu"`` (``silu(g)·u``).

    Raises
    ------
    HwsimError
        On sizes out of range, lanes that do not divide hidden, an unknown ``act``, or a
        product wider than 64 bits (``prod_width``; the golden computes in int64).
    """

    hidden: int = 128
    ffn: int = 352
    lanes: int = 16
    gamma_frac: int = 16
    e_width: int = 64
    res_width: int = 48
    act: str = "relu2"

    def __post_init__(self):
        if self.act not in ("relu2", "silu"):
            raise HwsimError(f"ffn-in act must be relu2 or silu, not {self.act!r}")
        check_ints(self, "ffn-in", (("hidden", 1, 1 << 16), ("ffn", 1, 1 << 16),
                                    ("lanes", 1, 64), ("e_width", 1, 256), ("res_width", 2, 62),
                                    ("gamma_frac", 0, lc.NORM_GAMMA_BITS - 2)))
        if self.hidden % self.lanes:
            raise HwsimError(f"ffn-in lanes ({self.lanes}) must divide hidden ({self.hidden})")
        if self.prod_width > 64:
            raise HwsimError(f"ffn-in {self.act} product would need {self.prod_width} bits (> 64) for "
                             f"hidden={self.hidden}")
        self.norm_quant()
        self.mvu()

    @property
    def chunks(self) -> int:
        """``C``: beats of a residual row (``hidden / lanes``)."""
        return self.hidden // self.lanes

    @property
    def shift_width(self) -> int:
        """Bits of a residual row's shift (its peak's bits above ``NORM_IN_BITS``)."""
        return lc.shift_width(self.res_width)

    @property
    def res(self) -> QType:
        return QType(self.res_width)

    def norm_quant(self) -> nq.NormQuantParams:
        """The FFN RMSNorm's norm unit."""
        return nq.NormQuantParams(n=self.hidden, lanes=self.lanes, gamma_frac=self.gamma_frac,
                                  e_width=self.e_width, shift_width=self.shift_width)

    def mvu(self) -> mvu.TernaryMvuParams:
        """The ``w1`` MVU (``w3``'s is the same): exact accumulators out (``M = 1``,
        ``S = 0``)."""
        t = mvu.TernaryMvuParams(lanes=self.lanes, rows=self.ffn, cols=self.hidden)
        return mvu.TernaryMvuParams(lanes=self.lanes, rows=t.rows, cols=t.cols,
                                    out=QType(t.acc_width))

    @property
    def acc_bound(self) -> int:
        """``B``: the largest ``|g|``, ``|u|`` (``hidden · 2**7`` for int8 activations)."""
        return self.hidden << (INT8.width - 1)

    @property
    def prod_width(self) -> int:
        """Signed bits of the product: ``|relu(g)²·u| ≤ B³``, ``|silu(g)·u| ≤ GATE.max_code ·
        B`` (:attr:`acc_bound`)."""
        if self.act == "silu":
            return (lc.GATE.max_code * self.acc_bound).bit_length() + 1
        return (self.acc_bound ** 3).bit_length() + 1

    @property
    def gated_depth(self) -> int:
        """Register stages of the gated-product unit (``RELU2_DEPTH`` or ``SILU_DEPTH``)."""
        return SILU_DEPTH if self.act == "silu" else RELU2_DEPTH


def ffn_in(x, gamma, E: int, W1, W3, p: FfnInParams,
           gate: tuple[int, int] | None = None) -> tuple[np.ndarray, int]:
    """Golden of one token: the residual row ``x`` (hidden,), the FFN RMSNorm's gains
    ``gamma`` (hidden,) and ε constant ``E``, the ternary ``W1``, ``W3`` (ffn, hidden) and, for
    ``act="silu"``, the gate requantizer ``gate = (M, S)`` (``M < 2**MULT_BITS``, ``S < 64``)
    → ``(prod (ffn,) int64, amax)``."""
    x = p.res.check(np.ravel(x), "ffn-in residual codes")
    if x.shape != (p.hidden,):
        raise HwsimError(f"ffn-in needs {p.hidden} residual codes, got {x.size}")
    if isinstance(E, bool) or not isinstance(E, int | np.integer) or not 0 <= E < 1 << p.e_width:
        raise HwsimError(f"ffn-in E must be an integer 0 … 2**{p.e_width} − 1, not {E!r}")
    for name, W in (("w1", W1), ("w3", W3)):
        if np.shape(W) != (p.ffn, p.hidden):
            raise HwsimError(f"ffn-in {name} must be ({p.ffn}, {p.hidden}), got {np.shape(W)}")
    if p.act == "silu":
        ok = (isinstance(gate, tuple | list) and len(gate) == 2
              and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in gate))
        if not ok or not (0 <= gate[0] < 1 << lc.MULT_BITS and 0 <= gate[1] < 64):
            raise HwsimError(f"ffn-in silu needs gate = (M, S) with 0 ≤ M < 2**{lc.MULT_BITS}, "
                             f"0 ≤ S < 64, not {gate!r}")
    a, amax = nq.norm_quant_row(x, gamma, int(E), p.norm_quant())
    g, u = mvu.ternary_mvu_acc(W1, a), mvu.ternary_mvu_acc(W3, a)
    if p.act == "silu":
        return lc.silu_mul(g[None], u[None], [amax], (int(gate[0]), int(gate[1])))[0], amax
    return lc.relu2_mul(g, u), amax


def phase_cycles(p: FfnInParams) -> dict[str, int]:
    """Cycles of one token on :class:`rtl.vitallm.ffn_in.FfnIn` by phase, in sequence (their sum is
    :func:`latency_cycles`), no idle input and no back-pressure:

    * ``ffn_norm``: the ``C`` row beats are stored while their peak is tracked; from the next
      cycle the shifted beats go to the norm unit, whose ``C`` output beats are the two MVUs'
      input beats: from the first row beat to the MVUs' first input beat is
      ``C + latency(norm-quant) − C`` (:func:`hwsim.golden.vitallm.norm_quant.latency_cycles`);
    * ``w1_w3``: the ``w1`` and ``w3`` MVUs in parallel on the same beats
      (:func:`hwsim.golden.vitallm.ternary_mvu.latency_cycles`, their rows leave in the same cycles),
      then the gated product's stages (``RELU2_DEPTH`` of ``relu(g)²·u`` or ``SILU_DEPTH`` of
      ``silu(g)·u``, :attr:`FfnInParams.gated_depth`) to the last ``prod`` beat.
    """
    return {"ffn_norm": nq.latency_cycles(p.norm_quant()),
            "w1_w3": mvu.latency_cycles(p.mvu()) + p.gated_depth}


def latency_cycles(p: FfnInParams) -> int:
    """First residual beat to the last ``prod`` beat, both counted: the sum of
    :func:`phase_cycles`."""
    return sum(phase_cycles(p).values())


def storage_bits(p: FfnInParams) -> int:
    """Bits of the ``w1`` and ``w3`` MVUs' memories (the RTL's largest by far), plus the SiLU
    table (``2**SILU_LUT_BITS`` entries of 6-bit magnitudes) for ``act="silu"``."""
    table = (6 << lc.SILU_LUT_BITS) if p.act == "silu" else 0
    return 2 * mvu.storage_bits(p.mvu()) + table


def silu_stream_cycles(length: int, lanes: int, vectors: int = 1) -> int:
    """Cycles of ``vectors`` rows of ``length`` gate/up pairs through ``lanes`` SiLU units
    (:class:`rtl.vitallm.silu_mul.SiluMul`, one pair per lane per cycle, ``SILU_DEPTH``
    stages): ``vectors · ceil(length / lanes) + SILU_DEPTH``."""
    return vectors * -(-length // lanes) + SILU_DEPTH


def silu_action_counts(length: int, vectors: int = 1) -> dict[str, int]:
    """Per pair of ``silu(g)·u``: the gate requantizer's ``g · amax · M`` (two multiplies, a
    rounding shift), one read of the 7-bit SiLU table, one add (``max(n, 0) + T``), the
    product with ``u``."""
    n = length * vectors
    return {"gate_mul": 2 * n, "table_read_bits": 7 * n, "silu_add": n, "product_mul": n}
