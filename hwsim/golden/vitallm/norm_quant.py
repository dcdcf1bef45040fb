"""RMSNorm with integer ε, then the activation quantizer: the norm unit of the BitNet layer.

One vector (a row of the residual stream already shifted to ``NORM_IN_BITS`` bits by
:func:`hwsim.golden.vitallm.layer_codes.shift_rows`, with its ``shift``) goes through

1. the ε code of the row, ``eps_code(E, shift)`` — ``E`` rounded half up by ``2·shift`` bits
   and capped at ``EPS_CAP`` (:func:`hwsim.golden.vitallm.layer_codes.eps_code` with power 0: the
   residual norms and the attention SubLN, whose input step is fixed);
2. the layer's integer RMSNorm (:func:`hwsim.golden.vitallm.rmsnorm_int.rmsnorm_int`, formats
   :func:`hwsim.golden.vitallm.layer_codes.norm_params`) → ``NORM_OUT`` codes;
3. the per-token absmax activation quantizer of the integer model
   (:func:`hwsim.golden.vitallm.layer_codes.act_quant`: ``amax = max |y|``, ``(r, k) =
   reciprocal(amax)``, ``a = sat8(round_half_even(y · r · 127 / 2**k))``) → int8 + amax.

This is exactly what the integer model computes before q/k/v and the FFN
(``act_quant(rms_rows(x, norm))``); the functions are the layer's own. The FFN SubLN (ε power
6: a divide of ``E`` by ``amax⁶ · 4**shift``) uses the unit's RTL with the ε code from outside
(``NormQuant(..., eps_in=True)`` fed by the wide divider; ``hwsim.golden.vitallm.ffn_out``); the
latency is the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from hwsim.golden.common import jit
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import rmsnorm_int as rn
from quant.qtype import INT8

__all__ = ["NormQuantParams", "latency_cycles", "norm_act_rows", "norm_quant", "norm_quant_row",
           "storage_bits", "stream_cycles"]


@dataclass(frozen=True)
class NormQuantParams:
    """The norm unit of one layer.

    Parameters
    ----------
    n : int
        Vector length (hidden size).
    lanes : int
        Elements per cycle; must divide ``n``.
    gamma_frac : int
        Fractional bits of the ``NORM_GAMMA_BITS``-bit gains (set per norm at build time).
    e_width : int
        Bits of the ``E`` port (the norm's ε constant, :func:`layer_codes.eps_constant`).
    shift_width : int
        Bits of a vector's ``shift`` (the right shift that brought it to ``NORM_IN_BITS``).
    """

    n: int = 128
    lanes: int = 16
    gamma_frac: int = 16
    e_width: int = 80
    shift_width: int = 5

    def __post_init__(self):
        check_ints(self, "norm-quant", (("n", 1, 1 << 16), ("lanes", 1, 64), ("e_width", 1, 256),
                                        ("shift_width", 1, 6),
                                        ("gamma_frac", 0, lc.NORM_GAMMA_BITS - 2)))
        self.norm()

    def norm(self) -> rn.RmsNormParams:
        return lc.norm_params(self.n, self.lanes, self.gamma_frac)

    @property
    def chunks(self) -> int:
        return self.n // self.lanes


def norm_quant(X, gamma, E: int, shifts, p: NormQuantParams) -> tuple[np.ndarray, np.ndarray]:
    """Golden: shifted rows ``X`` ((rows, n), ``WIDE`` codes), gains ``gamma`` (n,), the norm's
    ε constant ``E`` and each row's ``shifts`` → ``(a (rows, n) int8, amax (rows,))``."""
    X = np.atleast_2d(np.asarray(X, dtype=np.int64))
    shifts = np.asarray(shifts, dtype=np.int64).ravel()
    if shifts.shape != (X.shape[0],):
        raise HwsimError(f"norm-quant needs one shift per row ({X.shape[0]}), got {shifts.size}")
    if shifts.size and (shifts.min() < 0 or shifts.max() >> p.shift_width):
        raise HwsimError(f"norm-quant shifts must be 0 … {(1 << p.shift_width) - 1}")
    if isinstance(E, bool) or not isinstance(E, int | np.integer) or not 0 <= E < 1 << p.e_width:
        raise HwsimError(f"norm-quant E must be an integer 0 … 2**{p.e_width} − 1, not {E!r}")
    norm = lc.NormCodes(np.asarray(gamma, dtype=np.int64), p.norm(), eps=int(E))
    return lc.act_quant(lc.rms_shifted(X, norm, lc.norm_eps_codes(norm, shifts)))


def norm_quant_row(x, gamma, E: int, p: NormQuantParams) -> tuple[np.ndarray, int]:
    """One row of any integer width (e.g. a residual row) through the peak → shift piece
    (:func:`hwsim.golden.vitallm.layer_codes.shift_rows`: brought to ``NORM_IN_BITS`` bits, half
    even) and :func:`norm_quant` → ``(a (n,) int8, amax)``. The RTL of the piece is
    :class:`rtl.common.row_shift.RowShift`."""
    xs, shifts = lc.shift_rows(np.asarray(x, dtype=np.int64).reshape(1, -1))
    a, amax = norm_quant(xs, gamma, E, shifts, p)
    return a[0], int(amax[0])


def norm_act_rows(x, norm: lc.NormCodes, amax=None) -> tuple[np.ndarray, np.ndarray]:
    """``act_quant(rms_rows(x, norm, amax))`` of rows ``x`` (rows, n) of any integer width: the
    norm unit as the integer model runs it, ``(a (rows, n) int8, amax (rows,))``.

    Where the compiled loops run (:mod:`hwsim.golden.common.jit`) each row makes one pass
    (peak → shift → RMSNorm → absmax quantizer); the ε codes come from
    :func:`~hwsim.golden.vitallm.layer_codes.norm_eps_codes` (in int64 for a power-0 ``E``
    below 2**61). A row its int64 arithmetic does not cover sends the whole call to the numpy
    definition."""
    x = np.asarray(x)
    p = norm.p
    if (jit.enabled() and x.ndim == 2 and x.shape[1] == p.n and x.dtype.kind in "iu"
            and x.shape[0] and norm.gamma.shape == (p.n,)):
        k = jit.kernels()
        xs = np.ascontiguousarray(x, dtype=np.int64)
        shifts = k.norm_shifts(xs, lc.NORM_IN_BITS)
        if shifts.min() >= 0:
            if norm.eps_power == 0 and amax is None and int(norm.eps) < 1 << 61:
                codes = k.eps_codes_pow0(np.int64(norm.eps), shifts)
            else:
                codes = lc.norm_eps_codes(norm, shifts, amax)
            a, am, bad = jit.specialized("norm_act", p.out, INT8)(
                xs, shifts, codes, p.gamma.check(norm.gamma, "rmsnorm gains"),
                2 * p.rms_frac, p.recip_bits, p.shift_base, *rn.int64_limits(p),
                lc.ACT_RECIP_BITS, INT8.max_code)
            if bad < 0:
                return a, am
    return lc.act_quant(lc.rms_rows(x, norm, amax))


def latency_cycles(p: NormQuantParams) -> int:
    """Cycles of one vector on :class:`rtl.vitallm.norm_quant.NormQuant`, first input beat to last
    output beat, no idle input and no back-pressure: the RMSNorm's
    (:func:`hwsim.golden.vitallm.rmsnorm_int.latency_cycles`; its output beats are stored as they come
    with their running ``max |y|``), then one cycle to start the reciprocal of the amax,
    ``ACT_RECIP_BITS + 2`` cycles until it is done, one to latch it, two pipeline stages
    (read, scale) and ``C`` output beats."""
    return rn.latency_cycles(p.norm()) + 1 + lc.ACT_RECIP_BITS + 2 + 1 + 2 + p.chunks - 1


def stream_cycles(p: NormQuantParams, vectors: int) -> int:
    """First input beat to last output beat of ``vectors`` vectors sent back to back: the
    RMSNorm takes the next vector as soon as its last output beat is stored, so vectors start
    every ``rmsnorm_int.latency_cycles`` cycles (the quantizer's phase overlaps the next
    vector's norm)."""
    return (vectors - 1) * rn.latency_cycles(p.norm()) + latency_cycles(p)


def storage_bits(p: NormQuantParams) -> int:
    """Bits of the RTL's memories: the RMSNorm's row buffer and the normalized row's."""
    return rn.storage_bits(p.norm()) + p.chunks * p.lanes * p.norm().out.width
