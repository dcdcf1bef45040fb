"""Fast simulation tier: drive ``amaranth.lib.stream`` ports in Amaranth's own simulator.

:func:`run_streams` runs one cycle-by-cycle testbench: sources present payloads (with random
idle cycles), sinks take them (with random back-pressure), every transfer is stamped with its
cycle. The same stimulus shapes are used by the cocotb tier (:mod:`hwsim.sim.streams`).
:func:`run_tokens` runs a kernel token after token, each with its own static ports, as a
controller generating a sequence does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.sim import Simulator

from hwsim.errors import HwsimError

__all__ = ["Sink", "Source", "Token", "run_streams", "run_tokens"]


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


@dataclass
class Token:
    """One token of :func:`run_tokens`: its input beats and the static ports it holds from its
    first input beat to its last output beat ((signal, value) pairs)."""

    payloads: Sequence[int]
    ports: Sequence[tuple] = ()
    values: list[int] = field(default_factory=list)       # its output beats
    cycles: list[int] = field(default_factory=list)       # its first input, last output beat
    taps: dict[str, list[int]] = field(default_factory=dict)


def run_tokens(dut, loads: Sequence[Source], x, out, per_token: int, tokens: Sequence[Token], *,
               taps: dict | None = None, settle: Sequence[tuple] = (),
               max_cycles: int = 1_000_000) -> int:
    """Simulate ``dut`` on ``tokens`` one at a time, as a controller that holds each token's
    static ports over it would: the ``loads`` first (in order, no idle cycle), then per token
    its ports are set, its beats sent on the stream ``x`` and ``per_token`` beats taken from
    the stream ``out`` (always ready); the next token's first beat follows in the next cycle.

    ``taps`` maps a name to ``(valid, value)`` signals of a valid-only output (no ready):
    every cycle ``valid`` is 1, ``value`` is appended to the current token's ``taps[name]``.
    Each token gets its output ``values`` and ``cycles`` (its first input beat and its last
    output beat). Returns the number of cycles simulated.
    """
    taps = taps or {}
    state = {"cycles": 0}

    async def bench(ctx):
        for sig, value in settle:
            ctx.set(sig, value)
        cycle, t, sent, armed = 0, 0, 0, False
        ctx.set(out.ready, 1)
        while t < len(tokens):
            if cycle >= max_cycles:
                raise TimeoutError(f"no completion after {max_cycles} cycles")
            active = next((s for s in loads if not s.done), None)
            for s in loads:
                ctx.set(s.stream.valid, s is active)
                if s is active:
                    ctx.set(_flat(s.stream.payload), s.payloads[len(s.cycles)])
            tok = tokens[t]
            if active is None and not armed:
                for sig, value in tok.ports:
                    ctx.set(sig, value)
                armed = True
            presenting = active is None and sent < len(tok.payloads)
            ctx.set(x.valid, presenting)
            if presenting:
                ctx.set(_flat(x.payload), tok.payloads[sent])
            for s in loads:
                if ctx.get(s.stream.valid) and ctx.get(s.stream.ready):
                    s.cycles.append(cycle)
            if presenting and ctx.get(x.ready):
                if sent == 0:
                    tok.cycles.append(cycle)
                sent += 1
            for name, (valid, value) in taps.items():
                if ctx.get(valid):
                    tok.taps.setdefault(name, []).append(int(ctx.get(_flat(value))))
            if ctx.get(out.valid):
                tok.values.append(int(ctx.get(_flat(out.payload))))
                if len(tok.values) == per_token:
                    tok.cycles.append(cycle)
                    t, sent, armed = t + 1, 0, False
            await ctx.tick()
            cycle += 1
        ctx.set(x.valid, 0)
        state["cycles"] = cycle

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return state["cycles"]
