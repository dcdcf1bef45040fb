"""KV-cache write port: int8 K or V rows written to DRAM over AXI4.

A decode step appends one K and one V row per layer and KV head to the cache in DRAM. This
module specifies :class:`rtl.vitallm.kv_write.KvWrite`: the DRAM layout (row ``r`` of
``row_bytes`` int8 codes at ``base_addr + r·row_bytes``, code ``i`` at byte ``i``, two's
complement), its cycle formula against the memory model's timing
(:class:`hwsim.golden.vitallm.weight_stream.DramTiming`) and what a read-back must give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.vitallm.weight_stream import AXI_4K, MAX_BURST, DramTiming, _int

__all__ = ["KvWriteParams", "action_counts", "dram_rows", "kv_write", "latency_cycles",
           "row_interval_cycles", "storage_bits", "stream_cycles"]


@dataclass(frozen=True)
class KvWriteParams:
    """Elaboration parameters of the KV-cache writer.

    Parameters
    ----------
    row_bytes : int
        Codes per row (``head_dim``): a power of two, a multiple of ``data_bytes``, at most
        ``256·data_bytes`` and 4 KiB (one INCR burst per row, inside one 4 KiB page).
    data_bytes : int
        AXI data bus bytes (a power of two ≤ 128).
    rows : int
        Cache capacity in rows (``max_len``); the ``row`` port indexes them.
    base_addr : int
        Byte address of row 0, aligned to ``row_bytes``.
    addr_width : int
        Width of ``awaddr``.
    dram_bytes_per_cycle, dram_latency
        The DRAM the registry's cycle hook times against (``None``: the bus width).
    """

    row_bytes: int = 64
    data_bytes: int = 16
    rows: int = 64
    base_addr: int = 0
    addr_width: int = 32
    dram_bytes_per_cycle: int | None = None
    dram_latency: int = 20

    def __post_init__(self):
        for name in ("row_bytes", "data_bytes", "rows", "addr_width"):
            _int(name, getattr(self, name), 1, "kv-write")
        _int("base_addr", self.base_addr, 0, "kv-write")
        D, n = self.data_bytes, self.row_bytes
        if D & (D - 1) or D > 128:
            raise HwsimError(f"kv-write data_bytes must be a power of two ≤ 128, not {D}")
        if n & (n - 1) or n % D or n > AXI_4K or n // D > MAX_BURST:
            raise HwsimError(f"kv-write row_bytes ({n}) must be a power of two, a multiple of "
                             f"data_bytes ({D}), ≤ 4096 and ≤ {MAX_BURST} beats")
        if self.base_addr % n:
            raise HwsimError(f"kv-write base_addr {self.base_addr:#x} is not aligned to a "
                             f"{n}-byte row (a row burst would cross 4 KiB)")
        if self.base_addr + self.rows * n > 1 << self.addr_width:
            raise HwsimError(f"kv-write rows end past the {self.addr_width}-bit address space")
        self.dram.beat_period(D)

    @property
    def dram(self) -> DramTiming:
        bpc = self.data_bytes if self.dram_bytes_per_cycle is None else self.dram_bytes_per_cycle
        return DramTiming(bpc, self.dram_latency)

    @property
    def beats(self) -> int:
        """W beats per row."""
        return self.row_bytes // self.data_bytes


def kv_write(rows, index, p: KvWriteParams) -> np.ndarray:
    """The codes a read-back of the written rows gives, in write order: ``rows`` itself,
    checked (int8 codes, ``row_bytes`` each, indices inside the cache). A later write to the
    same index replaces the earlier one, so a repeated index reads back its last row."""
    rows, index = np.atleast_2d(np.asarray(rows)), np.asarray(index).ravel()
    if rows.shape[1] != p.row_bytes or len(index) != rows.shape[0]:
        raise HwsimError(f"kv-write: {rows.shape} rows for {len(index)} indices, rows of "
                         f"{p.row_bytes} codes")
    if rows.min(initial=0) < -128 or rows.max(initial=0) > 127:
        raise HwsimError("kv-write rows must be int8 codes")
    if index.min(initial=0) < 0 or index.max(initial=0) >= p.rows:
        raise HwsimError(f"kv-write row index outside 0 … {p.rows - 1}")
    last = {int(i): r for r, i in enumerate(index)}
    return np.stack([rows[last[int(i)]] for i in index]).astype(np.int64)


def dram_rows(mem: bytes, index, p: KvWriteParams) -> np.ndarray:
    """Read back rows ``index`` from a DRAM image (int8 codes)."""
    return np.stack([np.frombuffer(mem, np.int8, p.row_bytes, p.base_addr + int(i) * p.row_bytes)
                     for i in np.asarray(index).ravel()]).astype(np.int64)


def latency_cycles(p: KvWriteParams, dram: DramTiming | None = None) -> int:
    """First ``kv`` beat of a row to its ``done`` beat, both counted (no idle, no stall):
    ``(beats − 1)·T + latency + 5`` — AW the next cycle, the first W beat the one after, the B
    response ``1 + latency`` cycles after the last W beat, ``done`` the cycle after."""
    dram = dram or p.dram
    return (p.beats - 1) * dram.beat_period(p.data_bytes) + dram.latency + 5


def row_interval_cycles(p: KvWriteParams, dram: DramTiming | None = None) -> int:
    """First ``kv`` beat of a row to the next row's: ``(beats − 1)·T + max(latency + 4, T)``
    (the next row starts in the cycle its predecessor's ``done`` goes out)."""
    dram = dram or p.dram
    T = dram.beat_period(p.data_bytes)
    return (p.beats - 1) * T + max(dram.latency + 4, T)


def stream_cycles(p: KvWriteParams, n_rows: int, dram: DramTiming | None = None) -> int:
    return (n_rows - 1) * row_interval_cycles(p, dram) + latency_cycles(p, dram)


def storage_bits(p: KvWriteParams) -> int:
    """No memory: the address register and the beat counter."""
    return p.addr_width + p.beats.bit_length()


def action_counts(p: KvWriteParams, n_rows: int = 1) -> dict[str, int]:
    return {"dram_write_bytes": n_rows * p.row_bytes, "cycles": stream_cycles(p, n_rows)}
