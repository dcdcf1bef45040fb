"""cocotb driver and monitor for ``amaranth.lib.stream`` ports on emitted Verilog.

Amaranth names the members of a port ``x`` as ``x__payload``, ``x__valid``, ``x__ready``;
:class:`StreamSource` and :class:`StreamSink` take the port's base name and find the members.

Timing discipline (works identically on Icarus and Verilator): every cycle, on the falling edge
of the clock, sources and sinks drive ``valid``/``payload`` and ``ready``; then, in the
read-only phase, every side samples the settled ``valid & ready`` to learn which transfers the
next rising edge performs. :class:`CycleLoop` runs that loop and counts cycles, so each transfer
carries the exact cycle it happened in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["CycleLoop", "StreamSink", "StreamSource", "reset", "run_x_to_y"]


def _bit(handle, cycle: int) -> bool:
    """A handshake bit; X or Z is a protocol error worth naming."""
    value = handle.value
    if not value.is_resolvable:
        raise AssertionError(f"{handle._name} is {value} in cycle {cycle}")
    return bool(int(value))


class StreamSource:
    """Drives ``name__valid``/``name__payload`` from a list of integer payloads.

    ``idle`` is the probability of withholding ``valid`` in a cycle (random idle cycles).
    :meth:`load` may also give, per payload, ``(handle, value)`` pairs driven whenever that
    payload is presented and then held: per-vector parameter ports (``M``/``S``, ``ε``) that
    travel beside a vector's beats.
    """

    def __init__(self, dut, name: str, rng: np.random.Generator, idle: float = 0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.ready = getattr(dut, f"{name}__ready")
        self.name, self.rng, self.idle = name, rng, idle
        self.payloads: list[int] = []
        self.side: list[Sequence[tuple]] | None = None
        self.cycles: list[int] = []
        self._presenting = False
        self._mask = (1 << len(self.payload)) - 1

    def load(self, payloads: Sequence[int], side: Sequence[Sequence[tuple]] | None = None) -> None:
        self.payloads = [int(p) & self._mask for p in payloads]
        if side is not None and len(side) != len(self.payloads):
            raise HwsimError(f"{self.name}: {len(side)} side entries for {len(self.payloads)} "
                             "payloads")
        self.side = None if side is None else list(side)
        self.cycles = []

    @property
    def done(self) -> bool:
        return len(self.cycles) >= len(self.payloads)

    def drive(self, active: bool) -> None:
        self._presenting = active and not self.done and self.rng.random() >= self.idle
        self.valid.value = int(self._presenting)
        if self._presenting:
            self.payload.value = self.payloads[len(self.cycles)]
            for handle, value in (self.side[len(self.cycles)] if self.side else ()):
                handle.value = int(value)

    def sample(self, cycle: int) -> None:
        if self._presenting and _bit(self.ready, cycle):
            self.cycles.append(cycle)

    def quiet(self) -> None:
        self.valid.value = 0
        self._presenting = False


class StreamSink:
    """Takes payloads from ``name__valid``/``name__payload``, driving ``name__ready``.

    ``stall`` is the probability of deasserting ``ready`` in a cycle (back-pressure).
    """

    def __init__(self, dut, name: str, rng: np.random.Generator, stall: float = 0.0,
                 signed: bool = True):
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.ready = getattr(dut, f"{name}__ready")
        self.name, self.rng, self.stall, self.signed = name, rng, stall, signed
        self.expect = 0
        self.values: list[int] = []
        self.cycles: list[int] = []
        self._ready = False

    def open(self, count: int) -> None:
        self.expect, self.values, self.cycles = count, [], []

    @property
    def done(self) -> bool:
        return len(self.values) >= self.expect

    def drive(self) -> None:
        self._ready = not self.done and self.rng.random() >= self.stall
        self.ready.value = int(self._ready)

    def sample(self, cycle: int) -> None:
        if self._ready and _bit(self.valid, cycle):
            v = self.payload.value
            self.values.append(v.to_signed() if self.signed else v.to_unsigned())
            self.cycles.append(cycle)


async def reset(dut, clk, cycles: int = 2) -> None:
    """Hold Amaranth's synchronous active-high ``rst`` for ``cycles`` clock cycles."""
    from cocotb.triggers import RisingEdge

    dut.rst.value = 1
    for _ in range(cycles):
        await RisingEdge(clk)
    dut.rst.value = 0


class CycleLoop:
    """Runs sources (one after another, in order; with ``together`` all at once, each with its
    own idle cycles) and sinks until all are done."""

    def __init__(self, clk, sources: Sequence[StreamSource], sinks: Sequence[StreamSink],
                 together: bool = False):
        self.clk, self.sources, self.sinks = clk, list(sources), list(sinks)
        self.together = together
        self.cycle = 0

    async def run(self, max_cycles: int = 10_000_000) -> int:
        from cocotb.triggers import FallingEdge, ReadOnly

        fall = FallingEdge(self.clk)
        start = self.cycle
        while not (all(s.done for s in self.sources) and all(k.done for k in self.sinks)):
            if self.cycle - start >= max_cycles:
                raise TimeoutError(f"streams not done after {max_cycles} cycles")
            await fall
            active = next((s for s in self.sources if not s.done), None)
            for s in self.sources:
                s.drive(not s.done if self.together else s is active)
            for k in self.sinks:
                k.drive()
            await ReadOnly()
            for s in self.sources:
                s.sample(self.cycle)
            for k in self.sinks:
                k.sample(self.cycle)
            self.cycle += 1
        await fall
        for s in self.sources:
            s.quiet()
        for k in self.sinks:
            k.ready.value = 0
        return self.cycle - start


async def run_x_to_y(dut, rng, idle: float, stall: float, words: list[int], out_beats: int,
                     decode) -> dict:
    """One case of a kernel with one input stream ``x`` and one output stream ``y``: drive
    ``words``, collect ``out_beats`` beats, ``decode(values)`` → the output codes. Returns what
    :func:`hwsim.sim.checker.check_plan` reads (``outputs``, ``cycles`` from the first input
    beat to the last output beat, ``output_cycles``, ``sim_cycles``, ``wall_s``)."""
    import time

    x = StreamSource(dut, "x", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=False)
    x.load(words)
    y.open(out_beats)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [x], [y]).run()
    return {"outputs": decode(y.values), "cycles": y.cycles[-1] - x.cycles[0] + 1,
            "output_cycles": [c - x.cycles[0] for c in y.cycles],
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}

