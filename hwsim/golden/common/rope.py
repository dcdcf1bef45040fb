"""Rotary position embedding (RoPE) on int8 codes, token-major, half-split pairs.

The integer form of ONNX ``RotaryEmbedding`` (non-interleaved: element ``i`` of a head is
paired with element ``i + h``, ``h = head_dim / 2``) between two int8 quantizers: the
compiler's ``IntRotary`` (:mod:`hwsim.compile.dialect_ops.rope`). This module is the
specification of the ``Rope`` RTL in :mod:`rtl.common.rope`, its cycle formulas and action
counts.

Numerics, for token ``t`` (its position in the sequence, ``t < tokens``), each head and
``i < h``, with ``C = cos[t][i]``, ``S = sin[t][i]`` integer table codes (``frac``
fractional bits, ``|code| ≤ 2**frac``):

* ``a_i     = x_i · C − x_{i+h} · S`` and ``a_{i+h} = x_{i+h} · C + x_i · S``, exact;
* ``y = sat_int8(round_half_even(a · mult · 2**-shift))`` (:func:`quant.qtype.requantize`).

With input scale ``s_x`` and output scale ``s_y`` the real factor is ``s_x / s_y`` and
``mult · 2**-shift ≈ s_x / (s_y · 2**frac)`` (:func:`rope_scale`); the tables are
``round_half_even(cos · 2**frac)`` of the float angles (:func:`rope_tables`).

Stream order: one sequence is ``tokens`` tokens of ``heads · head_dim`` codes, head after head
(the codes of ``(tokens, heads, head_dim)`` in row-major order); the position restarts at 0
with the next sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError, check_ints
from quant.qtype import INT8, quantize_multiplier, requantize

__all__ = [
    "MAX_FRAC",
    "MAX_SHIFT",
    "MULT_BITS",
    "PIPELINE_DEPTH",
    "RopeParams",
    "action_counts",
    "interval_cycles",
    "latency_cycles",
    "rope",
    "rope_acc",
    "rope_scale",
    "rope_tables",
    "standard_angles",
    "storage_bits",
    "stream_cycles",
]

#: register stages after the cycle that holds both codes of a pair: the accumulator
#: register, then the requantized output register
PIPELINE_DEPTH = 2

#: width of the unsigned multiplier ``mult``
MULT_BITS = 16

#: the largest right shift
MAX_SHIFT = 48

#: the most fractional bits of a table code (a code is ``frac + 2`` bits signed)
MAX_FRAC = 16


def _table(value, name: str, tokens: int, half: int, frac: int) -> tuple[tuple[int, ...], ...]:
    arr = np.asarray(value, dtype=object)
    if arr.shape != (tokens, half):
        raise HwsimError(f"rope {name} table has shape {arr.shape}, not (tokens, head_dim/2) "
                         f"= {(tokens, half)}")
    bad = [v for v in arr.ravel()
           if isinstance(v, bool) or not isinstance(v, int | np.integer)]
    if bad:
        raise HwsimError(f"rope {name} table entries must be integers, not {bad[0]!r}")
    rows = tuple(tuple(int(v) for v in row) for row in arr)
    peak = max((abs(v) for row in rows for v in row), default=0)
    if peak > 1 << frac:
        raise HwsimError(f"rope {name} table entry {peak} exceeds 2**frac = {1 << frac}")
    return rows


@dataclass(frozen=True)
class RopeParams:
    """Elaboration parameters of the rotary-embedding unit.

    Parameters
    ----------
    head_dim : int
        Codes per head (even, ≥ 2); ``half = head_dim / 2`` pairs per head.
    heads : int
        Heads per token.
    tokens : int
        Positions of one sequence (rows of the tables); the stream's position counter wraps
        after ``tokens`` tokens.
    frac : int
        Fractional bits of the table codes, 1 … :data:`MAX_FRAC`.
    mult, shift : int
        Requantization ``mult · 2**-shift``: ``1 ≤ mult < 2**16``, ``1 ≤ shift ≤ 48``.
    cos, sin : tuple of tuples of int, or None
        ``(tokens, half)`` integer codes, ``|code| ≤ 2**frac`` (lists or arrays become tuples
        of tuples). ``None``: the standard tables (:func:`standard_angles`, base 10000) at
        ``frac`` bits.

    Raises
    ------
    HwsimError
        On an odd or small head_dim, sizes < 1, frac/mult/shift out of range, or a table of
        the wrong shape, non-integer entries or an entry past ``2**frac``.
    """

    head_dim: int = 8
    heads: int = 2
    tokens: int = 4
    frac: int = 14
    mult: int = 1 << 15
    shift: int = 29
    cos: tuple[tuple[int, ...], ...] | None = None
    sin: tuple[tuple[int, ...], ...] | None = None

    def __post_init__(self):
        check_ints(self, "rope", (("head_dim", 2, None), "heads", "tokens",
                                  ("frac", 1, MAX_FRAC), ("mult", 1, (1 << MULT_BITS) - 1),
                                  ("shift", 1, MAX_SHIFT)))
        if self.head_dim % 2:
            raise HwsimError(f"rope head_dim must be even, not {self.head_dim}")
        if (self.cos is None) != (self.sin is None):
            raise HwsimError("rope needs both cos and sin tables, or neither (the standard ones)")
        if self.cos is None:
            c, s = rope_tables(*standard_angles(self.tokens, self.head_dim), self.frac)
        else:
            c, s = self.cos, self.sin
        object.__setattr__(self, "cos", _table(c, "cos", self.tokens, self.half, self.frac))
        object.__setattr__(self, "sin", _table(s, "sin", self.tokens, self.half, self.frac))

    @property
    def half(self) -> int:
        """Pairs per head: ``head_dim / 2``."""
        return self.head_dim // 2

    @property
    def token_codes(self) -> int:
        """Codes (beats) per token: ``heads · head_dim``."""
        return self.heads * self.head_dim

    @property
    def table_bits(self) -> int:
        """Signed width of a table code: ``frac + 2``."""
        return self.frac + 2

    @property
    def acc_width(self) -> int:
        """Signed width of ``a``: ``|a| ≤ 2 · 128 · 2**frac``."""
        return self.frac + 10


# ------------------------------------------------------------------------------------------
# The function
def _tokens_heads(x: np.ndarray, p: RopeParams) -> np.ndarray:
    if x.ndim >= 3 and x.shape[-3:] == (p.tokens, p.heads, p.head_dim):
        return x.reshape(-1, p.tokens, p.heads, p.head_dim)
    if x.ndim >= 2 and x.shape[-2:] == (p.tokens, p.token_codes):
        return x.reshape(-1, p.tokens, p.heads, p.head_dim)
    raise HwsimError(f"rope input has shape {x.shape}; its sequences are "
                     f"{(p.tokens, p.heads, p.head_dim)} or {(p.tokens, p.token_codes)} "
                     "(tokens, heads·head_dim)")


def rope_acc(x, p: RopeParams) -> np.ndarray:
    """The exact rotated values ``a`` (int64), the shape of ``x``: int8 codes of shape
    ``(…, tokens, heads, head_dim)`` or ``(…, tokens, heads·head_dim)``."""
    x = INT8.check(x, "rope input codes")
    v = _tokens_heads(x, p).astype(np.int64)
    C = np.asarray(p.cos, dtype=np.int64)[None, :, None, :]  # (1, T, 1, h)
    S = np.asarray(p.sin, dtype=np.int64)[None, :, None, :]
    lo, hi = v[..., :p.half], v[..., p.half:]
    a = np.concatenate([lo * C - hi * S, hi * C + lo * S], axis=-1)
    return a.reshape(x.shape)


def rope(x, p: RopeParams) -> np.ndarray:
    """Golden rotary embedding: ``sat_int8(round_half_even(a · mult · 2**-shift))`` of
    :func:`rope_acc` (int64 codes, the shape of ``x``).

    Raises
    ------
    HwsimError
        Where ``x`` is not int8 codes of one of the two sequence shapes.
    """
    return requantize(rope_acc(x, p), p.mult, p.shift, INT8)


# ------------------------------------------------------------------------------------------
# Tables and scale
def standard_angles(tokens: int, head_dim: int, base: float = 10000.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Float64 ``cos``, ``sin`` of shape ``(tokens, head_dim/2)`` of the usual RoPE angles
    ``t · base**(−2i/head_dim)``."""
    i = np.arange(head_dim // 2, dtype=np.float64)
    angles = np.arange(tokens, dtype=np.float64)[:, None] * base ** (-2.0 * i / head_dim)
    return np.cos(angles), np.sin(angles)


def rope_tables(cos, sin, frac: int = 14) -> tuple[tuple[tuple[int, ...], ...], ...]:
    """The integer tables of float ``cos``, ``sin`` (``(tokens, head_dim/2)``, values in
    [−1, 1]): ``round_half_even(v · 2**frac)``. Returns ``(cos_codes, sin_codes)`` as tuples
    of tuples (for :class:`RopeParams`)."""
    out = []
    for name, v in (("cos", cos), ("sin", sin)):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim != 2 or not np.all(np.isfinite(v)) or np.max(np.abs(v), initial=0) > 1:
            raise HwsimError(f"rope {name} must be a finite (tokens, head_dim/2) array in "
                             f"[-1, 1], not shape {v.shape}")
        codes = np.rint(v * float(1 << frac)).astype(np.int64)
        out.append(tuple(tuple(int(c) for c in row) for row in codes))
    return out[0], out[1]


def rope_scale(real_factor: float, frac: int = 14) -> tuple[int, int]:
    """``(mult, shift)`` with ``mult · 2**-shift ≈ real_factor · 2**-frac`` (``real_factor``:
    input scale / output scale), ``mult`` normalized to 16 bits
    (:func:`quant.qtype.quantize_multiplier`, shift at most :data:`MAX_SHIFT`).

    Raises
    ------
    HwsimError
        If the factor needs a shift outside 1 … 48.
    """
    m, s = quantize_multiplier(float(real_factor) * 2.0 ** -frac, bits=MULT_BITS,
                               max_shift=MAX_SHIFT)
    if s < 1:
        raise HwsimError(f"rope real factor {real_factor} is too large for a 16-bit multiplier "
                         f"at frac {frac} (shift {s} < 1)")
    return m, s


# ------------------------------------------------------------------------------------------
# Timing
def latency_cycles(p: RopeParams) -> int:
    """Cycles from the cycle an ``x`` beat is accepted to the cycle its ``y`` beat is
    presented (no idle input, no back-pressure): ``half`` beats waiting for the pair's second
    code, then :data:`PIPELINE_DEPTH`. The same for every beat (a fixed-latency pipeline)."""
    return p.half + PIPELINE_DEPTH


def interval_cycles(p: RopeParams) -> int:
    """Cycles per token, back to back: one beat per cycle, ``heads · head_dim`` beats."""
    return p.token_codes


def stream_cycles(p: RopeParams, tokens: int = 1) -> int:
    """Cycles from the first ``x`` beat to the last ``y`` beat, both counted, for ``tokens``
    back-to-back tokens (no idle input, no back-pressure): ``tokens · heads · head_dim +``
    :func:`latency_cycles`."""
    return tokens * p.token_codes + latency_cycles(p)


# ------------------------------------------------------------------------------------------
def storage_bits(p: RopeParams) -> int:
    """Bits of the RTL's memories: the two tables (``tokens · half`` words of ``frac + 2``
    bits each), the first-half buffer (``half`` codes) and the second-half accumulators
    (``half`` words of ``acc_width`` bits)."""
    return 2 * p.tokens * p.half * p.table_bits + p.half * (8 + p.acc_width)


def action_counts(p: RopeParams, tokens: int = 1) -> dict[str, int]:
    """Hardware actions for ``tokens`` tokens: 2 table-code multiplies per code (4 per pair),
    one requantization multiply per code, both table words read per pair, the first-half code
    buffered and the second-half accumulator buffered per pair, every output code sent."""
    pairs = tokens * p.heads * p.half
    codes = 2 * pairs
    return {
        "table_mul": 2 * codes,
        "acc_add": codes,
        "requant_mul": codes,
        "table_read_bits": 2 * pairs * p.table_bits,
        "buffer_write_bits": pairs * (8 + p.acc_width),
        "buffer_read_bits": pairs * (8 + p.acc_width),
        "out_bits": 8 * codes,
        "cycles": stream_cycles(p, tokens),
    }
