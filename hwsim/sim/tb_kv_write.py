"""cocotb testbench of the KV-cache writer (runs inside the simulator).

Driver/monitor: :class:`~hwsim.sim.streams.StreamSource` on ``kv`` (the row index beside each
row's first beat), :class:`~hwsim.sim.streams.StreamSink` on ``done``, and the DRAM
:class:`~hwsim.sim.axi_mem.AxiMemory` on ``m_axi`` with the case's bandwidth and latency. The
outputs are the rows read back from the memory after the writes; model:
:func:`hwsim.golden.vitallm.kv_write.kv_write`. Checker
(:func:`hwsim.sim.checker.check_plan`): read-back ``==`` golden, ``done`` gives the indices in
order, and timed cases' cycles (first ``kv`` beat to last ``done`` beat) ``==``
:func:`hwsim.golden.vitallm.kv_write.stream_cycles`.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.vitallm import kv_write as spec
from hwsim.kernels.kv_write import dram, expected_cycles, golden
from hwsim.sim.axi_mem import AxiMemory
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.KvWriteParams, a: dict, rng, idle: float, stall: float) -> dict:
    rows, index = np.atleast_2d(a["rows"]), np.ravel(a["index"])
    mem = AxiMemory(dut, "m_axi", p.base_addr + p.rows * p.row_bytes, dram(a))
    kv = StreamSource(dut, "kv", rng, idle)
    done = StreamSink(dut, "done", rng, stall, signed=False)
    D = p.data_bytes
    words = [int(sum((int(c) & 0xFF) << (8 * i) for i, c in enumerate(r[k * D:(k + 1) * D])))
             for r in rows for k in range(p.beats)]
    kv.load(words, side=[((dut.row, int(i)),) for i in index for _ in range(p.beats)])
    done.open(len(index))
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [kv], [done, mem]).run()
    if done.values != [int(i) for i in index]:
        raise AssertionError(f"done gave rows {done.values}, written {index.tolist()}")
    return {"outputs": spec.dram_rows(bytes(mem.mem), index, p).ravel().tolist(),
            "cycles": done.cycles[-1] - kv.cycles[0] + 1,
            "aw_cycles": [c - kv.cycles[0] for c in mem.aw],
            "b_cycles": [c - kv.cycles[0] for c in mem.b],
            "sim_cycles": total, "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def kv_write_matches_golden(dut):
    await check_plan(dut, spec.KvWriteParams, run_case, golden, expected_cycles,
                     inputs=("kv",), outputs=("done",))
