"""cocotb testbench of the weight-streamed ternary projection (runs inside the simulator).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``x`` (``M``/``S`` beside each
vector's first beat), :class:`~hwsim.sim.streams.StreamSink` on ``y``, and the DRAM
:class:`~hwsim.sim.axi_mem.AxiMemory` on ``m_axi`` holding the weights in the packed layout
(:func:`hwsim.golden.vitallm.weight_stream.dram_image`) with the case's bandwidth, latency and
outstanding-burst limit — or, for a case whose ``axiram`` array is 1 (Icarus and Verilator
only), cocotbext-axi's ``AxiRamRead``, an independent AXI4 model that serves one beat per cycle
one cycle late (``latency = 1``). Model: :func:`hwsim.golden.vitallm.weight_stream.weight_stream`.
Checker (:func:`hwsim.sim.checker.check_plan`): every code ``==`` golden, every timed case's
cycles ``==`` :func:`hwsim.golden.vitallm.weight_stream.projection_cycles` per vector, and the
bursts the memory served ``==`` :func:`~hwsim.golden.vitallm.weight_stream.burst_plan`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.vitallm import weight_stream as spec
from hwsim.kernels.ternary_stream import dram, expected_cycles, golden, side_values, x_words
from hwsim.sim.axi_mem import AxiMemory
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


def _codes(p: spec.WeightStreamParams, beats: list[int]) -> list[int]:
    """y beats (4 lanes of ``out.width`` bits) → codes in row order, vector after vector."""
    w, rows = p.out.width, spec.output_rows(p)
    out = []
    for v in range(len(beats) // p.packed_rows):
        y = np.zeros(p.rows, dtype=np.int64)
        for j, word in enumerate(beats[v * p.packed_rows:(v + 1) * p.packed_rows]):
            for i in range(4):
                code = word >> (w * i) & ((1 << w) - 1)
                y[rows[j, i]] = code - (1 << w) if p.out.signed and code >> (w - 1) else code
        out.extend(y.tolist())
    return out


_AXIRAM = {}


def _axiram(dut, p: spec.WeightStreamParams, image: bytes):
    """cocotbext-axi's RAM on ``m_axi`` (one per simulation: it runs in the background)."""
    if "ram" not in _AXIRAM:
        from cocotbext.axi import AxiRamRead, AxiReadBus

        _AXIRAM["ram"] = AxiRamRead(AxiReadBus.from_prefix(dut, "m_axi_"), dut.clk, None,
                                    size=-(-(p.base_addr + p.weight_bytes) // 4096) * 4096)
    _AXIRAM["ram"].write(p.base_addr, image)
    return None


async def run_case(dut, p: spec.WeightStreamParams, a: dict, rng, idle: float,
                   stall: float) -> dict:
    timing = dram(a)
    X = np.atleast_2d(a["X"])
    if int(a.get("axiram", 0)):
        mem = _axiram(dut, p, spec.dram_image(a["W"], p))
    else:
        mem = AxiMemory(dut, "m_axi", p.base_addr + p.weight_bytes, timing,
                        spec.dram_image(a["W"], p), origin=p.base_addr)
    x = StreamSource(dut, "x", rng, idle)
    y = StreamSink(dut, "y", rng, stall, signed=False)
    x.load(x_words(p, a), side=[tuple((getattr(dut, n), v) for n, v in beat)
                                for beat in side_values(p, a)])
    y.open(X.shape[0] * p.packed_rows)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [x], [y] if mem is None else [y, mem]).run()
    plan = spec.burst_plan(p)
    if mem is not None and mem.bursts != plan * X.shape[0]:
        raise AssertionError(f"bursts served {mem.bursts[:4]}…, the plan is {plan[:4]}…")
    x0 = x.cycles[0]
    return {"outputs": _codes(p, y.values), "cycles": y.cycles[-1] - x0 + 1,
            "r_beat_cycles": [] if mem is None else [c - x0 for c in mem.beats[:p.beats]],
            "ar_cycles": [] if mem is None else [c - x0 for c in mem.ar[:len(plan)]],
            "weight_stream_bound_cycles": spec.weight_stream_bound_cycles(p, timing),
            "dram": {"bytes_per_cycle": timing.bytes_per_cycle, "latency": timing.latency,
                     "max_outstanding": timing.max_outstanding},
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def ternary_stream_matches_golden(dut):
    await check_plan(dut, spec.WeightStreamParams, run_case, golden, expected_cycles,
                     inputs=("x",), outputs=("y",))
