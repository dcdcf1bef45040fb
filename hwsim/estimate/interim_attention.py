"""INTERIM cost model of the attention kernels, until their golden modules land.

The int8 QKᵀ/AV engine, the integer softmax and the integer RMSNorm are specified by
``hwsim/golden/{int8_matmul,softmax_int,rmsnorm_int}.py`` (being written on the ``attention``
branch). Until those modules exist, their cycle formulas and action counts come from here —
and from nowhere else: :mod:`hwsim.estimate.kernels` is the only caller, through one adapter
per kernel, so that swapping in a golden module is a one-line change there.

When those modules are present the adapters use them and this module is not called; it is
deleted once the ``attention`` branch is merged.

What this model assumes (all of it interim, none of it measured):

* ``int8_matmul``: an ``(m × k) · (k × n)`` product on a core of ``lanes`` int8 MACs per cycle
  takes ``ceil(m·k·n / lanes)`` cycles plus :data:`MATMUL_PIPELINE` fill cycles; every MAC is
  one 8-bit multiply and one 32-bit add; both operands are read once per MAC from registers.
* ``softmax_int``: ``rows`` rows of ``length`` scores, ``lanes`` elements per cycle, two passes
  (max and exponent/sum, then normalize); per element an I-BERT-style second-order exponent
  (one 32-bit multiply, two 32-bit adds) and one multiply by the row's reciprocal.
* ``rmsnorm_int``: ``vectors`` vectors of ``length``: per element one 8-bit square, one 32-bit
  accumulate and one 32-bit rescale multiply, two passes.
"""

from __future__ import annotations

__all__ = ["MATMUL_PIPELINE", "int8_matmul", "rmsnorm_int", "softmax_int"]

#: pipeline fill of the interim int8 engine (cycles): operand read, multiply, accumulate, out
MATMUL_PIPELINE = 4


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def int8_matmul(m: int, k: int, n: int, lanes: int) -> tuple[int, dict[str, int]]:
    macs = m * k * n
    cycles = _ceil(macs, lanes) + MATMUL_PIPELINE
    return cycles, {"int8_mul": macs, "add32": macs, "register_read_bits": 16 * macs,
                    "out_bits": 8 * m * n}


def softmax_int(rows: int, length: int, lanes: int) -> tuple[int, dict[str, int]]:
    el = rows * length
    cycles = 2 * _ceil(el, lanes) + MATMUL_PIPELINE
    return cycles, {"mul32": 2 * el, "add32": 3 * el, "register_read_bits": 2 * 32 * el,
                    "out_bits": 8 * el}


def rmsnorm_int(vectors: int, length: int, lanes: int) -> tuple[int, dict[str, int]]:
    el = vectors * length
    cycles = 2 * _ceil(el, lanes) + MATMUL_PIPELINE
    return cycles, {"int8_mul": el, "add32": el, "mul32": el, "register_read_bits": 16 * el,
                    "out_bits": 8 * el}
