"""The attention block of a decode step in Amaranth's simulator: == golden and, for a real
decode token of an integer BitNet layer, == the integer model's attention outputs; cycles ==
front end + KV append + attention phase."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import decode_step as spec
from hwsim.golden.vitallm import qkv_frontend as gqf
from hwsim.kernels import decode_step as kd
from hwsim.kernels import qkv_frontend as kf
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.decode_step import DecodeStep


def _run(p, case):
    a = case["arrays"]
    dut = DecodeStep(p)
    w = Source(dut.w, kf.w_words(a, p.frontend()))
    kv = Source(dut.kv, kd.cache_words(a, p))
    x = Source(dut.x, kf.x_words(a, p.frontend()), idle=case.get("idle", 0.0))
    out = Sink(dut.out, p.heads * p.attention_phase().attention().chunks,
               stall=case.get("stall", 0.0))
    pv = kd.port_values(a, p)
    settle = [(dut.amax, pv["amax"]), (dut.cos.as_value(), pv["cos"]),
              (dut.sin.as_value(), pv["sin"]), (dut.mults.as_value(), pv["mults"]),
              (dut.score.as_value(), pv["score"])]
    run_streams(dut, [w, kv, x], [out], seed=case.get("seed", 0), settle=settle)
    res = ah.out_results(out.values, p.attention_phase().attention())
    return np.concatenate([np.append(o, am) for o, am in res]), out.cycles[-1] - x.cycles[0] + 1


@pytest.mark.slow  # the default tier runs the kernel in tests/sim/test_kernels_amaranth.py
def test_bit_exact_and_cycles():
    p = spec.DecodeStepParams(hidden=32, heads=2, kv_heads=1, head_dim=8, tokens=8, keep=3,
                              lanes=8, exp_lanes=2)
    for case in kd.cases(p, seed=5, quick=True):
        got, cycles = _run(p, case)
        assert np.array_equal(got, kd.golden_words(p, case["arrays"])), case["name"]
        if not case.get("idle") and not case.get("stall"):
            assert cycles == spec.decode_step_cycles(p), case["name"]


def test_real_decode_step_of_an_integer_layer(micro_model):
    """Layer 1, the 10th token of an integer BitNet (micro shape, random ternary weights,
    sparse attention K/M = 3/10 in every layer): the RTL's outputs are the integer model's."""
    from hwsim.bench.vitallm import step_case

    im, tokens = micro_model
    p, case, want = step_case(im, tokens, 1, 3)
    assert (p.tokens, p.keep, p.hidden, p.heads) == (10, 3, 32, 4)
    got, cycles = _run(p, case)
    assert np.array_equal(got, want)
    assert cycles == spec.decode_step_cycles(p)


def test_params_reject_bad_input():
    with pytest.raises(HwsimError, match="cannot exceed"):
        spec.DecodeStepParams(tokens=8, keep=9)
    with pytest.raises(HwsimError, match="needs DecodeStepParams"):
        DecodeStep(gqf.QkvFrontendParams())
