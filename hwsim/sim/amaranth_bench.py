"""Fast simulation tier: drive ``amaranth.lib.stream`` ports in Amaranth's own simulator.

:func:`run_streams` runs one cycle-by-cycle testbench: sources present payloads (with random
idle cycles), sinks take them (with random back-pressure), every transfer is stamped with its
cycle. The same stimulus shapes are used by the cocotb tier (:mod:`hwsim.sim.streams`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from hwsim.errors import HwsimError

__all__ = ["Sink", "Source", "run_streams"]


@dataclass
class Source:
    """Payloads to send on an input stream; ``idle`` is the chance of an idle cycle.

    ``side`` (optional, one entry per payload) holds ``(signal, value)`` pairs that are set
    whenever that payload is presented and then held: the per-vector parameter ports (a
    requantization ``M``/``S``, an ``ε``) that travel beside a vector's beats, as a host drives
    them. Give every beat of a vector its vector's values.
    """

    stream: object
    payloads: Sequence[int]
    idle: float = 0.0
    cycles: list[int] = field(default_factory=list)  # cycle of each transfer
    side: Sequence[Sequence[tuple]] | None = None

    def __post_init__(self):
        if self.side is not None and len(self.side) != len(self.payloads):
            raise HwsimError(f"side has {len(self.side)} entries for {len(self.payloads)} "
                             "payloads")

    @property
    def done(self) -> bool:
        return len(self.cycles) == len(self.payloads)


@dataclass
class Sink:
    """Collects ``count`` payloads from an output stream; ``stall`` is the chance of ready=0."""

    stream: object
    count: int
    stall: float = 0.0
    values: list[int] = field(default_factory=list)
    cycles: list[int] = field(default_factory=list)

    @property
    def done(self) -> bool:
        return len(self.values) == self.count


def _flat(payload):
    """A payload as a plain value (views over array/struct layouts become their bits)."""
    return payload.as_value() if hasattr(payload, "as_value") else payload


def run_streams(dut, sources: Sequence[Source], sinks: Sequence[Sink], *, seed: int = 0,
                settle: Sequence[tuple] = (), max_cycles: int = 1_000_000,
                vcd: Path | None = None, together: bool = False) -> int:
    """Simulate ``dut`` until every source is sent and every sink is full.

    Sources are served in order: a source starts only when all sources before it are done
    (weights before activations, as a host would send them); with ``together`` every source
    presents at once, each with its own idle cycles (the paired operand streams of a two-input
    kernel). ``settle`` maps plain input
    signals to the values they hold throughout ((signal, value) pairs).
    Returns the number of cycles simulated.
    """
    rng = np.random.default_rng(seed)
    state = {"cycles": 0}

    async def bench(ctx):
        for sig, value in settle:
            ctx.set(sig, value)
        cycle = 0
        while not (all(s.done for s in sources) and all(k.done for k in sinks)):
            if cycle >= max_cycles:
                raise TimeoutError(f"no completion after {max_cycles} cycles")
            active = next((s for s in sources if not s.done), None)
            for s in sources:
                on = not s.done if together else s is active
                presenting = on and rng.random() >= s.idle
                ctx.set(s.stream.valid, presenting)
                if presenting:
                    ctx.set(_flat(s.stream.payload), s.payloads[len(s.cycles)])
                    for sig, value in (s.side[len(s.cycles)] if s.side is not None else ()):
                        ctx.set(sig, value)
            for k in sinks:
                ctx.set(k.stream.ready, (not k.done) and rng.random() >= k.stall)
            # Handshakes that happen at the coming clock edge (combinational values settled).
            for s in sources:
                if ctx.get(s.stream.valid) and ctx.get(s.stream.ready):
                    s.cycles.append(cycle)
            for k in sinks:
                if ctx.get(k.stream.valid) and ctx.get(k.stream.ready):
                    k.values.append(int(ctx.get(_flat(k.stream.payload))))
                    k.cycles.append(cycle)
            await ctx.tick()
            cycle += 1
        for s in sources:
            ctx.set(s.stream.valid, 0)
        state["cycles"] = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd is not None:
        with sim.write_vcd(str(vcd)):
            sim.run()
    else:
        sim.run()
    return state["cycles"]
