"""A top level that puts any hwsim accelerator on a board with a clock and a few LEDs.

A board has far fewer pins than an accelerator has stream bits (the ternary MVU at lanes=16 has
more than 180 input bits), so the harness keeps every port of the accelerator on chip:

* **sources** — every input bit (stream payloads and ``valid``, output ``ready``, plain inputs
  such as the requantization ``mult``/``shift``) comes from its own bit of a free-running
  rule-30 cellular-automaton register, so each input toggles pseudo-randomly and independently,
  back-pressure and idle cycles included; no input is a constant synthesis could propagate;
* **sink** — every output bit (stream payloads when a beat is taken, ``valid``, plain outputs) is
  folded by XOR into a 32-bit rotating signature register, which is XOR-folded onto the LEDs.

Every output bit of the accelerator therefore reaches a pin and every input is live, so
synthesis keeps the whole datapath; the LEDs show a signature that changes with every beat.
The harness costs one LUT and one flip-flop per source bit plus the 32-bit signature
(:func:`harness_overhead` gives the exact bit counts).
"""

from __future__ import annotations

import random

from amaranth.hdl import Cat, Elaboratable, Module, Signal
from amaranth.lib import io, stream, wiring

__all__ = ["StreamHarness", "harness_overhead"]

SIGNATURE_BITS = 32


def _value(v):
    return v.as_value() if hasattr(v, "as_value") else v


def _ports(component: wiring.Component):
    """Yield ``(name, kind, signals)`` for each member, from the harness's point of view.

    ``"drive"``: signals the harness drives (input payload and valid, output ready, plain
    inputs); ``"observe"``: signals it reads (input ready, plain outputs); ``"beat"``: an output
    stream's ``[payload, valid, ready]``, the payload counting only when a beat is taken.
    Nested signatures and member arrays are walked; constant handshakes (``always_valid``,
    ``always_ready``) are left alone.
    """
    yield from _walk(component.signature, component, False, type(component).__name__)


def _walk(signature, obj, flipped: bool, where: str):
    for name, member in signature.members.items():
        inward = (member.flow == wiring.In) != flipped
        for idx, port in _elements(getattr(obj, name), member.dimensions):
            path = f"{where}.{name}{idx}"
            if member.is_port:
                yield path, "drive" if inward else "observe", [_value(port)]
            elif isinstance(member.signature, stream.Signature):
                payload, valid, ready = _value(port.payload), _value(port.valid), port.ready
                if inward:
                    yield path, "drive", [s for s in (payload, valid) if isinstance(s, Signal)]
                    yield path, "observe", [ready]
                else:
                    yield path, "drive", [ready] if isinstance(ready, Signal) else []
                    yield path, "beat", [payload, valid, ready]
            else:
                yield from _walk(member.signature, port, inward, path)


def _elements(port, dims):
    """``(index suffix, element)`` for every element of a member array (or the member)."""
    if not dims:
        yield "", port
        return
    for i, elem in enumerate(port):
        for suffix, e in _elements(elem, dims[1:]):
            yield f"[{i}]{suffix}", e


def harness_overhead(component: wiring.Component) -> dict[str, int]:
    """Bits the harness adds: ``source_bits`` (CA register) and ``signature_bits``."""
    drive = sum(len(v) for _, kind, sigs in _ports(component) if kind == "drive" for v in sigs)
    return {"source_bits": max(drive, 8), "signature_bits": SIGNATURE_BITS}


class StreamHarness(Elaboratable):
    """Board top level for ``accel``: on-chip pseudo-random sources, a signature on ``leds``.

    Parameters
    ----------
    accel : wiring.Component
        Any hwsim accelerator whose members are ``amaranth.lib.stream`` streams or plain ports.
    led_resource : str
        Platform resource holding the LEDs (one resource, several pins).
    seed : int
        Seed of the source register's (aperiodic, non-zero) initial value.
    """

    def __init__(self, accel: wiring.Component, led_resource: str = "leds", seed: int = 0x2545F491):
        self.accel = accel
        self.led_resource = led_resource
        self.seed = seed
        self.overhead = harness_overhead(accel)
        #: The 32-bit signature register (its XOR-fold drives the LEDs).
        self.signature = Signal(SIGNATURE_BITS)

    def elaborate(self, platform):
        m = Module()
        m.submodules.accel = accel = self.accel
        groups = list(_ports(accel))

        n = self.overhead["source_bits"]
        # an aperiodic start: a periodic ring state would stay periodic under rule 30 and feed
        # identical bits to different lanes
        src = Signal(n, init=random.Random(self.seed).getrandbits(n) | 1)
        # rule 30 on a ring: s[i]' = s[i-1] ^ (s[i] | s[i+1])
        left = Cat(src[-1], src[:-1])
        right = Cat(src[1:], src[0])
        m.d.sync += src.eq(left ^ (src | right))

        pos = 0
        for _, kind, sigs in groups:
            if kind != "drive":
                continue
            for sig in sigs:
                m.d.comb += sig.eq(src[pos:pos + len(sig)])
                pos += len(sig)

        sig_reg = self.signature
        folded = []
        for _, kind, sigs in groups:
            if kind == "observe":
                folded += sigs
            elif kind == "beat":
                payload, valid, ready = sigs
                folded += [payload & (valid & ready).replicate(len(payload)), valid]
        mix = Signal(SIGNATURE_BITS)
        m.d.comb += mix.eq(_xor_fold(Cat(*folded), SIGNATURE_BITS) if folded else 0)
        m.d.sync += sig_reg.eq(Cat(sig_reg[-1], sig_reg[:-1]) ^ mix)

        if platform is not None:
            port = platform.request(self.led_resource, 0, dir="-")
            m.submodules.leds = leds = io.Buffer("o", port)
            m.d.comb += leds.o.eq(_xor_fold(sig_reg, len(port)))
        return m


def _xor_fold(value, width: int):
    """XOR ``width``-bit slices of ``value`` together (zero-padded at the top)."""
    chunks = [value[i:i + width] for i in range(0, len(value), width)]
    out = chunks[0]
    for c in chunks[1:]:
        out = out ^ c
    return out
