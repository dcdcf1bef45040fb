"""Decode-step attention RTL in Amaranth's simulator: == golden (random codes, ties, run-time
lengths L < M, a real decode step of an integer BitNet layer) and cycles == the pipelined-head
formula of L."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as ah
from hwsim.golden.vitallm import decode_attention as spec
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.kernels import decode_attention as kd
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.decode_attention import DecodeAttention


def _run(p, case):
    a = case["arrays"]
    dut = DecodeAttention(p)
    kv = Source(dut.kv, kd.kv_words(a["K"], a["V"], p))
    q = Source(dut.q, kd.q_words(a["Q"], [tuple(m) for m in a["mults"]], p),
               idle=case.get("idle", 0.0))
    out = Sink(dut.out, p.heads * p.attention().chunks, stall=case.get("stall", 0.0))
    run_streams(dut, [kv, q], [out], seed=case.get("seed", 0),
                settle=[(dut.length, kd.length_of(a, p))])
    got = np.concatenate([np.append(o, am) for o, am in ah.out_results(out.values,
                                                                        p.attention())])
    return got, out.cycles[-1] - q.cycles[0] + 1


@pytest.mark.parametrize("kw", [
    {},                                                      # GQA, K < M, C = 2
    pytest.param({"keep": 16}, marks=pytest.mark.slow),      # dense: K = M
    pytest.param({"tokens": 32, "keep": 2, "lanes": 16},     # selector-bound, C = 1
                 marks=pytest.mark.slow),
    pytest.param({"heads": 3, "kv_heads": 1, "tokens": 8, "keep": 8, "lanes": 4},
                 marks=pytest.mark.slow),
])
def test_bit_exact_and_cycles(kw):
    p = spec.DecodeAttentionParams(**{"heads": 4, "kv_heads": 2, "head_dim": 16, "tokens": 16,
                                      "keep": 4, "lanes": 8, "exp_lanes": 2, **kw})
    for case in kd.cases(p, seed=2, quick=bool(kw)):
        got, cycles = _run(p, case)
        assert np.array_equal(got, kd.golden_words(p, case["arrays"])), case["name"]
        if not case.get("idle") and not case.get("stall"):
            assert cycles == kd.expected_cycles(p, case["arrays"]), case["name"]
        else:
            assert cycles >= spec.decode_attention_cycles(p)


def test_real_decode_step_of_an_integer_layer():
    """The last position's decode step of layer 1 of an integer BitNet (micro shape, random
    ternary weights, sparse attention in every layer): RTL == the integer model's outputs."""
    from hwsim.bench.vitallm import decode_step_case
    from models.bitnet.config import BitNetConfig
    from models.bitnet.integer_model import build_integer_model
    from models.bitnet.model import BitNetModel

    cfg = BitNetConfig("micro", hidden=32, ffn=64, layers=2, heads=4, kv_heads=2, vocab=256,
                       max_seq=32, source="tests")
    torch.manual_seed(1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(1)
    im = build_integer_model(BitNetModel(cfg).eval(), rng.integers(0, 256, (4, 16)))
    p, case, model = decode_step_case(im, rng.integers(0, 256, 12), 1, 3)
    assert (p.tokens, p.keep, p.head_dim) == (12, 3, 8)
    got, cycles = _run(p, case)
    want = np.concatenate([np.append(model["o"][h], model["amax"][h]) for h in range(4)])
    assert np.array_equal(got, want)
    assert cycles == spec.decode_attention_cycles(p)


def test_params_reject_bad_input():
    with pytest.raises(HwsimError, match="cannot exceed"):
        spec.DecodeAttentionParams(tokens=8, keep=9)
    with pytest.raises(HwsimError, match="at least 1"):
        spec.DecodeAttentionParams(keep=0)
    with pytest.raises(HwsimError, match="must divide heads"):
        spec.DecodeAttentionParams(heads=4, kv_heads=3)
    with pytest.raises(HwsimError, match="needs DecodeAttentionParams"):
        DecodeAttention(dl.DecoderLayerParams())


def test_run_time_lengths_back_to_back():
    """Steps of L = 1, 2, K − 1, K, M (and back to 2) in one run, each length driven with its
    step's first q beat: every head's output == the golden sparse attention on the first L
    tokens keeping min(K, L) (dense for L ≤ K), and each step's cycles == the formula of L."""
    p = spec.DecodeAttentionParams(heads=2, kv_heads=1, head_dim=8, tokens=8, keep=3, lanes=4,
                                   exp_lanes=2)
    rng = np.random.default_rng(7)
    K, V = rng.integers(-128, 128, (2, 1, 8, 8))
    lengths = [1, 2, p.keep - 1, p.keep, p.tokens, 2]
    steps = [kd.arrays(rng.integers(-128, 128, (2, 8)), K, V, [(200 + L, 12), (150, 11)], L)
             for L in lengths]
    dut = DecodeAttention(p)
    kv = Source(dut.kv, kd.kv_words(K, V, p))
    q = Source(dut.q, [w for a in steps for w in kd.q_words(a["Q"], a["mults"], p)],
               side=[[(dut.length, L)] for L in lengths for _ in range(p.heads)])
    C = p.attention().chunks
    out = Sink(dut.out, len(steps) * p.heads * C)
    run_streams(dut, [kv, q], [out])
    words = ah.out_results(out.values, p.attention())
    for i, (L, a) in enumerate(zip(lengths, steps, strict=True)):
        got = np.concatenate([np.append(o, am) for o, am in words[i * p.heads:(i + 1) * p.heads]])
        assert np.array_equal(got, kd.golden_words(p, a)), L
        first, last = q.cycles[i * p.heads], out.cycles[(i + 1) * p.heads * C - 1]
        assert last - first + 1 == spec.decode_attention_cycles(p, L), L
