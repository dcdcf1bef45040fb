"""cocotb testbench of the decode-step attention phase (:class:`rtl.vitallm.decode_attention.
DecodeAttention`).

Drivers on ``kv`` (the on-chip KV cache, ``G·M`` beats) then ``q`` (``H`` beats), monitor on
``out`` (``C`` beats per head), ``length`` set per case; model
:func:`hwsim.golden.vitallm.decode_attention.decode_attention`;
checker :func:`hwsim.sim.checker.check_plan`: every output code and every ``amax`` ``==``
golden, and the cycles from the first q beat to the last output beat ``==``
:func:`hwsim.golden.vitallm.decode_attention.decode_attention_cycles` of the case's length.
"""

from __future__ import annotations

import time

import cocotb
import numpy as np

from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import decode_attention as spec
from hwsim.kernels.decode_attention import (
    expected_cycles,
    golden_words,
    kv_words,
    length_of,
    q_words,
)
from hwsim.sim.checker import check_plan
from hwsim.sim.streams import CycleLoop, StreamSink, StreamSource


async def run_case(dut, p: spec.DecodeAttentionParams, a: dict, rng, idle, stall) -> dict:
    dut.length.value = length_of(a, p)
    kv = StreamSource(dut, "kv", rng, 0.0)
    qs = StreamSource(dut, "q", rng, idle)
    out = StreamSink(dut, "out", rng, stall, signed=False)
    kv.load(kv_words(a["K"], a["V"], p))
    qs.load(q_words(a["Q"], [tuple(m) for m in a["mults"]], p))
    out.open(p.heads * p.attention().chunks)
    t0 = time.perf_counter()
    total = await CycleLoop(dut.clk, [kv, qs], [out]).run()
    res = ah.out_results(out.values, p.attention())
    return {"outputs": np.concatenate([np.append(o, am) for o, am in res]).tolist(),
            "cycles": out.cycles[-1] - qs.cycles[0] + 1, "sim_cycles": total,
            "wall_s": time.perf_counter() - t0}


@cocotb.test()
async def decode_attention_matches_golden(dut):
    await check_plan(dut, spec.DecodeAttentionParams, run_case, golden_words, expected_cycles,
                     inputs=("kv", "q"), outputs=("out",))
