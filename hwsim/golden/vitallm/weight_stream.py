"""Weight-streamed ternary projection: ``y = requant(W · x)`` with ``W`` read from DRAM over AXI4.

VitaLLM decodes BitNet b1.58 by streaming every projection's ternary weights from DRAM once per
token (arXiv 2605.00320): decode is bound by weight traffic, not by the adders. This module is
the specification of :class:`rtl.vitallm.weight_stream.TernaryStream` — its DRAM layout, its
AXI4 burst plan, its cycle formula against a DRAM of a given bandwidth and latency — and the
timing model of the cocotb memory :class:`hwsim.sim.axi_mem.AxiMemory`.

Numbers: the output is exactly :func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu` (same
accumulator, same ``M · 2**-S`` requantization); only the order of the output beats differs.

DRAM layout: the 2-bit packed layout of Hugging Face BitNet checkpoints
(:func:`models.bitnet.hf.pack_ternary_rows`): ``P = rows/4`` packed rows of ``cols`` bytes,
row-major from ``base_addr``; byte ``(j, c)`` holds ``W[j + i·P, c] + 1`` in bits
``[2i, 2i+2)``, ``i = 0..3``. A ``data_bytes``-wide R beat therefore carries ``data_bytes``
columns of four rows ``j, j+P, j+2P, j+3P``: ``4·data_bytes`` ternary weights.

DRAM timing (the memory model): every AR is accepted at once (``max_outstanding`` bursts at
most, if given); the first beat of a burst accepted in cycle ``a`` comes no earlier than cycle
``a + 1 + latency``; beats leave at most one every ``T = data_bytes / bytes_per_cycle`` cycles
(the bandwidth), each ``T`` cycles after the previous one at the earliest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ternary_mvu as _mvu
from quant.qtype import INT8, QType

__all__ = ["AXI_4K", "MAX_BURST", "PIPELINE_DEPTH", "DramTiming", "WeightStreamParams",
           "action_counts", "beat_cycles", "burst_plan", "dram_image", "latency_cycles",
           "output_rows", "pack_rows", "projection_cycles", "projection_cycles_bounds",
           "stall_free", "storage_bits", "weight_stream", "weight_stream_bound_cycles"]

#: AXI4 rule: an INCR burst must not cross a 4 KiB address boundary
AXI_4K = 4096
#: AXI4 INCR bursts are 1 … 256 beats (``arlen`` 0 … 255)
MAX_BURST = 256
#: Register stages from the cycle an R beat is taken to the cycle its rows' codes are on ``y``:
#: adder trees, accumulate, multiply, round-and-saturate.
PIPELINE_DEPTH = 4
#: Cycles from the first ``x`` beat to the first AR handshake, plus the memory's one registered
#: cycle: with ``latency = 0`` the first R beat can be taken in cycle ``AR_START + 1``.
AR_START = 1


def _int(name: str, v, lo: int, what: str = "ternary-stream") -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer):
        raise HwsimError(f"{what} {name} must be an integer, not {v!r}")
    if v < lo:
        raise HwsimError(f"{what} {name} must be at least {lo}, not {v}")
    return int(v)


@dataclass(frozen=True)
class DramTiming:
    """The DRAM behind the AXI port, as the memory model serves it.

    Parameters
    ----------
    bytes_per_cycle : int
        Bandwidth; must divide the bus width (``data_bytes``): one beat every
        ``data_bytes / bytes_per_cycle`` cycles.
    latency : int
        Extra cycles from an AR handshake to its first R beat (0: the next cycle).
    max_outstanding : int or None
        Bursts the memory holds at once (AR accepted while fewer are pending); None: unbounded.
    """

    bytes_per_cycle: int
    latency: int = 0
    max_outstanding: int | None = None

    def __post_init__(self):
        _int("DRAM bytes_per_cycle", self.bytes_per_cycle, 1, "memory")
        _int("DRAM latency", self.latency, 0, "memory")
        if self.max_outstanding is not None:
            _int("DRAM max_outstanding", self.max_outstanding, 1, "memory")

    def beat_period(self, data_bytes: int) -> int:
        """``T``: cycles per beat of ``data_bytes`` at this bandwidth."""
        if self.bytes_per_cycle > data_bytes or data_bytes % self.bytes_per_cycle:
            raise HwsimError(f"memory bandwidth {self.bytes_per_cycle} bytes/cycle must divide "
                             f"the {data_bytes}-byte data bus")
        return data_bytes // self.bytes_per_cycle


@dataclass(frozen=True)
class WeightStreamParams:
    """Elaboration parameters of the weight-streamed ternary projection.

    Parameters
    ----------
    rows, cols : int
        ``W`` is rows × cols ternary; ``rows`` a multiple of 4 (four rows per packed byte),
        ``cols`` a multiple of ``data_bytes`` (a beat never straddles two packed rows).
    data_bytes : int
        AXI data bus width in bytes (a power of two, 1 … 128): ``4·data_bytes`` weights per beat,
        ``data_bytes`` activations per ``x`` beat.
    burst_beats : int
        Beats per INCR burst (1 … 256); the last burst takes what is left.
    base_addr : int
        Byte address of packed row 0, a multiple of ``data_bytes``.
    addr_width : int
        Width of ``araddr``.
    dram_bytes_per_cycle, dram_latency : int
        The DRAM the registry's cycle hook times against (the RTL does not depend on them);
        ``dram_bytes_per_cycle=None`` is the bus width (one beat per cycle).
    act, out, mult_bits, shift_bits
        As for :class:`hwsim.golden.vitallm.ternary_mvu.TernaryMvuParams`.

    Raises
    ------
    HwsimError
        On any size out of range, a burst that would cross a 4 KiB boundary, or a bandwidth
        that does not divide the bus.
    """

    rows: int = 64
    cols: int = 64
    data_bytes: int = 16
    burst_beats: int = 16
    base_addr: int = 0
    addr_width: int = 32
    dram_bytes_per_cycle: int | None = None
    dram_latency: int = 20
    act: QType = INT8
    out: QType = INT8
    mult_bits: int = 16
    shift_bits: int = 6

    def __post_init__(self):
        for name in ("rows", "cols", "data_bytes", "burst_beats", "addr_width", "mult_bits",
                     "shift_bits"):
            _int(name, getattr(self, name), 1)
        _int("base_addr", self.base_addr, 0)
        D = self.data_bytes
        if D & (D - 1) or D > 128:
            raise HwsimError(f"ternary-stream data_bytes must be a power of two ≤ 128, not {D}")
        if self.rows % 4:
            raise HwsimError(f"ternary-stream rows ({self.rows}) must be a multiple of 4 "
                             "(four rows per packed byte)")
        if self.cols % D:
            raise HwsimError(f"ternary-stream data_bytes ({D}) must divide cols ({self.cols})")
        if self.burst_beats > MAX_BURST:
            raise HwsimError(f"ternary-stream burst_beats must be ≤ {MAX_BURST}, not "
                             f"{self.burst_beats}")
        if self.base_addr % D:
            raise HwsimError(f"ternary-stream base_addr {self.base_addr:#x} is not aligned to "
                             f"the {D}-byte bus")
        if self.base_addr + self.weight_bytes > 1 << self.addr_width:
            raise HwsimError(f"ternary-stream weights end past the {self.addr_width}-bit "
                             "address space")
        if self.shift_bits > 6 or self.mult_bits > 32:
            raise HwsimError("ternary-stream shift_bits must be ≤ 6 and mult_bits ≤ 32")
        _ = self.mvu  # validates act/out and the accumulator width
        self.dram.beat_period(D)
        burst_plan(self)

    @property
    def mvu(self) -> _mvu.TernaryMvuParams:
        """The equivalent preloaded ternary MVU (same numbers)."""
        return _mvu.TernaryMvuParams(lanes=self.data_bytes, rows=self.rows, cols=self.cols,
                                     act=self.act, out=self.out, mult_bits=self.mult_bits,
                                     shift_bits=self.shift_bits)

    @property
    def dram(self) -> DramTiming:
        bpc = self.data_bytes if self.dram_bytes_per_cycle is None else self.dram_bytes_per_cycle
        return DramTiming(bpc, self.dram_latency)

    @property
    def packed_rows(self) -> int:
        return self.rows // 4

    @property
    def chunks(self) -> int:
        """Beats per packed row (and ``x`` beats per vector): ``cols / data_bytes``."""
        return self.cols // self.data_bytes

    @property
    def weight_bytes(self) -> int:
        return self.packed_rows * self.cols

    @property
    def beats(self) -> int:
        return self.weight_bytes // self.data_bytes

    @property
    def acc_width(self) -> int:
        return self.mvu.acc_width

    @property
    def tree_width(self) -> int:
        return self.mvu.tree_width


# ------------------------------------------------------------------------------------------
# Layout and numbers
def pack_rows(w) -> np.ndarray:
    """Ternary (rows, cols), rows a multiple of 4 → packed uint8 (rows/4, cols): byte ``(j, c)``
    holds ``W[j + i·rows/4, c] + 1`` in bits ``[2i, 2i+2)`` (the Hugging Face BitNet layout)."""
    w = _mvu._check_weights(w)
    if w.shape[0] % 4:
        raise HwsimError(f"packing needs rows in multiples of 4, got {w.shape[0]}")
    codes = (w + 1).astype(np.uint8).reshape(4, w.shape[0] // 4, w.shape[1])
    return (codes[0] | codes[1] << 2 | codes[2] << 4 | codes[3] << 6).astype(np.uint8)


def dram_image(w, p: WeightStreamParams) -> bytes:
    """The bytes at ``base_addr …``: :func:`pack_rows` row-major."""
    w = _mvu._check_weights(w)
    if w.shape != (p.rows, p.cols):
        raise HwsimError(f"weights of shape {w.shape}, the unit is {p.rows}×{p.cols}")
    return pack_rows(w).tobytes()


def output_rows(p: WeightStreamParams) -> np.ndarray:
    """(rows/4, 4): the rows of ``y`` beat ``j``'s four codes, lane ``i`` = row ``j + i·P``."""
    P = p.packed_rows
    return np.arange(P)[:, None] + P * np.arange(4)[None, :]


def weight_stream(w, x, multiplier: int, shift: int, out: QType = INT8,
                  act: QType = INT8) -> np.ndarray:
    """Golden codes: :func:`hwsim.golden.vitallm.ternary_mvu.ternary_mvu` itself (rows in
    order; the RTL's ``y`` beat ``j`` carries rows :func:`output_rows` ``[j]``)."""
    return _mvu.ternary_mvu(w, x, multiplier, shift, out, act)


# ------------------------------------------------------------------------------------------
# AXI burst plan and cycle formulas
def burst_plan(p: WeightStreamParams) -> list[tuple[int, int]]:
    """``(address, beats)`` of each INCR burst, in issue order. A burst crossing a 4 KiB
    boundary is an error (AXI4 forbids it)."""
    D, B = p.data_bytes, p.burst_beats
    plan = []
    for k in range(-(-p.beats // B)):
        addr, n = p.base_addr + k * B * D, min(B, p.beats - k * B)
        if addr // AXI_4K != (addr + n * D - 1) // AXI_4K:
            raise HwsimError(f"ternary-stream burst {k} ({n} beats of {D} bytes at {addr:#x}) "
                             "crosses a 4 KiB boundary; use a power-of-two burst_beats with an "
                             "aligned base_addr")
        plan.append((addr, n))
    return plan


def beat_cycles(p: WeightStreamParams, dram: DramTiming | None = None) -> list[int]:
    """Exact cycle (from the first ``x`` beat, cycle 0) of every R beat, by the recurrence the
    RTL and the memory model follow: AR ``k`` in cycle ``AR_START + k`` unless the memory is
    full; beat ``n`` in ``max(x loaded, its burst's AR + 1 + latency, beat n−1 + T)``."""
    dram = dram or p.dram
    T = dram.beat_period(p.data_bytes)
    plan, O = burst_plan(p), dram.max_outstanding
    ar, done, out = [], [], []
    t = max(p.chunks, AR_START + 1)  # rready rises once x is loaded
    for k, (_, n) in enumerate(plan):
        a = AR_START if k == 0 else ar[-1] + 1
        if O is not None and k >= O:
            a = max(a, done[k - O] + 1)  # a slot frees the cycle after the last beat
        ar.append(a)
        first = max(a + 1 + dram.latency, out[-1] + T if out else t)
        out.extend(first + i * T for i in range(n))
        done.append(out[-1])
    return out


def stall_free(p: WeightStreamParams, dram: DramTiming | None = None) -> bool:
    """True where no burst waits for its AR beyond the first: the closed form is exact."""
    dram = dram or p.dram
    if dram.max_outstanding is None:
        return True
    T, B = dram.beat_period(p.data_bytes), p.burst_beats
    return dram.latency + 2 <= ((dram.max_outstanding - 1) * B + 1) * T


def projection_cycles(p: WeightStreamParams, dram: DramTiming | None = None) -> int:
    """First ``x`` beat to last ``y`` beat, both counted, no idle ``x``, no ``y`` stall::

        max(AR_START + 1 + latency, cols/data_bytes) + (beats − 1)·T + PIPELINE_DEPTH + 1

    with ``beats = rows·cols / (4·data_bytes)`` and ``T = data_bytes / bytes_per_cycle``.
    Exact whenever :func:`stall_free` (always with unbounded outstanding reads); otherwise the
    exact count is :func:`beat_cycles`' and :func:`projection_cycles_bounds` bounds it."""
    dram = dram or p.dram
    if not stall_free(p, dram):
        return beat_cycles(p, dram)[-1] + PIPELINE_DEPTH + 1
    T = dram.beat_period(p.data_bytes)
    return (max(AR_START + 1 + dram.latency, p.chunks) + (p.beats - 1) * T
            + PIPELINE_DEPTH + 1)


def projection_cycles_bounds(p: WeightStreamParams, dram: DramTiming) -> tuple[int, int]:
    """Closed-form ``(low, high)`` around the exact count when the memory's outstanding limit
    exposes its latency: each burst after the first ``max_outstanding`` waits at most
    ``s = latency + 2 − ((max_outstanding − 1)·burst_beats + 1)·T`` cycles more."""
    T = dram.beat_period(p.data_bytes)
    low = (max(AR_START + 1 + dram.latency, p.chunks) + (p.beats - 1) * T
           + PIPELINE_DEPTH + 1)
    if stall_free(p, dram):
        return low, low
    O, B = dram.max_outstanding, p.burst_beats
    s = dram.latency + 2 - ((O - 1) * B + 1) * T
    return low, low + max(0, len(burst_plan(p)) - O) * s


def latency_cycles(p: WeightStreamParams) -> int:
    """The registry's cycle hook: one projection against the params' own DRAM."""
    return projection_cycles(p)


def weight_stream_bound_cycles(p: WeightStreamParams, dram: DramTiming | None = None) -> float:
    """The weight-traffic bound of one projection: ``weight bytes / bytes_per_cycle``."""
    dram = dram or p.dram
    return p.weight_bytes / dram.bytes_per_cycle


def storage_bits(p: WeightStreamParams) -> int:
    """On-chip bits: the activation vector and the four row accumulators (no weight memory)."""
    return p.cols * p.act.width + 4 * p.acc_width


def action_counts(p: WeightStreamParams, vectors: int = 1) -> dict[str, int]:
    """Hardware actions of ``vectors`` projections (worst case: every weight non-zero)."""
    n = p.rows * p.cols
    return {
        "ternary_add": vectors * n,
        "acc_add": vectors * p.rows * p.chunks,
        "dram_read_bytes": vectors * p.weight_bytes,
        "weight_read_bits": vectors * 2 * n,
        "act_read_bits": vectors * p.act.width * n // 4,  # one x word serves four rows
        "act_write_bits": vectors * p.act.width * p.cols,
        "requant_mul": vectors * p.rows,
        "out_bits": vectors * p.out.width * p.rows,
        "cycles": vectors * latency_cycles(p),
    }
