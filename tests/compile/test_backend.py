"""The dataflow back end in Amaranth's simulator: the stream glue keeps every code in order
under random idle input and back-pressure, and a compiled MLP's top gives the golden graph's
codes (``==``) in exactly the composed number of cycles."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from hwsim.compile import backend, frontend
from hwsim.compile.driver import _execute
from hwsim.compile.lower import lower
from hwsim.errors import HwsimError
from rtl.dataflow.glue import Fifo, Fork, Packer, Serializer
from tests.compile.test_lower import _export


def _pump(dut, words: list[int], outs: list[str], n_out: int, seed: int, idle=0.3, stall=0.3,
          limit=5000):
    """Drive ``i`` with ``words`` (random idle), take every output stream (random stalls);
    returns the words seen per output."""
    rng = np.random.default_rng(seed)
    got = {o: [] for o in outs}

    async def tb(ctx):
        sent, cyc = 0, 0
        while any(len(v) < n_out for v in got.values()) and cyc < limit:
            show = sent < len(words) and rng.random() >= idle
            ctx.set(dut.i.valid, int(show))
            if show:
                ctx.set(dut.i.payload.as_value(), words[sent])
            ready = {o: rng.random() >= stall for o in outs}
            for o in outs:
                ctx.set(getattr(dut, o).ready, int(ready[o]))
            if show and ctx.get(dut.i.ready):
                sent += 1
            for o in outs:
                port = getattr(dut, o)
                if ready[o] and ctx.get(port.valid):
                    got[o].append(ctx.get(port.payload.as_value()))
            await ctx.tick()
            cyc += 1

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return got


def test_fifo_keeps_order_under_backpressure():
    words = list(range(1, 41))
    assert _pump(Fifo(True, 2, 3), words, ["o"], 40, 1)["o"] == words


def test_serializer_sends_lane_zero_first():
    beats = [0x04030201, 0x08070605, 0x0C0B0A09]
    got = _pump(Serializer(False, 4), beats, ["o"], 12, 2)["o"]
    assert got == list(range(1, 13))


def test_packer_fills_lane_zero_first():
    got = _pump(Packer(False, 3), list(range(1, 10)), ["o"], 3, 3)["o"]
    assert got == [0x030201, 0x060504, 0x090807]


def test_fork_copies_every_beat_to_every_output():
    words = list(range(5, 30))
    got = _pump(Fork(True, 1, 3), words, ["o0", "o1", "o2"], len(words), 4)
    assert got["o0"] == got["o1"] == got["o2"] == words


@pytest.fixture(scope="module")
def mlp_lowered(tmp_path_factory):
    graph = frontend.load(_export(tmp_path_factory.mktemp("mlp") / "mlp.onnx"))
    lowered, _ = lower(graph)
    return lowered


def _run_top(design, X) -> tuple[list[int], int]:
    top = design.component()
    beats = [X[k:k + design.in_lanes] for k in range(0, X.size, design.in_lanes)]
    got, times = [], []

    async def tb(ctx):
        ctx.set(top.y.ready, 1)
        sent, cyc, first = 0, 0, None
        while len(got) < design.out_count and cyc < 50_000:
            ctx.set(top.x.valid, int(sent < len(beats)))
            if sent < len(beats):
                for k, v in enumerate(beats[sent]):
                    ctx.set(top.x.payload[k], int(v))
            if sent < len(beats) and ctx.get(top.x.ready):
                first = cyc if first is None else first
                sent += 1
            if ctx.get(top.y.valid):
                got.append(ctx.get(top.y.payload[0]))
                times.append(cyc)
            await ctx.tick()
            cyc += 1
        times.append(times[-1] - first + 1)

    sim = Simulator(top)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    return got, times[-1]


@pytest.mark.parametrize("max_lanes", [4, 8])
def test_compiled_mlp_top_equals_golden_in_formula_cycles(mlp_lowered, max_lanes):
    design = backend.plan(mlp_lowered, max_lanes=max_lanes)
    assert [n.kernel for n in design.nodes] == ["int8-mvu"] * 3
    assert [n.params.lanes for n in design.nodes] == [max_lanes] * 3  # all divide 16, 32, 24
    name = mlp_lowered.graph.input[0].name
    x = (np.random.default_rng(5).standard_normal(design.in_shape) * 2).astype(np.float32)
    ctx = _execute(mlp_lowered, {name: x})
    X, Y = ctx[design.input].astype(np.int64).ravel(), ctx[design.output].astype(np.int64).ravel()
    got, cycles = _run_top(design, X)
    assert np.array_equal(np.array(got, np.int64), Y)
    sched = backend.schedule(design, design.nodes[0].vectors)
    assert cycles == sched["cycles"]
    assert sched["interval"] == max(n.interval for n in design.nodes)


def test_plan_refuses_what_it_cannot_build(mlp_lowered):
    with pytest.raises(HwsimError, match="max_lanes"):
        backend.plan(mlp_lowered, max_lanes=0)
