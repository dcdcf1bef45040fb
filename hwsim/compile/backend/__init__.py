"""Back end: a lowered graph becomes a streaming dataflow design of registry kernels.

:func:`plan` walks a lowered graph (:mod:`hwsim.compile.lower`) and gives a :class:`Design`:
one :class:`Node` per dialect compute node (an ``IntMatMul`` with the ``Requant`` it feeds
is one ``int8-mvu`` node), each with its kernel's params, baked-in constants and stream ports.
:meth:`Design.component` builds the :class:`rtl.dataflow.top.DataflowTop` that chains them.

The host side of the boundary stays on the host: the graph input's ``QuantizeLinear`` (float →
codes) and the output's ``DequantizeLinear`` (codes → float). The design streams the input
code tensor in row-major order and returns the output code tensor in row-major order; a node
works on vectors along the last axis (a matrix product maps each row of ``(…, in)`` to a row
of ``(…, out)``). A graph with convolutions streams its 4-D tensors in NHWC order instead
(vectors = pixels, a pixel's channels contiguous): the host permutes the NCHW input codes by
:attr:`Design.in_perm` before streaming them and the streamed output back by the inverse of
:attr:`Design.out_perm` (:meth:`Design.to_stream`, :meth:`Design.from_stream`).

Node handlers live in :mod:`hwsim.compile.backend.kernels` (and
:mod:`hwsim.compile.backend.conv`), registered in :data:`HANDLERS` (op type → function) by
:func:`handler`. Adding an op to the back end = one decorated function that returns the
:class:`Node` (or the chain of nodes, a list) of the kernels that implement it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from hwsim.compile import dialect
from hwsim.errors import HwsimError
from hwsim.kernels import KERNELS

__all__ = ["FIFO_DELAY", "HANDLERS", "NHWC", "Design", "Node", "TopParams", "plan", "schedule",
           "stream_dims"]


@dataclass
class Node:
    """One kernel instance of a compiled design."""

    name: str                 # the dialect node's name (the compute node of its group)
    op_type: str
    kernel: str               # registry kernel name
    params: object            # the kernel's params dataclass
    inputs: list[tuple[str, str, int, bool]]   # (port, tensor, lanes, signed)
    output: tuple[str, str, int, bool]         # (port, tensor, lanes, signed)
    vectors: int              # vectors per inference
    init: dict = field(default_factory=dict)       # contents baked into memories
    constants: dict = field(default_factory=dict)  # side ports tied to constants
    fifo_depth: dict = field(default_factory=dict)
    onnx_nodes: list[str] = field(default_factory=list)
    #: cycles from the last input beat a node takes to its last output beat (one vector)
    tail: int = 0
    #: cycles between the starts of back-to-back vectors (the node's initiation interval)
    interval: int = 0
    #: codes per output vector
    out_len: int = 1
    #: calls of the kernel's ``actions`` hook per vector (a LUT's hook counts one beat)
    calls_per_vector: int = 1
    #: builds the node's component where it is not the kernel's own (e.g. several instances)
    builder: Callable | None = None
    #: tokens of a node that reads whole sequences (all vectors before its first output;
    #: its ``tail`` counts from the last beat of the last vector), 0 for a vector node
    sequence: int = 0
    #: where output vectors are not input vectors one to one (a window unit): for each output
    #: vector of one image, the index of the last input vector it needs, and the input vectors
    #: per image; ``None``: vector ``j`` out needs vector ``j`` in
    depends: list[int] | None = None
    in_per_unit: int = 0
    #: calls of the ``actions`` hook per inference where not ``vectors · calls_per_vector``
    unit_calls: int | None = None
    #: as the graph's output producer, its beats (all its lanes) leave the top as they are
    wide_output: bool = False
    #: a node that restarts per unit (window attention): the first output vector of a unit
    #: ends at least this many cycles after the last one of the unit before
    unit_gap: int = 0
    #: bytes per output code where a ``wide_output`` producer writes wide codes (int32: 4)
    out_bytes: int = 1
    #: cycles added to an input port's last beat before the node's ``tail`` counts (a port
    #: whose vector is followed by other ports' beats: ``a`` of a concatenation)
    skew: dict = field(default_factory=dict)
    #: per output vector of a unit where ``tail`` / ``interval`` vary (causal attention:
    #: query ``t`` sees ``t + 1`` keys); ``None``: the constant ``tail`` / ``interval``
    tails: list[int] | None = None
    intervals: list[int] | None = None
    #: golden action counts per inference where not the kernel's ``actions`` × ``calls``
    actions: dict | None = None

    @property
    def calls(self) -> int:
        """Calls of the kernel's ``actions`` hook per inference (the estimate's count)."""
        if self.unit_calls is not None:
            return self.unit_calls
        return self.vectors * self.calls_per_vector

    def build(self):
        if self.builder is not None:
            return self.builder()
        return KERNELS[self.kernel].component(self.params, **self.init)

    @property
    def cycles(self) -> int:
        """The kernel's own cycle formula for one vector (first input to last output beat)."""
        return int(KERNELS[self.kernel].cycles(self.params))

    def summary(self) -> dict:
        import dataclasses
        return {"name": self.name, "op_type": self.op_type, "kernel": self.kernel,
                "params": {f.name: _plain(getattr(self.params, f.name))
                           for f in dataclasses.fields(self.params)},
                "vectors": self.vectors, "cycles_per_vector": self.cycles,
                "interval": self.interval}


def _plain(value):
    """A parameter value as JSON: a :class:`~quant.qtype.QType` as its dict."""
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return value if isinstance(value, int | float | str | bool | tuple | list) else str(value)


@dataclass(frozen=True)
class TopParams:
    """What the testbench of a compiled design needs to know about its ports."""

    in_lanes: int
    in_signed: bool
    out_signed: bool
    out_lanes: int = 1


@dataclass
class Design:
    """The nodes (topological order) and the boundary of a compiled graph."""

    nodes: list[Node]
    input: str                # input code tensor
    output: str               # output code tensor
    in_lanes: int
    in_signed: bool
    out_signed: bool
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    #: the axis order the host streams the input / output code tensor in (``None``: as it
    #: is, row-major); ``(0, 2, 3, 1)``: an NCHW tensor streamed as NHWC
    in_perm: tuple[int, ...] | None = None
    out_perm: tuple[int, ...] | None = None
    #: output codes per ``y`` beat (1, or all lanes of a ``wide_output`` producer)
    out_lanes: int = 1
    #: bytes per output code (4: int32 codes leave as their little-endian bytes)
    out_bytes: int = 1

    @property
    def in_vector(self) -> int:
        """Codes per streamed input vector (the last axis of the streamed order)."""
        return _stream_dims(self.in_shape, self.in_perm)[1]

    @property
    def out_vector(self) -> int:
        return _stream_dims(self.out_shape, self.out_perm)[1]

    def to_stream(self, codes: np.ndarray, which: str = "in") -> np.ndarray:
        """Graph-order codes of the input (``which="in"``) or output tensor in the order the
        design streams them (a copy, contiguous)."""
        perm = self.in_perm if which == "in" else self.out_perm
        codes = np.asarray(codes)
        codes = np.ascontiguousarray(codes if perm is None else codes.transpose(perm))
        if which == "out" and self.out_bytes > 1:  # wide codes: their bytes, lowest first
            codes = codes.astype(f"<i{self.out_bytes}").view(np.uint8)
        return codes

    def from_stream(self, codes) -> np.ndarray:
        """The output tensor in graph order from the codes the design streamed out."""
        codes = np.asarray(codes)
        if self.out_bytes > 1:
            codes = np.asarray(codes, np.uint8).view(f"<i{self.out_bytes}")
        if self.out_perm is None:
            return codes.reshape(self.out_shape)
        shape = tuple(self.out_shape[i] for i in self.out_perm)
        return codes.reshape(shape).transpose(np.argsort(self.out_perm))

    @property
    def in_count(self) -> int:
        return math.prod(self.in_shape)

    @property
    def out_count(self) -> int:
        return math.prod(self.out_shape)

    @property
    def top_params(self) -> TopParams:
        return TopParams(self.in_lanes, self.in_signed, self.out_signed, self.out_lanes)

    def component(self):
        from rtl.dataflow.top import DataflowTop, Instance, Port
        insts = [Instance(n.name, n.build, [Port(*p) for p in n.inputs], Port(*n.output),
                          dict(n.constants), dict(n.fifo_depth)) for n in self.nodes]
        return DataflowTop(insts, self.input, self.in_lanes, self.in_signed, self.output,
                           out_lanes=self.out_lanes)


# ------------------------------------------------------------------------------------------
#: cycles a beat spends in a glue FIFO (written in cycle t, taken in t + 2 at the earliest)
FIFO_DELAY = 2


def _edge_delay(prod_lanes: int, read_lanes: int, fanout: int) -> int:
    """Cycles from a producer's last beat of a vector to the reader taking its last beat:
    a fork (+1), a serializer (+ producer lanes: its last code leaves ``lanes`` cycles
    after the beat) or a packer (+1), then the FIFO."""
    d = FIFO_DELAY + (1 if fanout > 1 else 0)
    if prod_lanes != read_lanes:
        if prod_lanes > 1:
            d += prod_lanes
        if read_lanes > 1:
            d += 1
    return d


def schedule(design: Design, vectors: int | None = None) -> dict:
    """The design's cycle formula, composed from its nodes' and the glue's.

    With the input presented one beat per cycle from cycle 0 and the output always taken,
    the cycle of every vector's last beat on every tensor, in graph order (a max-plus
    recurrence):

    * the host's input vector ``j`` ends in cycle ``(j + 1) · beats − 1``;
    * an edge adds its glue delay (:func:`_edge_delay`); a lane converter passes one code per
      cycle, so a vector leaves it at least ``length`` cycles after the previous one;
    * a node's output vector ``j`` ends ``tail`` cycles after the last beat it needs arrived
      (vector ``j`` of each input, or ``depends[j]`` for a window unit) and at least
      ``interval`` cycles after its vector ``j − 1`` (``tails[j]``, ``intervals[j]`` where
      they vary per vector of a unit: causal attention);
    * the output takes one code per cycle.

    ``cycles`` is the last output code's cycle + 1, ``latency`` the first output vector's,
    ``interval`` the slowest stage (cycles per vector). For nodes that all see the same
    vectors this is ``latency + (vectors − 1) · interval`` wherever the slowest stage lies on
    the longest path. Exact where each FIFO holds a whole vector of its reader (the back end
    sizes them so), the slowest stage never waits for its input, and a window unit's line
    buffer never holds back a row a later window needs (its input keeps ahead); the tests
    compare it with the simulated RTL (``==``). ``vectors``: input vectors (default: one
    inference, the input tensor's).
    """
    readers: dict[str, list] = {}
    for n in design.nodes:
        for p in n.inputs:
            readers.setdefault(p[1], []).append((n, p))
    readers.setdefault(design.output, []).append((None, ("y", design.output, design.out_lanes,
                                                          None)))
    lanes = {design.input: design.in_lanes, **{n.output[1]: n.output[2] for n in design.nodes}}
    in_vec = design.in_vector
    beats = -(-in_vec // design.in_lanes)
    n_in = vectors if vectors is not None else \
        _stream_dims(design.in_shape, design.in_perm)[0]
    times = {design.input: [(j + 1) * beats - 1 for j in range(n_in)]}
    out_beats = -(-design.out_vector * design.out_bytes // design.out_lanes)
    interval = max(beats, out_beats)
    for n in design.nodes:
        arrive = None
        for p in n.inputs:
            d = _edge_delay(lanes[p[1]], p[2], len(readers[p[1]]))
            t = [x + d for x in times[p[1]]]
            if lanes[p[1]] != p[2]:
                length = _tensor_len(design, p[1])
                interval = max(interval, length)
                for k in range(1, len(t)):
                    t[k] = max(t[k], t[k - 1] + length)
            t = [x + n.skew.get(p[0], 0) for x in t]
            arrive = t if arrive is None else [max(a, b) for a, b in zip(arrive, t, strict=True)]
        if n.depends is None:
            needs = list(range(len(arrive)))
        else:
            units = len(arrive) // n.in_per_unit
            needs = [u * n.in_per_unit + q for u in range(units) for q in n.depends]
        out: list[int] = []
        for i, q in enumerate(needs):
            u = i % len(n.depends) if n.depends else i
            t = arrive[q] + (n.tails[u] if n.tails else n.tail)
            gap = n.unit_gap if n.depends and i % len(n.depends) == 0 else \
                (n.intervals[u] if n.intervals else n.interval)
            out.append(max(t, out[-1] + gap) if out else t)
        times[n.output[1]] = out
        interval = max(interval, n.interval)
    d = _edge_delay(lanes[design.output], design.out_lanes, len(readers[design.output]))
    last: list[int] = []
    for t in times[design.output]:
        last.append(max(t + d, last[-1] + out_beats) if last else t + d)
    return {"latency": last[0] + 1, "interval": interval, "cycles": last[-1] + 1,
            "vectors": n_in}


def _tensor_len(design: Design, tensor: str) -> int:
    if tensor == design.input:
        return design.in_vector
    return next(n.out_len for n in design.nodes if n.output[1] == tensor)


# ------------------------------------------------------------------------------------------
def _consumers(model: ModelWrapper, tensor: str) -> list:
    return [n for n in model.graph.node if tensor in n.input]


def _lanes(cols: int, max_lanes: int) -> int:
    """The most multipliers ≤ ``max_lanes`` that divide ``cols``."""
    return max(d for d in range(1, min(cols, max_lanes) + 1) if cols % d == 0)


def _double_buffer(model: ModelWrapper, tensor: str, lanes: int) -> int:
    """FIFO beats that hold one whole input vector (plus two): a node consuming whole
    vectors (an MVU loads all of ``x`` before it computes) then never stalls its producer
    while it computes the previous vector."""
    return model.get_tensor_shape(tensor)[-1] // lanes + 2


def _vectors(shape) -> int:
    return int(math.prod(shape[:-1])) if len(shape) > 1 else 1


#: the stream order of an NCHW tensor in a design with convolutions: NHWC
NHWC = (0, 2, 3, 1)
#: the stream order of an NCL tensor in a design with 1-D convolutions: NLC
NLC = (0, 2, 1)


def _stream_dims(shape, perm=None) -> tuple[int, int]:
    """``(vectors, codes per vector)`` of a tensor streamed in ``perm`` order."""
    shape = tuple(shape)
    if perm is not None:
        shape = tuple(shape[i] for i in perm)
    if not shape:
        return 1, 1
    return _vectors(shape), int(shape[-1])


def stream_dims(model: ModelWrapper, tensor: str) -> tuple[int, int]:
    """``(vectors, codes per vector)`` of a code tensor as the design streams it: a 4-D tensor
    of a graph with convolutions as NHWC pixels, any other along its last axis."""
    shape = model.get_tensor_shape(tensor)
    return _stream_dims(shape, _perm(model, shape))


def _perm(model: ModelWrapper, shape) -> tuple[int, ...] | None:
    convs = [n for n in model.graph.node
             if n.op_type in ("IntConv", "IntMaxPool") and n.domain == dialect.DOMAIN]
    if convs and len(shape) == 3 and any(len(model.get_tensor_shape(n.input[0])) == 3
                                         for n in convs):
        return NLC  # a graph with 1-D convolutions streams its NCL tensors as NLC
    return NHWC if convs and len(shape) == 4 else None


#: dialect op type → handler ``(model, node, options) -> (Node or list of Nodes (a chain, in
#: order), names of the ONNX nodes it takes)``
HANDLERS: dict[str, Callable] = {}


def handler(op_type: str):
    """Register the decorated function as the back end of dialect op ``op_type``."""
    def register(fn):
        if op_type in HANDLERS:
            raise HwsimError(f"dialect op {op_type} has two back-end handlers")
        HANDLERS[op_type] = fn
        return fn
    return register


def plan(model: ModelWrapper, max_lanes: int = 8) -> Design:
    """The dataflow design of a lowered graph with one input and one output.

    ``max_lanes`` bounds the multipliers (lanes) of each matrix–vector node (the most that
    divide its input length). Raises :class:`HwsimError` naming the first node the back end
    cannot build."""
    model = lif.without_state(model)  # LIF membranes stay in the arrays (state pairs)
    if len(model.graph.input) != 1 or len(model.graph.output) != 1:
        raise HwsimError(f"the dataflow back end builds graphs with one input and one output, "
                         f"not {len(model.graph.input)} and {len(model.graph.output)}")
    if max_lanes < 1:
        raise HwsimError(f"max_lanes must be ≥ 1, not {max_lanes}")
    opts = {"max_lanes": max_lanes}
    gin, gout = model.graph.input[0].name, model.graph.output[0].name
    from hwsim.compile.lower.int_onnx import host_tail
    tail = host_tail(model)  # data movement after the last compute node: the host runs it
    taken: set[str] = {n.name for n in tail}
    nodes: list[Node] = []
    in_codes = out_codes = None
    for node in model.graph.node:
        if node.name in taken:
            continue
        if node.op_type == "QuantizeLinear" and node.input[0] == gin:
            in_codes = node.output[0]
            users = _consumers(model, in_codes)
            if len(users) == 1 and users[0].op_type == "Clip":  # narrow input range
                in_codes = users[0].output[0]
                taken.add(users[0].name)
            continue
        if node.op_type == "DequantizeLinear" and node.output[0] == gout:
            out_codes = node.input[0]
            continue
        handler = HANDLERS.get(node.op_type) if node.domain == dialect.DOMAIN else None
        if handler is None:
            raise HwsimError(f"the dataflow back end has no kernel for {node.op_type} node "
                             f"{node.name!r}")
        built, names = handler(model, node, opts)
        taken.update(names)
        nodes.extend(built if isinstance(built, list) else [built])
    if tail and out_codes is not None:
        out_codes = tail[0].input[0]
    if in_codes is None or out_codes is None:
        raise HwsimError("the lowered graph needs a QuantizeLinear on its input and a "
                         "DequantizeLinear on its output")
    if not nodes:
        raise HwsimError("the lowered graph has no compute node to build")
    seq = max((n.sequence for n in nodes), default=0)
    if seq:  # a skip path waits beside a sequence node: its FIFOs hold the whole sequence
        for n in nodes:
            if n.kernel in ("eltwise", "concat"):
                n.fifo_depth = {k: max(v, seq * n.out_len + 4) for k, v in n.fifo_depth.items()}
    if any(n.kernel == "rmsnorm" for n in nodes):  # a skip path beside a norm that holds
        for n in nodes:                             # back its input: the whole inference
            if n.kernel in ("eltwise", "concat"):
                n.fifo_depth = {k: max(v, n.vectors * n.out_len + 4)
                                for k, v in n.fifo_depth.items()}
    first = next(p for n in nodes for p in n.inputs if p[1] == in_codes)
    in_signed = model.get_initializer(
        next(n for n in model.graph.node if n.op_type == "QuantizeLinear"
             and n.input[0] == gin).input[2]).dtype == np.int8
    prod = {n.output[1]: n for n in nodes}
    if out_codes not in prod:
        raise HwsimError(f"the output codes {out_codes!r} are not written by a compute node")
    in_shape = tuple(model.get_tensor_shape(in_codes))
    out_shape = tuple(model.get_tensor_shape(out_codes))
    return Design(nodes=nodes, input=in_codes, output=out_codes, in_lanes=first[2],
                  in_signed=in_signed, out_signed=prod[out_codes].output[3],
                  in_shape=in_shape, out_shape=out_shape, in_perm=_perm(model, in_shape),
                  out_perm=_perm(model, out_shape),
                  out_lanes=prod[out_codes].output[2] if prod[out_codes].wide_output else 1,
                  out_bytes=prod[out_codes].out_bytes)


# the handlers register themselves on import
from . import attention, concat, conv, flatten, kernels, layernorm, lif, rmsnorm, swiftchannel, windows  # noqa: E402, F401

from . import maxpool  # noqa: E402, F401  # isort: skip
from . import rope  # noqa: E402, F401  # isort: skip
from . import threshold  # noqa: E402, F401  # isort: skip
