"""One attention head on integer codes: int8 Q, K, V → int8 output with absmax requantization.

``O = softmax(Q · Kᵀ / √d) · V`` as the attention datapath of the seed models computes it
(BitNet b1.58 decode and prefill on VitaLLM's BoothFlex core, AirFM-DDA window attention on an
RFSoC). This module is the specification of :class:`rtl.common.attention_head.AttentionHead`:

1. scores: ``acc = q · kᵀ`` exact (:func:`hwsim.golden.common.int8_matmul.int8_matmul`), requantized
   by one folded multiplier (``M, S`` for ``s_q · s_k / √d / 2**-score.frac``, see
   :func:`hwsim.golden.common.int8_matmul.fold_scale`) to ``score`` codes (int8, 4 fractional bits);
2. probabilities: :func:`hwsim.golden.common.softmax_int.softmax_int` over the keys the query may see
   (all cached keys, or with ``causal`` the keys up to its own position);
3. context: ``o_acc = p · V`` exact (unsigned probability codes × int8);
4. output: per query row ``amax = max |o_acc|``, ``(r, k) = reciprocal(amax)`` and
   ``o = out.fit(round_shift(o_acc · r · out.max_code, k, out.rounding))`` — BitNet's per-token
   absmax int8 quantization (``x_q = round(x · 127 / max|x|)``) done with an integer reciprocal;
   the real output is ``o · amax / out.max_code · 2**-prob.frac · s_v``.

Exactness contract: the RTL equals :func:`attention_head` with ``==`` on every output code and
every ``amax``. Step 4 equals the exact rational ``round(o_acc · 127 / amax)`` except within
``127 · 2**-(recip_bits−1)`` LSB of a rounding tie (±1 LSB there); the float reference error is
that of the softmax (:func:`hwsim.golden.common.softmax_int.max_abs_error_bound`) carried through ``V``.

The hardware keeps a KV cache of ``max_len`` rows. Its input is one stream of operations
(:func:`run_ops`): ``("kv", k, v)`` appends a token, ``("q", q)`` runs a query against every
cached token, ``("clear",)`` empties the cache. Decode is ``kv`` of the new token, then its
``q``; causal prefill of ``T`` tokens is ``kv_0, q_0, kv_1, q_1, …``; non-causal prefill is all
``kv`` then all ``q``. :class:`KVCache` does the same on the golden side.

Over 400 lines: one kernel's whole specification (its contract above, the golden, the operation
stream the RTL takes, cycle formulas and action counts) reads in one place; nothing here is
shared with another kernel.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.common import exact, jit
from hwsim.golden.common import int8_matmul as mm
from hwsim.golden.common import softmax_int as sm
from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from quant.qtype import INT8, Overflow, QType, requantize, requantize_float, round_shift

__all__ = [
    "MULTIPLIERS",
    "OP_CLEAR",
    "OP_KV",
    "OP_Q",
    "AttentionParams",
    "KVCache",
    "absmax_requant",
    "action_counts",
    "attention_float",
    "attention_head",
    "attention_trace",
    "decode_cycles",
    "ideal_cycles",
    "op_words",
    "out_results",
    "query_cycles",
    "query_lengths",
    "run_ops",
    "score_codes",
    "storage_bits",
    "stream_cycles",
]

#: multiplier styles of the RTL: "dsp" (plain ``a * b``, DSP48E2) or "booth" (radix-4 Booth)
MULTIPLIERS = ("dsp", "booth")
#: operation codes of the input stream
OP_KV, OP_Q, OP_CLEAR = 0, 1, 2

# Pipeline constants of rtl.common.attention_head (cycles between phases; see query_cycles).
_QK_DRAIN = 4      # last K read issued → last score written and row max final
_EXP_DRAIN = 3     # last exponential word issued → row sum final
_RECIP_EXTRA = 1   # start cycle of the reciprocal besides its recip_bits + 2
_AV_DRAIN = 4      # last V read issued → last accumulator group stored, amax final
_OUT_DRAIN = 2     # last output word issued → on the output stream


@dataclass(frozen=True)
class AttentionParams:
    """Elaboration parameters of the attention head.

    Parameters
    ----------
    head_dim : int
        ``d``: elements of a q, k or v row; ``lanes`` must divide it.
    max_len : int
        KV-cache capacity in tokens (the longest sequence a query can attend to).
    lanes : int
        Multipliers of the QKᵀ / A·V engine (products per cycle).
    exp_lanes : int
        Exponential units (scores per cycle in the softmax pass).
    score, prob, out : QType
        Score codes (softmax input), probability codes, output codes.
    exp_frac, lut_bits, log2e_bits, recip_bits : int
        Softmax precisions (:class:`hwsim.golden.common.softmax_int.SoftmaxParams`); ``recip_bits``
        also sets the output requantizer's reciprocal.
    mult_bits, shift_bits : int
        Widths of the score requantization ``M`` and ``S`` ports.
    multiplier : str
        ``"dsp"``: plain ``a * b`` (synthesis maps it to DSP48E2 on the RFSoC);
        ``"booth"``: radix-4 Booth multipliers (:mod:`rtl.common.booth`), no DSP.
    """

    head_dim: int = 64
    max_len: int = 128
    lanes: int = 16
    exp_lanes: int = 4
    score: QType = sm.SCORE_INT8
    prob: QType = sm.PROB_UINT8
    out: QType = INT8
    exp_frac: int = 15
    lut_bits: int = 8
    log2e_bits: int = 16
    recip_bits: int = 16
    mult_bits: int = 16
    shift_bits: int = 6
    multiplier: str = "dsp"

    def __post_init__(self):
        for name in ("head_dim", "max_len", "lanes", "exp_lanes", "mult_bits", "shift_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int):
                raise HwsimError(f"attention {name} must be an integer, not {v!r}")
            if v < 1:
                raise HwsimError(f"attention {name} must be at least 1, not {v}")
        if self.head_dim % self.lanes:
            raise HwsimError(f"attention lanes ({self.lanes}) must divide head_dim "
                             f"({self.head_dim})")
        if self.exp_lanes > self.max_len:
            raise HwsimError(f"attention exp_lanes ({self.exp_lanes}) must be ≤ max_len "
                             f"({self.max_len})")
        if self.multiplier not in MULTIPLIERS:
            raise HwsimError(f"attention multiplier must be one of {', '.join(MULTIPLIERS)}, "
                             f"not {self.multiplier!r}")
        if self.max_len > 1 << 16 or self.head_dim > 1 << 12:
            raise HwsimError("attention max_len must be ≤ 65536 and head_dim ≤ 4096")
        if self.mult_bits > 32 or self.shift_bits > 6:
            raise HwsimError("attention mult_bits must be ≤ 32 and shift_bits ≤ 6")
        if self.prob.width > 8 or self.score.width > 8:
            raise HwsimError("attention scores and probabilities must be ≤ 8 bits "
                             "(the engine multiplies 9-bit × int8)")
        if not self.out.signed:
            raise HwsimError(f"attention output must be signed, not {self.out}")
        _ = self.softmax  # validates the softmax formats

    @property
    def softmax(self) -> sm.SoftmaxParams:
        return sm.SoftmaxParams(self.score, self.prob, self.exp_frac, self.lut_bits,
                                self.log2e_bits, self.recip_bits)

    @property
    def chunks(self) -> int:
        """``C = head_dim / lanes``: beats per row, cycles per dot product."""
        return self.head_dim // self.lanes

    @property
    def qk_acc_width(self) -> int:
        return mm.acc_width(self.head_dim, INT8, INT8)

    @property
    def av_acc_width(self) -> int:
        return mm.acc_width(self.max_len, self.prob, INT8)


# ------------------------------------------------------------------------------------------
# The function
def score_codes(q, K, score_mult: int, score_shift: int, p: AttentionParams) -> np.ndarray:
    """Requantized scores ``requant(q · Kᵀ)`` as ``p.score`` codes: (T, L)."""
    return requantize(mm.int8_matmul(np.atleast_2d(q), K), score_mult, score_shift, p.score)


def absmax_requant(acc, out: QType = INT8, recip_bits: int = 16):
    """Per-row absmax quantization of exact accumulators: ``(codes, amax)``.

    ``amax = max |acc|`` per row (last axis); ``codes = out.fit(round_shift(acc · r ·
    out.max_code, k, out.rounding))`` with ``(r, k) = reciprocal(amax, recip_bits)``; a zero row
    gives zero codes.

    This is hwsim's one absmax requantizer: the attention head's output, the BitNet layer's
    activation quantizer (:func:`hwsim.golden.vitallm.layer_codes.act_quant`, the ``norm-quant``
    kernel) and VitaLLM's re-quantization barrier (the ``absmax-barrier`` kernel) all call it;
    why this rule: :mod:`hwsim.golden.vitallm.absmax_barrier`. Rows whose products could pass
    2**62 are computed exactly in Python integers. ``acc`` may also be integers held in a float
    array (below 2**53, e.g. a float GEMM's exact result).
    """
    acc = np.asarray(acc)
    if acc.dtype.kind == "f":
        # exact integers held in float (a float GEMM's result): below 2**53, or refused
        accf = acc.astype(np.float64)
        amaxf = np.maximum(-accf.min(axis=-1, keepdims=True), accf.max(axis=-1, keepdims=True))
        if amaxf.size and not amaxf.max() < exact.FLOAT64_EXACT:
            raise HwsimError("float accumulators must be integers below 2**53")
        amax = amaxf.astype(np.int64)
    else:
        acc, accf = acc.astype(np.int64, copy=False), None
        amax = np.maximum(-acc.min(axis=-1, keepdims=True), acc.max(axis=-1, keepdims=True))
    r, k = sm.reciprocal(amax, recip_bits)
    M = r * out.max_code
    peak = int(amax.max()) * int(M.max()) if acc.size else 0
    if acc.size and peak < exact.FLOAT64_EXACT and out.overflow is Overflow.SATURATE:
        # every acc · M below 2**53: the requantizer is exact in float64
        if accf is None:
            accf = acc.astype(np.float64)
        codes = requantize_float(accf, M, k, out, overwrite=True)
        codes = codes.astype(np.int64)
        return codes, amax[..., 0]
    acc = acc.astype(np.int64)
    if peak < 2**62:
        codes = out.fit(round_shift(acc * M, k, out.rounding))
    else:
        codes = np.empty_like(acc)
        for i in np.ndindex(acc.shape[:-1]):
            codes[i] = requantize(acc[i], int(M[i][0]), int(k[i][0]), out)
    return codes, amax[..., 0]


def _check_qkv(q, K, V, p: AttentionParams):
    q = INT8.check(np.atleast_2d(q), "attention q")
    K = INT8.check(K, "attention K")
    V = INT8.check(V, "attention V")
    d = p.head_dim
    if q.ndim != 2 or q.shape[1] != d or K.ndim != 2 or K.shape[1] != d or V.shape != K.shape:
        raise HwsimError(f"attention expects q (T, {d}), K and V (L, {d}); got "
                         f"{q.shape}, {K.shape}, {V.shape}")
    if not 1 <= K.shape[0] <= p.max_len:
        raise HwsimError(f"attention needs 1 … {p.max_len} keys, got {K.shape[0]}")
    if q.shape[0] > K.shape[0]:
        raise HwsimError(f"{q.shape[0]} queries but only {K.shape[0]} keys")
    return q, K, V


def _mask(T: int, L: int, causal: bool) -> np.ndarray:
    if not causal:
        return np.ones((T, L), dtype=bool)
    # the T queries are the last T positions of the sequence of L tokens
    return np.arange(L)[None, :] <= (L - T + np.arange(T))[:, None]


def attention_trace(q, K, V, score_mult: int, score_shift: int, p: AttentionParams | None = None,
                    causal: bool = False) -> dict[str, np.ndarray]:
    """Every intermediate of :func:`attention_head`: ``acc``, ``scores``, ``mask``, ``probs``,
    ``o_acc``, ``o``, ``amax``."""
    p = p or AttentionParams()
    q, K, V = _check_qkv(q, K, V, p)
    acc = mm.int8_matmul(q, K)                                             # (T, L)
    scores = requantize(acc, score_mult, score_shift, p.score)             # (T, L)
    mask = _mask(q.shape[0], K.shape[0], causal)
    probs = np.where(mask, sm.softmax_int(scores, p.softmax, mask), 0)     # (T, L)
    o_acc = exact.matmul_codes(probs, V, p.prob.peak, INT8.peak, checked=True)  # (T, d)
    o, amax = absmax_requant(o_acc, p.out, p.recip_bits)
    return {"acc": acc, "scores": scores, "mask": mask, "probs": probs, "o_acc": o_acc,
            "o": o, "amax": amax}


def attention_head(q, K, V, score_mult: int, score_shift: int, p: AttentionParams | None = None,
                   causal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Golden attention head: int8 ``q`` (T, d) or (d,), ``K``, ``V`` (L, d) → ``(o, amax)``.

    ``o``: (T, d) int8 codes; ``amax``: (T,) the absmax of each row's exact context
    accumulators (the output scale). With ``causal`` the queries are the last ``T`` tokens of
    the sequence and each sees only the keys up to its own position.
    """
    t = attention_trace(q, K, V, score_mult, score_shift, p, causal)
    return t["o"], t["amax"]


#: causal attention of many query rows runs in at most CAUSAL_SPLIT blocks of at least
#: CAUSAL_BLOCK rows (:func:`attention_heads`)
CAUSAL_SPLIT, CAUSAL_BLOCK = 8, 64


def attention_heads(q, K, V, mults, p: AttentionParams | None = None,
                    causal: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every query head of a layer at once (grouped-query attention): ``q`` (T, H, d) int8,
    ``K``, ``V`` (L, KV, d) int8 with ``KV`` dividing ``H`` (query head ``h`` reads KV head
    ``h // (H/KV)``), ``mults`` one score ``(M, S)`` per query head → ``(o (T, H, d),
    amax (T, H))``, code for code what :func:`attention_head` returns for each head.

    Leading batch axes (``q`` (…, T, H, d), ``K``, ``V`` (…, L, KV, d), the same ``…``) run
    independent sequences side by side."""
    p = p or AttentionParams()
    names = ("attention q", "attention K", "attention V")
    q, K, V = (np.asarray(a) for a in (q, K, V))
    # signed-integer operands of the float path have their range checked in the pass that
    # lays them out in float32 (the compiled loop); all others here
    defer = jit.enabled() and all(a.dtype.kind == "i" for a in (q, K, V))
    if not defer:
        q, K, V = (INT8.check(a, n) for a, n in zip((q, K, V), names, strict=True))
    d = p.head_dim
    if (q.ndim < 3 or K.ndim != q.ndim or V.shape != K.shape or q.shape[:-3] != K.shape[:-3]
            or q.shape[-1] != d or K.shape[-1] != d):
        raise HwsimError(f"attention heads expect q (…, T, H, {d}), K and V (…, L, KV, {d}); "
                         f"got {q.shape}, {K.shape}, {V.shape}")
    T, H, _ = q.shape[-3:]
    L, KV, _ = K.shape[-3:]
    if KV < 1 or H % KV:
        raise HwsimError(f"{KV} KV heads do not divide {H} query heads")
    if len(mults) != H:
        raise HwsimError(f"{len(mults)} score multipliers for {H} query heads")
    if not 1 <= L <= p.max_len:
        raise HwsimError(f"attention needs 1 … {p.max_len} keys, got {L}")
    if T > L:
        raise HwsimError(f"{T} queries but only {L} keys")
    M = np.array([int(m) for m, _ in mults], dtype=object)[:, None, None]
    S = np.array([int(s) for _, s in mults], dtype=np.int64)[:, None, None]
    lead = q.shape[:-3]
    B, rep = math.prod(lead), H // KV
    acc_peak = d * INT8.peak * INT8.peak
    o = np.empty((B, T, H, d), dtype=np.int64)
    amax = np.empty((B, T, H), dtype=np.int64)
    if (not exact.forced() and acc_peak < exact.FLOAT32_EXACT
            and acc_peak * int(M.max()) < exact.FLOAT64_EXACT
            and p.score.overflow is Overflow.SATURATE and sm.float_exact(p.softmax, L)):
        # the float path (its condition holds for every block: their key counts are ≤ L):
        # operands in float32 once, laid out for the GEMMs — queries grouped by their KV head
        # (B, KV, rep, T, d), keys (B, KV, d, L), values (B, KV, L, d)
        ops = (q.reshape(B, T, H, d), K.reshape(B, L, KV, d), V.reshape(B, L, KV, d))
        if defer:
            qh, Kt, Vg = (_float32_heads(v, a, n, n == names[1])
                          for v, a, n in zip(ops, (q, K, V), names, strict=True))
        else:
            qh, Kt, Vg = (v.transpose(0, 2, i, 4 - i).astype(np.float32, order="C")
                          for v, i in zip(ops, (1, 3, 1), strict=True))
        qh = qh.reshape(B, KV, rep, T, d)

        def block(a, b, keys, causal):
            o_acc = _block_float(qh[:, :, :, a:b], Kt[..., :keys], Vg[:, :, :keys], M, S, p,
                                 causal)
            _absmax_heads(o_acc, p, o, amax, a)
    else:
        if defer:
            q, K, V = (INT8.check(a, n) for a, n in zip((q, K, V), names, strict=True))

        def block(a, b, keys, causal):
            o_acc = _heads_block(q[..., a:b, :, :], K[..., :keys, :, :], V[..., :keys, :, :],
                                 M, S, p, causal)
            _absmax_heads(o_acc, p, o, amax, a)
    blocks = min(CAUSAL_SPLIT, T // CAUSAL_BLOCK) if causal else 1
    # query rows in blocks, each against only the keys it can see (a causal row never reads
    # the keys after it): the same codes for less work; each block writes its rows of o, amax
    cuts = np.linspace(0, T, max(blocks, 1) + 1).astype(int)
    for a, b in itertools.pairwise(cuts):
        block(a, b, L - T + b if blocks > 1 else L, causal)
    return o.reshape(*lead, T, H, d), amax.reshape(*lead, T, H)


def _float32_heads(x, whole, what: str, keys: bool):
    """Operands ``x`` (B, T, H, d) as C-ordered float32 (B, H, T, d), or (B, H, d, T) for
    ``keys``, their int8 range checked in the same pass (the error of :meth:`QType.check` on
    ``whole`` where it fails)."""
    out, ok = jit.kernels().heads_float32(np.ascontiguousarray(x), INT8.min_code,
                                          INT8.max_code, keys)
    if not ok:
        INT8.check(whole, what)
    return out


def _block_float(qh, Kt, Vg, M, S, p: AttentionParams, causal: bool):
    """The float path of :func:`attention_heads` on one block of query rows: ``qh`` (B, KV,
    rep, T, d), ``Kt`` (B, KV, d, L), ``Vg`` (B, KV, L, d) float32 codes → the context accumulators (B, H,
    T, d), exact integers in float32 or int64.

    Scores and probabilities are integral floats: the float32 GEMM (``d · 128² < 2**24``), the
    requantizer and the softmax are each exact there (``quant.qtype.requantize_float``,
    ``softmax_int.probs_float``, or the compiled loop), so these are the codes of the integer
    lines of :func:`_heads_block`."""
    B, KV, rep, T, d = qh.shape
    L, H = Kt.shape[-1], KV * rep
    acc = np.matmul(qh.reshape(B, KV, rep * T, d), Kt).reshape(B, H, T, L)
    probs = _probs_jit(acc, M, S, p, causal)
    if probs is None:
        scores = requantize_float(acc.astype(np.float64), M, S, p.score, overwrite=True)
        bias = np.where(_mask(T, L, causal), 0.0, -np.inf)                 # (T, L) addends
        probs = sm.probs_float(scores, p.softmax, None, bias)              # 0 where masked
    pv = probs.reshape(B, KV, rep * T, L)
    if exact.matmul_path(L, p.prob.peak, INT8.peak) == "float32":
        # exact in float32; the absmax requantizer takes the float result as it is
        return np.matmul(pv.astype(np.float32, copy=False), Vg).reshape(B, H, T, d)
    return exact.matmul_codes(pv, Vg.astype(np.int64), p.prob.peak, INT8.peak,
                              checked=True).reshape(B, H, T, d)


def _heads_block(q, K, V, M, S, p: AttentionParams, causal: bool):
    """:func:`attention_heads`' integer path on checked operands, ``M``, ``S`` (H, 1, 1) →
    the context accumulators (B, H, T, d) int64."""
    lead, d = q.shape[:-3], p.head_dim
    T, H, _ = q.shape[-3:]
    L, KV, _ = K.shape[-3:]
    rep, B = H // KV, math.prod(lead)
    # query heads grouped by their KV head: (B, KV, rep·T, d) against (B, KV, d, L)
    qg = q.reshape(B, T, H, d).transpose(0, 2, 1, 3).reshape(B, KV, rep * T, d)
    Kt = K.reshape(B, L, KV, d).transpose(0, 2, 3, 1)
    acc = exact.matmul_codes(qg, Kt, INT8.peak, INT8.peak, checked=True)
    scores = requantize(acc.reshape(B, H, T, L), M, S, p.score)             # (B, H, T, L)
    mask = np.broadcast_to(_mask(T, L, causal), scores.shape)
    probs = sm.softmax_int(scores, p.softmax, mask)                        # 0 where masked
    Vg = V.reshape(B, L, KV, d).transpose(0, 2, 1, 3)                      # (B, KV, L, d)
    pv = probs.reshape(B, KV, rep * T, L)
    return exact.matmul_codes(pv, Vg, p.prob.peak, INT8.peak, checked=True).reshape(B, H, T, d)


def _probs_jit(acc, M, S, p: AttentionParams, causal: bool):
    """The compiled score requantizer + integer softmax of :func:`_heads_block`'s float path
    (float32 probability codes), or None (loops off, or a row they do not cover)."""
    sp = p.softmax
    table = sm.exp_table(sp)
    if not jit.enabled() or p.score.max_code - p.score.min_code >= len(table) - 1:
        return None
    probs, bad = jit.specialized("softmax_heads", p.score, sp.prob)(
        acc, M[:, 0, 0].astype(np.int64), S[:, 0, 0], causal, table, sp.recip_bits,
        sp.prob.frac)
    return probs if bad < 0 else None


def _absmax_heads(o_acc, p: AttentionParams, o, amax, t0: int) -> None:
    """:func:`absmax_requant` of the context accumulators (B, H, T, d) of one block of query
    rows into rows ``t0 …`` of the heads' outputs ``o`` (B, T', H, d), ``amax`` (B, T', H)
    — by the compiled rows where they run."""
    T = o_acc.shape[2]
    if jit.enabled():
        bad = jit.specialized("absmax_heads", p.out)(np.ascontiguousarray(o_acc), o, amax, t0,
                                                     p.recip_bits, p.out.max_code)
        if bad < 0:
            return
    codes, m = absmax_requant(o_acc, p.out, p.recip_bits)
    o[:, t0:t0 + T] = codes.transpose(0, 2, 1, 3)
    amax[:, t0:t0 + T] = m.transpose(0, 2, 1)


def attention_float(q, K, V, s_q: float, s_k: float, s_v: float) -> np.ndarray:
    """float64 attention of the dequantized codes (non-causal): the real-valued reference."""
    q = np.atleast_2d(np.asarray(q, dtype=np.float64)) * s_q
    K = np.asarray(K, dtype=np.float64) * s_k
    V = np.asarray(V, dtype=np.float64) * s_v
    s = q @ K.T / math.sqrt(K.shape[1])
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    return (e / e.sum(axis=-1, keepdims=True)) @ V


class KVCache:
    """Golden KV cache of one head: what the RTL's memories hold, with decode and prefill."""

    def __init__(self, p: AttentionParams | None = None):
        self.p = p or AttentionParams()
        self.K = np.zeros((0, self.p.head_dim), dtype=np.int64)
        self.V = np.zeros((0, self.p.head_dim), dtype=np.int64)

    def __len__(self) -> int:
        return self.K.shape[0]

    def clear(self) -> None:
        self.K = self.K[:0]
        self.V = self.V[:0]

    def append(self, k, v) -> None:
        k = INT8.check(np.atleast_2d(k), "cached k")
        v = INT8.check(np.atleast_2d(v), "cached v")
        if k.shape != v.shape or k.shape[1] != self.p.head_dim:
            raise HwsimError(f"k and v rows must both be (n, {self.p.head_dim}), "
                             f"got {k.shape} and {v.shape}")
        if len(self) + k.shape[0] > self.p.max_len:
            raise HwsimError(f"KV cache holds at most {self.p.max_len} tokens")
        self.K = np.concatenate([self.K, k])
        self.V = np.concatenate([self.V, v])

    def attend(self, q, score_mult: int, score_shift: int):
        """Queries ``q`` against every cached token (decode when T = 1)."""
        return attention_head(q, self.K, self.V, score_mult, score_shift, self.p)

    def decode(self, q, k, v, score_mult: int, score_shift: int):
        """One decode step: append the new token's k, v, then its query sees all tokens."""
        self.append(k, v)
        return self.attend(q, score_mult, score_shift)

    def prefill(self, Q, K, V, score_mult: int, score_shift: int, causal: bool = True):
        """Append ``T`` tokens and run their queries (causal: each sees the tokens up to it)."""
        self.append(K, V)
        return attention_head(Q, self.K, self.V, score_mult, score_shift, self.p, causal)


# ------------------------------------------------------------------------------------------
# The operation stream of the RTL
def _check_ops(ops, p: AttentionParams) -> list[tuple]:
    out, length = [], 0
    for n, op in enumerate(ops):
        kind = op[0] if op else None
        if kind == "kv":
            k = INT8.check(np.asarray(op[1]), f"op {n} k")
            v = INT8.check(np.asarray(op[2]), f"op {n} v")
            if k.shape != (p.head_dim,) or v.shape != (p.head_dim,):
                raise HwsimError(f"op {n}: k and v must have {p.head_dim} codes")
            if length == p.max_len:
                raise HwsimError(f"op {n}: KV cache is full ({p.max_len} tokens)")
            length += 1
            out.append(("kv", k, v))
        elif kind == "q":
            q = INT8.check(np.asarray(op[1]), f"op {n} q")
            if q.shape != (p.head_dim,):
                raise HwsimError(f"op {n}: q must have {p.head_dim} codes")
            if length == 0:
                raise HwsimError(f"op {n}: a query needs at least one cached token")
            out.append(("q", q, length))
        elif kind == "clear":
            length = 0
            out.append(("clear",))
        else:
            raise HwsimError(f"op {n}: unknown operation {kind!r} (kv, q or clear)")
    return out


def query_lengths(ops, p: AttentionParams) -> list[int]:
    """Tokens each ``q`` operation of a stream attends to (the cache fill at that point)."""
    return [op[2] for op in _check_ops(ops, p) if op[0] == "q"]


def run_ops(ops, score_mult: int, score_shift: int, p: AttentionParams | None = None):
    """Golden result of an operation stream: one ``(o (d,), amax)`` per ``q`` operation."""
    p = p or AttentionParams()
    cache = KVCache(p)
    results = []
    for op in _check_ops(ops, p):
        if op[0] == "kv":
            cache.append(op[1], op[2])
        elif op[0] == "clear":
            cache.clear()
        else:
            o, amax = cache.attend(op[1], score_mult, score_shift)
            results.append((o[0], int(amax[0])))
    return results


def op_words(ops, p: AttentionParams) -> list[int]:
    """The RTL input stream: ``C = head_dim/lanes`` beats per kv or q operation, one per clear.

    A beat is Amaranth's struct ``{op: 2 bits, a: lanes × int8, b: lanes × int8}`` packed LSB
    first: ``op`` in bits [0, 2), ``a`` (k or q) above it, ``b`` (v) above that.
    """
    words, L, w = [], p.lanes, 8
    for op in _check_ops(ops, p):
        if op[0] == "clear":
            words.append(OP_CLEAR)
            continue
        code = OP_KV if op[0] == "kv" else OP_Q
        for c in range(p.chunks):
            a = pack_lanes(op[1][c * L:(c + 1) * L], w)
            b = pack_lanes(op[2][c * L:(c + 1) * L], w) if op[0] == "kv" else 0
            words.append(code | a << 2 | b << (2 + w * L))
    return words


def out_results(words, p: AttentionParams) -> list[tuple[np.ndarray, int]]:
    """The RTL output stream back to one ``(o (d,), amax)`` per query.

    A beat is the struct ``{o: lanes × out, amax}`` (``o`` lane 0 lowest, ``amax`` above);
    ``C`` beats per query, each carrying the row's ``amax`` (−1 here if the beats disagree).
    """
    ow, C = p.out.width, p.chunks
    mask = (1 << ow * p.lanes) - 1
    res = []
    for q in range(len(words) // C):
        beats = [int(w) for w in words[q * C:(q + 1) * C]]
        o = np.concatenate([unpack_lanes(w & mask, ow, p.lanes) for w in beats])
        amaxes = {w >> (ow * p.lanes) for w in beats}
        res.append((o, amaxes.pop() if len(amaxes) == 1 else -1))
    return res


# ------------------------------------------------------------------------------------------
# Cycle formulas (rtl.common.attention_head states them; the Amaranth and cocotb tests measure them)
def query_cycles(p: AttentionParams, length: int) -> int:
    """Cycles of one query against ``length`` cached tokens, from its first q beat to its last
    output beat (both counted), with no idle input and no back-pressure::

        C              q beats
      + L·C + 4        QKᵀ: one (token, chunk) per cycle, then the score pipeline drains
      + ⌈L/E⌉ + 3      exponentials, E per cycle, and the row sum
      + RB + 3         reciprocal of the sum (restoring divider)
      + L·C + 4        A·V: one (chunk, token) per cycle, normalization on the fly
      + RB + 3         reciprocal of the absmax
      + C + 2          output words through the requantizer

    ``C = head_dim/lanes``, ``E = exp_lanes``, ``RB = recip_bits``.
    """
    if not 1 <= length <= p.max_len:
        raise HwsimError(f"query length must be 1 … {p.max_len}, not {length}")
    C, LC = p.chunks, length * p.chunks
    recip = sm.recip_cycles(p.softmax) + _RECIP_EXTRA
    return (C + LC + _QK_DRAIN + sm.exp_pass_cycles(length, p.exp_lanes) + _EXP_DRAIN + recip
            + LC + _AV_DRAIN + recip + C + _OUT_DRAIN)


def storage_bits(p: AttentionParams) -> int:
    """Bits of the RTL's memories: the int8 K and V caches (``max_len × head_dim`` each), the
    query, the scores and exponentials of one row, the A·V accumulators and the exp LUT."""
    C, L, M, E = p.chunks, p.lanes, p.max_len, p.exp_lanes
    sp = p.softmax
    rows = -(-M // E)
    return (2 * M * C * 8 * L + C * 8 * L + rows * E * (p.score.width + sp.exp_width)
            + C * p.av_acc_width * L + (1 << p.lut_bits) * sp.exp_width)


def decode_cycles(p: AttentionParams, length: int) -> int:
    """A decode step: the new token's kv beats, then its query against ``length`` tokens."""
    return p.chunks + query_cycles(p, length)


def ideal_cycles(p: AttentionParams, length: int) -> int:
    """``2·L·d / lanes``: the multiplies of QKᵀ and A·V alone on ``lanes`` multipliers."""
    return 2 * length * p.head_dim // p.lanes


def stream_cycles(p: AttentionParams, ops) -> int:
    """Cycles of a whole operation stream, from its first beat to its last output beat, when the
    input never idles and the output never stalls (operations run back to back)."""
    ops = _check_ops(ops, p)
    last_q = max((n for n, op in enumerate(ops) if op[0] == "q"), default=None)
    if last_q is None:
        raise HwsimError("an operation stream needs a query to produce output")
    total = 0
    for op in ops[:last_q + 1]:
        total += (p.chunks if op[0] == "kv" else 1 if op[0] == "clear"
                  else query_cycles(p, op[2]))
    return total


# ------------------------------------------------------------------------------------------
def action_counts(p: AttentionParams, length: int, queries: int = 1) -> dict[str, int]:
    """Hardware actions of ``queries`` queries against ``length`` tokens each."""
    d = p.head_dim
    qk = mm.action_counts(queries, length, d, p.lanes)
    sx = sm.action_counts(p.softmax, length, queries)
    return {
        "qk_mac": qk["mac"],
        "av_mac": queries * length * d,
        "booth_partial_products": 2 * queries * length * d * 4 if p.multiplier == "booth" else 0,
        "dsp_mac": 2 * queries * length * d if p.multiplier == "dsp" else 0,
        "acc_add": 2 * queries * length * d,
        "score_requant_mul": queries * length,
        **{f"softmax_{k}": v for k, v in sx.items()},
        "out_requant_mul": queries * d,
        "k_read_bits": queries * length * d * 8,
        "v_read_bits": queries * length * d * 8,
        "q_write_bits": queries * d * 8,
        "out_bits": queries * d * p.out.width,
        "cycles": queries * query_cycles(p, length),
    }
