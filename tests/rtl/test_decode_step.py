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
from hwsim.sim.amaranth_bench import Sink, Source, Token, run_streams, run_tokens
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
              (dut.score.as_value(), pv["score"]), (dut.length, pv["length"])]
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
            assert cycles == kd.expected_cycles(p, case["arrays"]), case["name"]


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


def test_generates_a_sequence_with_run_time_lengths():
    """Six tokens one after another on one cache with length L = 1 … 6 = M (so L = 1, 2 = K,
    K + 1 … M; K = 2): each token writes its k, v at slot L − 1 and attends to the L tokens the
    earlier ones left (the host loaded only junk, which every token overwrites before it is
    visible). Every token's outputs == golden over the grown cache, its kv_new beats (one per
    KV head, head order) == its golden k8, v8, and its cycles == the formula of L."""
    p = spec.DecodeStepParams(hidden=16, heads=2, kv_heads=1, head_dim=4, tokens=6, keep=2,
                              lanes=4, exp_lanes=2)
    G, d = p.kv_heads, p.head_dim
    rng = np.random.default_rng(11)
    toks = kf.back_to_back(p.frontend(), "seq", range(p.tokens), rng)["arrays"]
    base = kd.cases(p, seed=4, quick=True)[0]["arrays"]
    junk = rng.integers(-128, 128, (G, p.tokens - 1, d))
    dut = DecodeStep(p)
    K, V = np.zeros((G, 0, d), np.int64), np.zeros((G, 0, d), np.int64)
    tokens, want = [], []
    for i in range(p.tokens):
        a = {**base, **{n: toks[n] for n in ("wq", "wk", "wv")},
             **{n: toks[n][i] for n in ("a", "amax", "cos", "sin", "mults")},
             "K": K, "V": V, "length": np.asarray(i + 1)}
        pv = kd.port_values(a, p)
        tokens.append(Token(kf.x_words(a, p.frontend()), [
            (getattr(dut, n), pv[n]) if n in ("amax", "length")
            else (getattr(dut, n).as_value(), pv[n])
            for n in ("amax", "cos", "sin", "mults", "score", "length")]))
        k8, v8 = spec.new_kv(a, p)
        want.append((kd.golden_words(p, a), k8, v8))
        K, V = np.concatenate([K, k8[:, None]], 1), np.concatenate([V, v8[:, None]], 1)
    w = Source(dut.w, kf.w_words(base | {n: toks[n] for n in ("wq", "wk", "wv")},
                                 p.frontend()))
    kv = Source(dut.kv, kd.cache_words({"K": junk, "V": junk}, p))
    ap = p.attention_phase().attention()
    run_tokens(dut, [w, kv], dut.x, dut.out, p.heads * ap.chunks, tokens,
               taps={"kv_new": (dut.kv_new.valid, dut.kv_new.as_value())})
    for L, (tok, (words, k8, v8)) in enumerate(zip(tokens, want, strict=True), 1):
        res = ah.out_results(tok.values, ap)
        assert np.array_equal(np.concatenate([np.append(o, am) for o, am in res]), words), L
        new = [kd.kv_new_fields(v, p) for v in tok.taps["kv_new"]]
        assert [h for h, _, _ in new] == list(range(G))
        assert np.array_equal(np.stack([k for _, k, _ in new]), k8), L
        assert np.array_equal(np.stack([v for _, _, v in new]), v8), L
        assert tok.cycles[1] - tok.cycles[0] + 1 == spec.decode_step_cycles(p, L), L
