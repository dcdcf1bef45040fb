"""A cycle-exact AXI4 memory for cocotb testbenches: DRAM with a bandwidth and a latency.

:class:`AxiMemory` is the subordinate behind a design's AXI4 manager port ``PREFIX``
(:mod:`rtl.common.axi` names: ``PREFIX__araddr`` …, also what cocotbext-axi's
``AxiBus.from_prefix(dut, "PREFIX_")`` finds). It serves INCR bursts of full-width beats from a
byte array and takes writes into it, with the timing of
:class:`hwsim.golden.vitallm.weight_stream.DramTiming`, deterministically:

* an AR or AW is accepted in any cycle in which fewer than ``max_outstanding`` bursts are
  pending (always, when unbounded);
* the first R beat of a burst accepted in cycle ``a`` is offered from cycle ``a + 1 + latency``;
* one data beat (R or W, reads first) moves at most every ``T = data_bytes / bytes_per_cycle``
  cycles: a beat in cycle ``t`` makes the next one wait until ``t + T``;
* a write burst's B response is offered ``1 + latency`` cycles after its last W beat; W beats
  are taken only for an accepted AW.

It steps with :class:`hwsim.sim.streams.CycleLoop` as one of its sinks (``drive`` on the
falling edge, ``sample`` in the read-only phase), so it runs unchanged on Icarus, Verilator and
the Amaranth stand-in (:mod:`hwsim.sim.amaranth_tb`), which starts no background coroutines.
A protocol error (a burst crossing 4 KiB, a narrow or non-INCR burst, an address outside the
memory, ``wlast`` in the wrong beat) fails the test with a one-line message.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hwsim.golden.vitallm.weight_stream import AXI_4K, DramTiming

__all__ = ["AxiMemory"]

_INCR = 0b01


@dataclass
class _Burst:
    addr: int
    beats: int
    ready: int            # first cycle its data may move (reads) or its B may go (writes)
    done: int = 0         # beats moved
    log: list[int] = field(default_factory=list)


def _int(handle) -> int:
    value = handle.value
    if not value.is_resolvable:
        raise AssertionError(f"{handle._name} is {value}")
    return int(value)


class AxiMemory:
    """``size`` bytes of DRAM (``data`` at ``origin``) behind ``dut``'s AXI4 port ``prefix``.

    ``beats`` lists the cycle of every R beat taken, ``ar`` the cycle of every AR accepted,
    ``bursts`` the ``(address, beats)`` read; ``w_beats``/``aw``/``b`` likewise for writes.
    """

    def __init__(self, dut, prefix: str, size: int, timing: DramTiming, data: bytes = b"",
                 origin: int = 0):
        self.timing = timing
        self.mem = bytearray(size)
        self.mem[origin:origin + len(data)] = data
        self._sig = {n[len(prefix) + 2:]: getattr(dut, n) for n in self._names(dut, prefix)}
        if "rdata" not in self._sig and "wdata" not in self._sig:
            raise AssertionError(f"the design has no AXI4 port {prefix!r}")
        width = len(self._sig["rdata"] if "rdata" in self._sig else self._sig["wdata"])
        self.data_bytes = width // 8
        self.period = timing.beat_period(self.data_bytes)
        self.ar: list[int] = []
        self.aw: list[int] = []
        self.b: list[int] = []
        self.beats: list[int] = []
        self.w_beats: list[int] = []
        self.bursts: list[tuple[int, int]] = []
        self._reads: deque[_Burst] = deque()
        self._writes: deque[_Burst] = deque()
        self._responses: deque[_Burst] = deque()
        self._next_beat = 0
        self._now = 0
        self._offer = {}
        self.ready = _Quiet(self)   # CycleLoop sets sinks' ``ready.value = 0`` when done
        self.quiet()

    @staticmethod
    def _names(dut, prefix: str) -> list[str]:
        members = ("arid", "araddr", "arlen", "arsize", "arburst", "arvalid", "arready", "rid",
                   "rdata", "rresp", "rlast", "rvalid", "rready", "awid", "awaddr", "awlen",
                   "awsize", "awburst", "awvalid", "awready", "wdata", "wstrb", "wlast", "wvalid",
                   "wready", "bid", "bresp", "bvalid", "bready")
        return [f"{prefix}__{n}" for n in members if hasattr(dut, f"{prefix}__{n}")]

    # ---- the CycleLoop sink interface ------------------------------------------------------
    @property
    def done(self) -> bool:
        return not (self._reads or self._writes or self._responses)

    def drive(self) -> None:
        now, s, t = self._now, self._sig, self.timing
        free = t.max_outstanding is None or (
            len(self._reads) + len(self._writes) + len(self._responses) < t.max_outstanding)
        offer = {}
        data_free = now >= self._next_beat
        if "rdata" in s:
            offer["ar"] = free
            head = self._reads[0] if self._reads else None
            offer["r"] = bool(head and head.ready <= now and data_free)
            s["arready"].value = int(offer["ar"])
            s["rvalid"].value = int(offer["r"])
            if offer["r"]:
                a = head.addr + head.done * self.data_bytes
                s["rdata"].value = int.from_bytes(self.mem[a:a + self.data_bytes], "little")
                s["rlast"].value = int(head.done == head.beats - 1)
                s["rresp"].value = 0
                s["rid"].value = 0
            data_free = data_free and not offer["r"]
        if "wdata" in s:
            offer["aw"] = free
            offer["w"] = bool(self._writes and data_free)
            head = self._responses[0] if self._responses else None
            offer["b"] = bool(head and head.ready <= now)
            s["awready"].value = int(offer["aw"])
            s["wready"].value = int(offer["w"])
            s["bvalid"].value = int(offer["b"])
            s["bresp"].value = 0
            s["bid"].value = 0
        self._offer = offer

    def sample(self, cycle: int) -> None:
        s, o, t = self._sig, self._offer, self.timing
        if o.get("r") and _int(s["rready"]):
            head = self._reads[0]
            head.done += 1
            self.beats.append(cycle)
            self._next_beat = cycle + self.period
            if head.done == head.beats:
                self._reads.popleft()
        if o.get("w") and _int(s["wvalid"]):
            head = self._writes[0]
            a = head.addr + head.done * self.data_bytes
            word, strb = _int(s["wdata"]), _int(s["wstrb"])
            for i in range(self.data_bytes):
                if strb >> i & 1:
                    self.mem[a + i] = word >> (8 * i) & 0xFF
            head.done += 1
            if _int(s["wlast"]) != (head.done == head.beats):
                raise AssertionError(f"AXI write burst at {head.addr:#x}: wlast in beat "
                                     f"{head.done - 1} of {head.beats}")
            self.w_beats.append(cycle)
            self._next_beat = cycle + self.period
            if head.done == head.beats:
                head.ready = cycle + 1 + t.latency
                self._responses.append(self._writes.popleft())
        if o.get("b") and _int(s["bready"]):
            self._responses.popleft()
            self.b.append(cycle)
        if o.get("ar") and _int(s["arvalid"]):
            self._reads.append(self._burst("ar", cycle))
            self.ar.append(cycle)
        if o.get("aw") and _int(s["awvalid"]):
            self._writes.append(self._burst("aw", cycle))
            self.aw.append(cycle)
        self._now = cycle + 1

    def quiet(self) -> None:
        for name in ("arready", "rvalid", "awready", "wready", "bvalid"):
            if name in self._sig:
                self._sig[name].value = 0

    # ---- checks ----------------------------------------------------------------------------
    def _burst(self, ch: str, cycle: int) -> _Burst:
        s, D = self._sig, self.data_bytes
        addr, beats = _int(s[f"{ch}addr"]), _int(s[f"{ch}len"]) + 1
        where = f"AXI {ch.upper()} burst at {addr:#x} ({beats} beats)"
        if (1 << _int(s[f"{ch}size"])) != D or _int(s[f"{ch}burst"]) != _INCR:
            raise AssertionError(f"{where}: only full-width INCR bursts are served")
        if addr % D:
            raise AssertionError(f"{where}: address not aligned to the {D}-byte bus")
        if addr // AXI_4K != (addr + beats * D - 1) // AXI_4K:
            raise AssertionError(f"{where}: crosses a 4 KiB boundary")
        if addr + beats * D > len(self.mem):
            raise AssertionError(f"{where}: past the end of the {len(self.mem)}-byte memory")
        if ch == "ar":
            self.bursts.append((addr, beats))
        return _Burst(addr, beats, cycle + 1 + self.timing.latency)


class _Quiet:
    """``ready.value = 0`` on the memory: deassert everything it drives."""

    def __init__(self, memory: AxiMemory):
        self._memory = memory

    @property
    def value(self) -> int:
        return 0

    @value.setter
    def value(self, _v) -> None:
        self._memory.quiet()
