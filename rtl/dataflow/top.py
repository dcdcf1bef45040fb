"""The streaming dataflow top of a compiled graph: one kernel instance per node, chained by
ready/valid streams (FINN style).

A design is a list of :class:`Instance` s in topological order. Each reads one or more code
tensors and writes one; a tensor is the graph input, or the output of exactly one instance.
For every (tensor, reader) edge the top inserts, in this order: a :class:`~rtl.dataflow.glue.Fork`
copy where the tensor has several readers, the lane converters
(:class:`~rtl.dataflow.glue.Serializer` / :class:`~rtl.dataflow.glue.Packer`) that turn the
producer's lanes per beat into the reader's, and a :class:`~rtl.dataflow.glue.Fifo` of the
reader's beats (so a reader finds whole beats waiting at its own rate).

Members of :class:`DataflowTop`: ``x`` (``In`` stream, ``in_lanes`` codes per beat: the input
tensor's codes in row-major order) and ``y`` (``Out`` stream, one code per beat: the output
tensor's codes in row-major order). Constants an instance needs on its side ports (an MVU's
``mult``/``shift``) are tied off inside the top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hwsim.errors import HwsimError
from rtl.dataflow.glue import Fifo, Fork, Packer, Serializer, _sig

__all__ = ["FIFO_DEPTH", "DataflowTop", "Instance", "Port"]

#: default beats of an edge FIFO: 3, the least that passes a beat every cycle (a buffered FIFO
#: of 2 holds one beat in its inner FIFO, which cannot take a beat while it gives one: a
#: stream of one beat per cycle would pass at half rate, e.g. a 1×1 convolution's MVU that
#: writes a code every cycle into a LUT)
FIFO_DEPTH = 3


@dataclass(frozen=True)
class Port:
    """A stream port of an instance: the tensor it carries, lanes per beat, signedness."""

    port: str
    tensor: str
    lanes: int
    signed: bool


@dataclass
class Instance:
    """One node's hardware: ``build()`` returns the kernel component."""

    name: str
    build: Callable[[], wiring.Component]
    inputs: list[Port]
    output: Port
    constants: dict[str, int] = field(default_factory=dict)
    #: beats each input FIFO holds (default :data:`FIFO_DEPTH`; a skip path needs a whole
    #: vector)
    fifo_depth: dict[str, int] = field(default_factory=dict)


class DataflowTop(wiring.Component):
    """The chained kernels of a compiled graph (see the module docstring)."""

    def __init__(self, instances: list[Instance], input_tensor: str, in_lanes: int,
                 in_signed: bool, output_tensor: str, out_lanes: int = 1):
        self.instances = list(instances)
        producers = {input_tensor: Port("x", input_tensor, in_lanes, in_signed)}
        for inst in self.instances:
            for p in inst.inputs:
                if p.tensor not in producers:
                    raise HwsimError(f"node {inst.name!r} reads {p.tensor!r}, which no earlier "
                                     "node writes")
                if producers[p.tensor].signed != p.signed:
                    raise HwsimError(f"node {inst.name!r} reads {p.tensor!r} as "
                                     f"{'signed' if p.signed else 'unsigned'} codes; its "
                                     "producer writes the other kind")
            if inst.output.tensor in producers:
                raise HwsimError(f"tensor {inst.output.tensor!r} is written twice")
            producers[inst.output.tensor] = inst.output
        if output_tensor not in producers:
            raise HwsimError(f"no node writes the output tensor {output_tensor!r}")
        self.producers = producers
        self.input_tensor, self.output_tensor = input_tensor, output_tensor
        out = producers[output_tensor]
        self.out_lanes = out_lanes  # output codes per y beat
        super().__init__({"x": In(_sig(in_signed, in_lanes)),
                          "y": Out(_sig(out.signed, out_lanes))})

    def elaborate(self, platform):
        m = Module()
        readers: dict[str, list[tuple[str, Port, int]]] = {t: [] for t in self.producers}
        for inst in self.instances:
            for p in inst.inputs:
                readers[p.tensor].append((inst.name, p,
                                          inst.fifo_depth.get(p.port, FIFO_DEPTH)))
        readers[self.output_tensor].append(("", Port("y", self.output_tensor, self.out_lanes,
                                                      self.producers[self.output_tensor].signed),
                                            FIFO_DEPTH))

        comps = {}
        for i, inst in enumerate(self.instances):
            comp = inst.build()
            m.submodules[f"n{i}_{_ident(inst.name)}"] = comp
            comps[inst.name] = comp
            for port, value in inst.constants.items():
                m.d.comb += getattr(comp, port).eq(value)
            for name, member in comp.signature.members.items():
                # streams nobody drives (an MVU's weight/bias load ports) stay idle
                if member.is_signature and member.flow == In and \
                        name not in {p.port for p in inst.inputs}:
                    m.d.comb += getattr(comp, name).valid.eq(0)

        def source_of(tensor: str):
            prod = self.producers[tensor]
            if tensor == self.input_tensor:
                return self.x
            inst = next(n for n in self.instances if n.output.tensor == tensor)
            return getattr(comps[inst.name], prod.port)

        idents: dict[str, str] = {}   # tensor → identifier, unique after truncation

        def ident(tensor: str) -> str:
            if tensor not in idents:
                base = _ident(tensor)
                name, n = base, 1
                while name in idents.values():
                    name, n = f"{base}_u{n}", n + 1
                idents[tensor] = name
            return idents[tensor]

        for tensor, rs in readers.items():
            if not rs:
                continue
            prod = self.producers[tensor]
            src = source_of(tensor)
            if len(rs) > 1:
                fork = Fork(prod.signed, prod.lanes, len(rs))
                m.submodules[f"fork_{ident(tensor)}"] = fork
                _connect(m, src, fork.i)
                srcs = [getattr(fork, f"o{k}") for k in range(len(rs))]
            else:
                srcs = [src]
            for k, ((reader, port, depth), s) in enumerate(zip(rs, srcs, strict=True)):
                tag = f"{ident(tensor)}_{k}"
                if prod.lanes != port.lanes:
                    if prod.lanes > 1:
                        ser = Serializer(prod.signed, prod.lanes)
                        m.submodules[f"ser_{tag}"] = ser
                        _connect(m, s, ser.i)
                        s = ser.o
                    if port.lanes > 1:
                        pack = Packer(prod.signed, port.lanes)
                        m.submodules[f"pack_{tag}"] = pack
                        _connect(m, s, pack.i)
                        s = pack.o
                fifo = Fifo(prod.signed, port.lanes, depth)
                m.submodules[f"fifo_{tag}"] = fifo
                _connect(m, s, fifo.i)
                s = fifo.o
                dst = self.y if reader == "" else getattr(comps[reader], port.port)
                _connect(m, s, dst)
        return m


def _ident(name: str) -> str:
    out = "".join(c if c.isalnum() else "_" for c in name).strip("_")
    return out[:40] or "t"


def _connect(m: Module, src, dst) -> None:
    """``src`` (an output stream) drives ``dst`` (an input stream) of the same bit width;
    payload bits are copied whatever their layout (a plain ``signed(8)`` and a one-lane
    array are the same bits)."""
    m.d.comb += [
        _bits(dst.payload).eq(_bits(src.payload)),
        dst.valid.eq(src.valid),
        src.ready.eq(dst.ready),
    ]


def _bits(payload):
    return payload.as_value() if hasattr(payload, "as_value") else payload
