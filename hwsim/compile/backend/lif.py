"""Back end of ``IntLifArray``: a :class:`rtl.dataflow.lif.LifNode` (the ``lif-array`` kernel
with its weights baked in, fed events by an event-count → address-event converter).

A graph with LIF layers is a time step with membrane state pairs (graph input ``v``, output
``v'``; :mod:`hwsim.compile.lower.lif`). The design keeps every membrane in its array's
registers, so the state pairs are not ports of the top: :func:`without_state` drops them (and
their boundary nodes) before :func:`hwsim.compile.backend.plan` builds the one-input,
one-output design, and the host streams the frames of ``T`` time steps back to back; the top
gives each step's output spikes.

Timing depends on the data (a code ``c`` costs ``c`` events of ``neurons/lanes`` cycles), so
the design's cycle count is :func:`schedule_lif`, a cycle-level recurrence over the codes each
node reads, instead of :func:`hwsim.compile.backend.schedule`.
"""

from __future__ import annotations

import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.errors import HwsimError
from hwsim.golden.snn import lif_array as spec

from . import Design, Node, _lanes, handler

__all__ = ["is_stateful", "lif_lanes", "schedule_lif", "without_state"]


def _lif_nodes(model: ModelWrapper) -> list:
    return [n for n in model.graph.node if n.op_type == "IntLifArray"]


def is_stateful(model: ModelWrapper) -> bool:
    """Whether the lowered graph has LIF layers (membrane state pairs)."""
    return bool(_lif_nodes(model))


def without_state(model: ModelWrapper) -> ModelWrapper:
    """A copy of ``model`` without its state inputs and outputs and their boundary
    ``QuantizeLinear`` / ``DequantizeLinear`` nodes (the membranes live in the RTL)."""
    lifs = [getCustomOp(n) for n in _lif_nodes(model)]
    if not lifs:
        return model
    model = ModelWrapper(onnx.ModelProto.FromString(model.model.SerializeToString()))
    s_in = {op.get_nodeattr("state_in") for op in lifs}
    s_out = {op.get_nodeattr("state_out") for op in lifs}
    g = model.graph
    for n in list(g.node):
        if (n.op_type == "QuantizeLinear" and n.input[0] in s_in) or \
                (n.op_type == "DequantizeLinear" and n.output[0] in s_out):
            g.node.remove(n)
    for io, names in ((g.input, s_in), (g.output, s_out)):
        for v in [v for v in io if v.name in names]:
            io.remove(v)
    return model


def lif_lanes(model: ModelWrapper, node, max_lanes: int) -> int:
    """Neurons per beat: the most ≤ ``max_lanes`` that divide the neurons, or 1 for a layer
    whose spikes leave the design (the top's output takes one code per beat: a serializer
    there would stall the array)."""
    neurons = int(model.get_initializer(node.input[2]).shape[0])
    outs = {o.name for o in model.graph.output}
    users = model.find_consumers(node.output[0]) or []
    if any(u.op_type == "DequantizeLinear" and u.output[0] in outs for u in users):
        return 1
    return _lanes(neurons, max_lanes)


@handler("IntLifArray")
def _lif(model: ModelWrapper, node, opts: dict) -> tuple[Node, list[str]]:
    w = model.get_initializer(node.input[2])
    lanes = lif_lanes(model, node, opts["max_lanes"])
    prod = model.find_producer(node.input[0])
    in_lanes = lif_lanes(model, prod, opts["max_lanes"]) \
        if prod is not None and prod.op_type == "IntLifArray" else 1
    p = getCustomOp(node).params(w.shape, lanes)
    if p.inputs % in_lanes:
        raise HwsimError(f"node {node.name!r}: {in_lanes} lanes do not divide {p.inputs} inputs")

    def build(p=p, w=w, in_lanes=in_lanes):
        from rtl.dataflow.lif import LifNode
        return LifNode(p, w, in_lanes)

    out = Node(name=node.name, op_type=node.op_type, kernel="lif-array", params=p,
               inputs=[("x", node.input[0], in_lanes, False)],
               output=("y", node.output[0], lanes, False), vectors=1,
               init={"weights": w}, fifo_depth={"x": p.inputs // in_lanes + 2},
               onnx_nodes=[node.name], out_len=p.neurons, builder=build)
    return out, [node.name]


# ------------------------------------------------------------------------------------------
def _fifo_depth(depth: int) -> int:
    return max(depth, 3)  # rtl.dataflow.glue.Fifo


def _fifo(writes: list[int], reads_fn, depth: int, forced: bool, what: str):
    """Beats through a first-word fall-through FIFO: beat ``i`` written at ``writes[i]`` (or,
    where the writer waits for room, as soon as beat ``i − D + 1`` has left the inner FIFO) is
    valid at the output from ``max(w + 2, r_{i−1} + 1)``; ``reads_fn(i, valid)`` gives the
    cycle the reader takes it. ``forced``: the writer cannot wait (an array stalled by
    back-pressure is outside the model: raise). Returns (write, valid, read) cycles."""
    d = _fifo_depth(depth) - 1
    w, v, r = [], [], []
    for i, want in enumerate(writes):
        t = want if not w else max(want, w[-1] + 1)
        if i >= d and t < v[i - d]:
            if forced:
                raise HwsimError(f"the cycle model of the LIF design does not hold: {what}'s "
                                 f"FIFO fills (beat {i}); deepen it or send sparser input")
            t = v[i - d]
        w.append(t)
        v.append(max(t + 2, r[-1] + 1) if r else t + 2)
        r.append(reads_fn(i, v[-1]))
    return w, v, r


class _Lif:
    """The converter and array of one node: codes in, chunk-out cycles (module doc of
    :mod:`rtl.dataflow.lif`)."""

    def __init__(self, p: spec.LifParams, in_lanes: int, codes):
        self.p, self.L, self.codes = p, in_lanes, [int(c) for c in codes]
        self.tx = self.tk = 0
        self.out: list[int] = []
        self.k = 0  # codes looked at

    def read(self, beat: int, valid: int) -> int:
        C, n = self.p.chunks, self.p.inputs
        done = valid
        for _ in range(self.L):
            c = self.codes[self.k]
            start = max(valid, self.tx)
            if c == 0:
                done = start
            else:
                done = max(start, self.tk) + (c - 1) * C
                self.tk = done + C
            self.tx = done + 1
            self.k += 1
            if self.k % n == 0:  # the step's end beat, then the update's chunks
                e = max(self.tx, self.tk)
                self.tk, self.tx = e + C, e + 1
                self.out += [e + spec.PIPELINE_DEPTH + j for j in range(C)]
        return done


def schedule_lif(design: Design, codes: dict) -> dict:
    """Cycles of the design from the first input beat to the last output code, with the host
    writing one beat per cycle as the input FIFO takes it and always taking the output.
    ``codes``: each node's input tensor name → its codes over the ``T`` steps (stream order).
    Exact where no array meets back-pressure (checked: raises otherwise)."""
    times: dict[str, list[int]] = {}
    for n in design.nodes:
        if n.kernel != "lif-array":
            raise HwsimError(f"node {n.name!r}: a design with LIF layers is built of LIF "
                             "layers only")
        port = n.inputs[0]
        lif = _Lif(n.params, port[2], codes[port[1]])
        src = port[1]
        beats = len(lif.codes) // port[2]
        writes = list(range(beats)) if src == design.input else times[src]
        _fifo(writes, lif.read, n.fifo_depth["x"], src != design.input, n.name)
        times[n.output[1]] = lif.out
    _, valid, _ = _fifo(times[design.output], lambda i, v: v, 3, True, "the output")
    # the last array's chunks are one code each (lif_lanes); the host takes one per cycle
    return {"cycles": valid[-1] + 1, "latency": None, "interval": None,
            "vectors": len(valid) // design.out_vector}
