"""The compiled loops of :mod:`hwsim.golden.common.jit` (numba, ``cache=True``).

Imported only through :func:`hwsim.golden.common.jit.kernels`, so numba loads on the first
golden call that uses a loop, not with every ``import hwsim``. Rounding modes are the integers
of :data:`hwsim.golden.common.jit.ROUNDING`; an overflow rule is the tuple of
:func:`hwsim.golden.common.jit.fit_args`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ONE = np.int64(1)
_TOP = np.int64((1 << 63) - 1)


# ------------------------------------------------------------------------------------------
# scalar integer operations (each the exact definition of its numpy counterpart)
@njit(cache=True)
def round_shift(v, s, mode):
    """``v / 2**s`` rounded by ``mode`` (0 floor, 1 trunc, 2 half up, 3 half away, 4 half
    even), ``0 ≤ s ≤ 62``; exact for every int64 ``v``: the floor plus one where the bits
    shifted out pass the mode's threshold (``rem + 2**(s−1) < 2**63``, no overflow)."""
    fl = v >> s
    mask = (_ONE << s) - 1
    rem = v & mask                             # the bits shifted out, 0 ≤ rem < 2**s
    half_m1 = mask >> 1                        # 2**(s−1) − 1 (0 for s = 0, and so is rem)
    on = np.int64(s > 0)
    if mode == 0:
        return fl
    if mode == 1:
        return fl + np.int64(v < 0 and rem != 0)
    if mode == 2:
        return fl + ((rem + half_m1 + on) >> s)
    if mode == 3:
        return fl + ((rem + half_m1 + (np.int64(v >= 0) & on)) >> s)
    return fl + ((rem + half_m1 + ((fl & 1) & on)) >> s)


@njit(cache=True)
def fit(v, lo, hi, width, signed, wrap, narrow):
    """``QType.fit`` of one code: clamp to ``[lo, hi]``, or keep the low ``width`` bits."""
    if not wrap:
        if v < lo:
            return lo
        return hi if v > hi else v
    if width == 64:
        return v
    low = v & ((_ONE << width) - 1)
    if signed:
        if low >= (_ONE << (width - 1)):
            low -= _ONE << width
        if narrow and low < lo:
            low = lo
    return low


@njit(cache=True)
def bit_length(v):
    """Bits of a non-negative int64 (0 for 0)."""
    n = 0
    while v > 0:
        v >>= 1
        n += 1
    return n


@njit(cache=True)
def isqrt(v):
    """``floor(sqrt(v))`` of a non-negative int64, exact (compared by division: no overflow)."""
    r = np.int64(np.sqrt(np.float64(v)))
    while r > 0 and v // r < r:
        r -= 1
    while v // (r + 1) >= r + 1:
        r += 1
    return r


@njit(cache=True)
def reciprocal(s, bits):
    """``(floor(2**k / s), k)`` with ``k = max(bitlen(s) − 1, 0) + bits``; ``(0, bits)`` for
    ``s = 0``; ``r = −1`` where ``k > 62`` (the caller's exact path takes over)."""
    k = max(bit_length(s) - 1, 0) + bits
    if k > 62:
        return -1, k
    if s == 0:
        return 0, k
    return (_ONE << k) // s, k


# ------------------------------------------------------------------------------------------
# the BitNet layer's norm unit: shift_rows → RMSNorm → absmax activation quantizer
@njit(cache=True)
def norm_shifts(x, in_bits):
    """Per row of int64 ``x`` (R, n): the right shift that brings its peak to ``in_bits``
    bits (``layer_codes.shift_rows``); −1 for a row holding −2**63."""
    R, n = x.shape
    out = np.empty(R, dtype=np.int64)
    for i in range(R):
        lo = x[i, 0]
        hi = x[i, 0]
        for j in range(1, n):
            lo = min(lo, x[i, j])
            hi = max(hi, x[i, j])
        if lo == -(_ONE << 62) * 2:                # −2**63: its magnitude has no int64
            out[i] = -1
        else:
            out[i] = max(bit_length(max(hi, -lo)) - in_bits, 0)
    return out


@njit(cache=True)
def eps_codes_pow0(E, shifts):
    """``layer_codes.eps_code(E, s)`` (power 0) of each shift, for ``0 ≤ E < 2**61``: ``E``
    rounded half up by ``2s`` bits."""
    out = np.empty(shifts.size, dtype=np.int64)
    for i in range(shifts.size):
        s2 = 2 * shifts[i]
        if s2 == 0:
            out[i] = E
        elif s2 > 61:
            out[i] = 0
        else:
            out[i] = (E + (_ONE << (s2 - 1))) >> s2
    return out


def _make_rms_row(out_mode, out_fit):
    """One row of ``rmsnorm_int`` for one output format: ``rms_row(x, out, eps, gamma, gmax,
    two_g, recip_bits, shift_base, lim_sq, lim_ss, lim_y)`` writes the codes of row ``x`` into
    ``out`` (may be ``x`` itself) and returns False where the row is past the int64 limits of
    ``rmsnorm_int.int64_limits`` (``out`` then untouched)."""
    lo, hi, width, signed, wrap, narrow = out_fit

    @njit(cache=True, inline="always")
    def rms_row(x, out, eps, gamma, gmax, two_g, recip_bits, shift_base, lim_sq, lim_ss, lim_y):
        n = x.size
        peak = np.int64(0)
        for j in range(n):
            peak = max(peak, abs(x[j]))
        if peak > isqrt(lim_sq) or (gmax > 0 and peak > lim_y // gmax):
            return False
        ss = np.int64(0)
        for j in range(n):
            ss += x[j] * x[j]
        if ss > lim_ss:
            return False
        t = (ss << two_g) // n
        if eps < 0 or t > _TOP - eps:                  # v = t + ε past int64
            return False
        r, k = reciprocal(isqrt(t + eps), recip_bits)
        sh = k - recip_bits + shift_base
        if r < 0 or sh < 0 or sh > 62:
            return False
        for j in range(n):
            y = x[j] * gamma[j]
            y *= r
            out[j] = fit(round_shift(y, sh, out_mode), lo, hi, width, signed, wrap, narrow)
        return True

    return rms_row


def _make_absmax_row(mode, out_fit):
    """One row of ``absmax_requant`` for one output format: ``absmax_row(acc, out, recip_bits,
    max_code)`` writes the codes of ``acc`` (integral floats or integers below 2**53) into
    ``out`` (may be ``acc`` itself) and returns the row's amax, or −1 where ``amax · M`` could
    pass 2**62 (``out`` then untouched)."""
    lo, hi, width, signed, wrap, narrow = out_fit

    @njit(cache=True, inline="always")
    def absmax_row(acc, out, recip_bits, max_code):
        amax = np.int64(0)
        for j in range(acc.size):
            amax = max(amax, np.int64(abs(acc[j])))
        r, k = reciprocal(amax, recip_bits)
        M = r * max_code
        if r < 0 or (amax > 0 and (_ONE << 62) // amax < M):
            return np.int64(-1)
        for j in range(acc.size):
            out[j] = fit(round_shift(np.int64(acc[j]) * M, k, mode),
                         lo, hi, width, signed, wrap, narrow)
        return amax

    return absmax_row


def make_norm_act(out_mode, out_fit, act_mode, act_fit):
    """The norm unit's row loop for one pair of output formats (rounding mode and overflow
    rule fixed at compile time): ``kernel(x, shifts, eps, gamma, two_g, recip_bits,
    shift_base, lim_sq, lim_ss, lim_y, act_bits, act_max)`` (the limits of
    ``rmsnorm_int.int64_limits``).

    Each row of ``x`` (R, n): shifted right by its ``shifts`` (half even), integer RMSNorm with
    its ``eps`` code (``rmsnorm_int.rmsnorm_int``), then the absmax activation quantizer
    (``attention_head.absmax_requant``). Returns ``(codes (R, n), amax (R,), bad)``: ``bad``
    the first row its int64 arithmetic does not cover, −1 if none."""
    rms_row = _make_rms_row(out_mode, out_fit)
    absmax_row = _make_absmax_row(act_mode, act_fit)

    @njit(cache=True)
    def norm_act(x, shifts, eps, gamma, two_g, recip_bits, shift_base, lim_sq, lim_ss, lim_y,
                 act_bits, act_max):
        R, n = x.shape
        gmax = np.int64(0)
        for j in range(n):
            gmax = max(gmax, abs(gamma[j]))
        codes = np.empty((R, n), dtype=np.int64)
        amaxs = np.empty(R, dtype=np.int64)
        row = np.empty(n, dtype=np.int64)
        for i in range(R):
            for j in range(n):
                row[j] = round_shift(x[i, j], shifts[i], 4)
            if not rms_row(row, row, eps[i], gamma, gmax, two_g, recip_bits, shift_base,
                           lim_sq, lim_ss, lim_y):
                return codes, amaxs, i
            amaxs[i] = absmax_row(row, codes[i], act_bits, act_max)
            if amaxs[i] < 0:
                return codes, amaxs, i
        return codes, amaxs, -1

    return norm_act


# ------------------------------------------------------------------------------------------
# attention: score requantizer → integer softmax, and the absmax requantizer of the context
def make_softmax_heads(score_mode, score_fit, prob_mode, prob_fit):
    """The attention heads' score requantizer and integer softmax for one pair of formats
    (fixed at compile time): ``kernel(acc, M, S, causal, table, recip_bits, prob_frac)``.

    Probabilities of every query row of ``acc`` (B, H, T, L), the exact q·Kᵀ sums (integral
    floats or int64): scores ``fit(round_shift(acc · M[h], S[h]))`` (``requantize``), then
    ``softmax_int`` with the exponential table ``table`` (``exp_table``, int64, the masked
    entry last, unused here). Query ``t`` sees keys ``0 … L − T + t`` when ``causal``; masked
    probabilities are 0. Returns float32 probability codes and ``bad`` (the first flattened
    row its int64 arithmetic does not cover, −1 if none)."""
    slo, shi, sw, ssg, swr, snr = score_fit
    plo, phi, pw, psg, pwr, pnr = prob_fit

    @njit(cache=True)
    def softmax_heads(acc, M, S, causal, table, recip_bits, prob_frac):
        B, H, T, L = acc.shape
        probs = np.zeros((B, H, T, L), dtype=np.float32)
        sc = np.empty(L, dtype=np.int64)
        e = np.empty(L, dtype=np.int64)
        for b in range(B):
            for h in range(H):
                m_h, s_h = M[h], S[h]
                for t in range(T):
                    n = L - T + t + 1 if causal else L
                    top = slo
                    for j in range(n):
                        v = fit(round_shift(np.int64(acc[b, h, t, j]) * m_h, s_h, score_mode),
                                slo, shi, sw, ssg, swr, snr)
                        sc[j] = v
                        top = max(top, v)
                    total = np.int64(0)
                    for j in range(n):
                        x = table[top - sc[j]]
                        e[j] = x
                        total += x
                    r, k = reciprocal(total, recip_bits)
                    sh = k - prob_frac
                    if r < 0 or sh < 0 or sh > 62:
                        return probs, (b * H + h) * T + t
                    for j in range(n):
                        probs[b, h, t, j] = fit(round_shift(e[j] * r, sh, prob_mode),
                                                plo, phi, pw, psg, pwr, pnr)
        return probs, -1

    return softmax_heads


def make_absmax_heads(mode, out_fit):
    """``absmax_requant`` of the attention heads' context rows for one output format (fixed at
    compile time): ``kernel(acc, codes, amax, t0, recip_bits, max_code)``.

    ``acc`` (B, H, T, d), integral floats or int64 below 2**53, one block of query rows; the
    codes of row ``(b, h, t)`` go to ``codes[b, t0 + t, h]`` and its amax to ``amax[b, t0 + t,
    h]`` (``codes`` (B, T', H, d), ``amax`` (B, T', H): the layout the heads return, so no
    transposed copy follows). Returns ``bad``, the first flattened row ``(b, h, t)`` its int64
    arithmetic does not cover, −1 if none."""
    absmax_row = _make_absmax_row(mode, out_fit)

    @njit(cache=True)
    def absmax_heads(acc, codes, amax, t0, recip_bits, max_code):
        B, H, T, _ = acc.shape
        for b in range(B):
            for h in range(H):
                for t in range(T):
                    a = absmax_row(acc[b, h, t], codes[b, t0 + t, h], recip_bits, max_code)
                    if a < 0:
                        return (b * H + h) * T + t
                    amax[b, t0 + t, h] = a
        return -1

    return absmax_heads


def make_softmax_rows(prob_mode, prob_fit):
    """``softmax_int`` for one probability format (fixed at compile time):
    ``kernel(x, mask, table, lo, recip_bits, prob_frac)`` on each row of score codes ``x``
    (R, L) int64 with its boolean ``mask`` (each row keeps at least one score; ``lo`` the
    score format's smallest code). Returns ``(probs (R, L) int64, bad)``."""
    plo, phi, pw, psg, pwr, pnr = prob_fit

    @njit(cache=True)
    def softmax_rows(x, mask, table, lo, recip_bits, prob_frac):
        R, L = x.shape
        probs = np.empty((R, L), dtype=np.int64)
        e = np.empty(L, dtype=np.int64)
        masked = table[table.size - 1]
        for i in range(R):
            top = lo
            for j in range(L):
                if mask[i, j]:
                    top = max(top, x[i, j])
            total = np.int64(0)
            for j in range(L):
                v = table[top - x[i, j]] if mask[i, j] else masked
                e[j] = v
                total += v
            r, k = reciprocal(total, recip_bits)
            sh = k - prob_frac
            if r < 0 or sh < 0 or sh > 62:
                return probs, i
            for j in range(L):
                probs[i, j] = fit(round_shift(e[j] * r, sh, prob_mode),
                                  plo, phi, pw, psg, pwr, pnr)
        return probs, -1

    return softmax_rows


def make_rmsnorm_rows(out_mode, out_fit):
    """``rmsnorm_int`` for one output format (fixed at compile time):
    ``kernel(x, eps, gamma, two_g, recip_bits, shift_base, lim_sq, lim_ss, lim_y)`` on each
    row of ``x`` (R, n) int64 codes (``|x| ≤ 2**31``) with its ε code ``eps`` (R,, below
    2**61); a row past ``rmsnorm_int.int64_limits`` is ``bad``. Returns ``(codes (R, n),
    bad)``."""
    rms_row = _make_rms_row(out_mode, out_fit)

    @njit(cache=True)
    def rmsnorm_rows(x, eps, gamma, two_g, recip_bits, shift_base, lim_sq, lim_ss, lim_y):
        R, n = x.shape
        codes = np.empty((R, n), dtype=np.int64)
        gmax = np.int64(0)
        for j in range(n):
            gmax = max(gmax, abs(gamma[j]))
        for i in range(R):
            if not rms_row(x[i], codes[i], eps[i], gamma, gmax, two_g, recip_bits, shift_base,
                           lim_sq, lim_ss, lim_y):
                return codes, i
        return codes, -1

    return rmsnorm_rows


@njit(cache=True)
def heads_float32(x, lo, hi, keys):
    """Attention operands ``x`` (B, T, H, d), C-ordered signed integers, as float32 in the
    layout of the GEMMs — (B, H, T, d), or (B, H, d, T) for ``keys`` (the right-hand operand
    of q·Kᵀ) — range-checked in the same pass: ``(copy, ok)``; ``ok`` is false if a value
    lies outside ``[lo, hi]``. The source is read in order, one row of ``d`` at a time."""
    B, T, H, D = x.shape
    ok = True
    if keys:
        out = np.empty((B, H, D, T), dtype=np.float32)
        for b in range(B):
            for h in range(H):
                dst = out[b, h]
                for t in range(T):
                    src = x[b, t, h]
                    for d in range(D):
                        v = src[d]
                        ok &= (v >= lo) & (v <= hi)
                        dst[d, t] = v
        return out, ok
    out = np.empty((B, H, T, D), dtype=np.float32)
    for b in range(B):
        for t in range(T):
            for h in range(H):
                src = x[b, t, h]
                dst = out[b, h, t]
                for d in range(D):
                    v = src[d]
                    ok &= (v >= lo) & (v <= hi)
                    dst[d] = v
    return out, ok
