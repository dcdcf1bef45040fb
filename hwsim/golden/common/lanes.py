"""Packing integer codes into wide words, lane 0 in the least significant bits.

This is the bus format of every hwsim stream whose payload is an array of codes
(``amaranth.hdl.data.ArrayLayout`` lays element ``i`` at bits ``[i·w, (i+1)·w)``), so the
golden side, the testbenches and the RTL agree on one layout.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["pack_lanes", "unpack_lanes"]


def pack_lanes(codes: Iterable[int], width: int) -> int:
    """Pack codes (two's complement for negatives) into one integer, lane 0 lowest."""
    mask = (1 << width) - 1
    word = 0
    for i, c in enumerate(codes):
        word |= (int(c) & mask) << (i * width)
    return word


def unpack_lanes(word: int, width: int, lanes: int, signed: bool = True) -> np.ndarray:
    """Inverse of :func:`pack_lanes`: ``lanes`` codes of ``width`` bits as int64."""
    mask = (1 << width) - 1
    out = np.empty(lanes, dtype=np.int64)
    word = int(word)
    for i in range(lanes):
        v = (word >> (i * width)) & mask
        if signed and v >> (width - 1):
            v -= 1 << width
        out[i] = v
    return out
