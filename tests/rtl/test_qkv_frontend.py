"""TINT → Booth front end in Amaranth's simulator: == golden (random codes, and a real decode
token of an integer BitNet layer: == the integer model's q, k, v), cycles == formula."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden import decode_attention as gda
from hwsim.golden import qkv_frontend as spec
from hwsim.kernels import qkv_frontend as kf
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.qkv_frontend import QkvFrontend


def _run(p, case):
    a = case["arrays"]
    dut = QkvFrontend(p)
    w = Source(dut.w, kf.w_words(a, p))
    x = Source(dut.x, kf.x_words(a, p), idle=case.get("idle", 0.0))
    out = Sink(dut.out, p.elements, stall=case.get("stall", 0.0))
    pv = kf.port_values(a, p)
    settle = [(dut.amax, pv["amax"]), (dut.cos.as_value(), pv["cos"]),
              (dut.sin.as_value(), pv["sin"]), (dut.mults.as_value(), pv["mults"])]
    run_streams(dut, [w, x], [out], seed=case.get("seed", 0), settle=settle)
    got = np.array([v - 256 if v >= 128 else v for v in out.values])
    return got, out.cycles[-1] - x.cycles[0] + 1


@pytest.mark.parametrize("kw", [{}, pytest.param({"hidden": 32, "heads": 4, "kv_heads": 4,
                                                  "head_dim": 4, "lanes": 16},
                                                 marks=pytest.mark.slow)])
def test_bit_exact_and_cycles(kw):
    p = spec.QkvFrontendParams(**{"hidden": 32, "heads": 2, "kv_heads": 1, "head_dim": 8,
                                  "lanes": 8, **kw})
    for case in kf.cases(p, seed=3, quick=bool(kw)):
        got, cycles = _run(p, case)
        want = kf.golden_codes(p, case["arrays"])
        assert np.array_equal(got, want), case["name"]
        assert 0 < np.mean(np.abs(want) == 127) < 0.5      # both saturated and inner codes
        if not case.get("idle") and not case.get("stall"):
            assert cycles == spec.qkv_frontend_cycles(p), case["name"]


@pytest.mark.slow  # the default suite runs the same token through tests/rtl/test_decode_step.py
def test_real_decode_token_of_an_integer_layer():
    from hwsim.bench.vitallm import frontend_step_case
    from models.bitnet.config import BitNetConfig
    from models.bitnet.integer_model import build_integer_model
    from models.bitnet.model import BitNetModel

    cfg = BitNetConfig("micro", hidden=32, ffn=64, layers=2, heads=4, kv_heads=2, vocab=256,
                       max_seq=32, source="tests")
    torch.manual_seed(2)
    torch.set_num_threads(1)
    rng = np.random.default_rng(2)
    im = build_integer_model(BitNetModel(cfg).eval(), rng.integers(0, 256, (4, 16)))
    p, case, want = frontend_step_case(im, rng.integers(0, 256, 10), 1, 3)
    got, cycles = _run(p, case)
    assert np.array_equal(got, want)
    assert cycles == spec.qkv_frontend_cycles(p)


def test_params_reject_bad_input():
    with pytest.raises(HwsimError, match="even"):
        spec.QkvFrontendParams(head_dim=7, heads=2, kv_heads=1)
    with pytest.raises(HwsimError, match="must divide"):
        spec.QkvFrontendParams(hidden=36, lanes=16)
    with pytest.raises(HwsimError, match="needs QkvFrontendParams"):
        QkvFrontend(gda.DecodeAttentionParams())
