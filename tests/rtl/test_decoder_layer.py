"""Fast tier: the Amaranth DecoderLayer (attn-layer → repacker → ffn-in → ffn-out) against the
golden, on the kernel's stimulus and on a real decode token of a random micro BitNet."""

import dataclasses

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import attn_layer as al
from hwsim.golden.vitallm import decoder_layer as g
from hwsim.golden.vitallm import ffn_in as fi
from hwsim.golden.vitallm import ffn_out as fo
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.kernels import decoder_layer as ka
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from quant.qtype import QType
from rtl.vitallm.decoder_layer import DecoderLayer

KERNEL = get_kernel("decoder-layer")
SMALL = {"heads": 2, "kv_heads": 1, "head_dim": 4, "ffn": 8, "tokens": 5, "keep": 2,
         "lanes": 4, "exp_lanes": 2, "res_width": 28}


def settle_ports(dut, arrays, p):
    """(signal, value) pairs of the static ports."""
    return [(getattr(getattr(dut, k), "as_value", lambda k=k: getattr(dut, k))(), v)
            for k, v in ka.port_values(arrays, p).items()]


def rtl_decoder_layer(p, toks, idle=0.0, stall=0.0, seed=0):
    """Tokens ``toks`` (stimulus arrays sharing everything but ``x``) streamed back to back →
    ``(output rows, cycles from the first x beat to the last y code, the x and y transfer
    cycles)``."""
    dut = DecoderLayer(p)
    a = toks[0]
    loads = [Source(dut.w, ka.w_words(a, p)), Source(dut.wo, ka.wo_words(a, p)),
             Source(dut.kv, ka.cache_words(a, p)), Source(dut.w1, ka.w1_words(a, p)),
             Source(dut.w3, ka.w3_words(a, p)), Source(dut.w2, ka.w2_words(a, p))]
    x = Source(dut.x, [b for t in toks for b in ka.x_words(t, p)], idle=idle)
    y = Sink(dut.y, p.hidden * len(toks), stall=stall)
    run_streams(dut, [*loads, x], [y], seed=seed, settle=settle_ports(dut, a, p))
    return (np.array(y.values, dtype=np.int64).reshape(len(toks), p.hidden),
            y.cycles[-1] - x.cycles[0] + 1, x.cycles, y.cycles)


def check(p, case):
    a = case["arrays"]
    idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
    (got,), cycles, _, _ = rtl_decoder_layer(p, [a], idle, stall, case.get("seed", 0))
    assert np.array_equal(got, ka.golden_words(p, a)), case["name"]
    if idle == 0 and stall == 0:
        assert cycles == g.latency_cycles(p), case["name"]


def test_bit_exact_and_cycles():
    """Random stimulus (wide rows, w2 rows that saturate, idle input and back-pressure):
    y == golden, cycles == formula without idle input or back-pressure (the kernel's
    narrow_row case is attn-layer's and runs in the cocotb tier)."""
    p = g.DecoderLayerParams(**SMALL)
    cs = [c for c in KERNEL.cases(p, seed=1) if c["name"] != "narrow_row"]
    assert [c.get("idle", 0) > 0 for c in cs] == [False, False, True]
    for case in cs:
        check(p, case)


def test_w2_rows_saturate_at_the_model_residual_width():
    """x_attn is one bit wider than the residual format, but w2's requantized rows saturate
    to res_width bits, as layer_forward's residual_add does: the golden equals the layer's own
    functions with the model's residual QType, and differs from a 29-bit saturation here."""
    p = g.DecoderLayerParams(**SMALL)
    (case,) = [c for c in KERNEL.cases(p, seed=1) if c["name"] == "w2_saturates"]
    a = ka.golden_arrays(case["arrays"])
    x_attn = al.attn_layer(a, p.attn_layer())
    prod, amax = fi.ffn_in(x_attn, a["ffn_g"], a["ffn_E"], a["w1"], a["w3"], p.ffn_in())
    acc, am3 = fo.w2_accumulators(prod, amax, a["ffn_sub_g"], a["ffn_sub_E"], a["w2"],
                                  p.ffn_out())
    model = lc.residual_add(x_attn[None], acc[None], [am3], tuple(a["w2_mult"]),
                            QType(p.res_width))[0]
    wide = lc.residual_add(x_attn[None], acc[None], [am3], tuple(a["w2_mult"]),
                           QType(p.res_width + 1))[0]
    assert np.array_equal(g.decoder_layer(a, p), model)
    assert not np.array_equal(model, wide)


def test_one_lane_repacker():
    """lanes = 1: the repacker holds nothing and passes each code on as a beat."""
    p = g.DecoderLayerParams(**{**SMALL, "head_dim": 2, "ffn": 3, "lanes": 1, "tokens": 4,
                                "keep": 4})
    check(p, KERNEL.cases(p, seed=2, quick=True)[0])


def test_tokens_back_to_back():
    """Two residual rows streamed without a gap, with back-pressure: the second row enters
    the attention half while the first is in the FFN (before its first output code); its
    x_attn then waits in wo until ffn-out has taken the first row's residual codes. Each
    output row == golden."""
    p = g.DecoderLayerParams(**SMALL)
    a = KERNEL.cases(p, seed=3, quick=True)[0]["arrays"]
    b = {**a, "x": np.random.default_rng(5).integers(-(1 << 24), 1 << 24, p.hidden)}
    got, _, xc, yc = rtl_decoder_layer(p, [a, b], stall=0.3, seed=1)
    assert np.array_equal(got, np.stack([ka.golden_words(p, t) for t in (a, b)]))
    assert xc[p.chunks] < yc[0]
    assert not np.array_equal(got[0], got[1])


def test_real_decode_token_equals_the_integer_model(micro_token):
    """Layer 1, the 10th token of an integer BitNet (micro shape, random ternary weights,
    sparse attention K/M = 3/10): golden == the integer model's x_out, and the RTL == golden
    with cycles == formula."""
    im, cap = micro_token
    p, case, want = ka.real_case(im, cap, 1, 3)
    assert (p.hidden, p.ffn, p.lanes, p.res_width) == (32, 64, 8, im.res.width)
    assert p.ffn_sub_e_width > 64
    assert np.array_equal(ka.golden_words(p, case["arrays"]), want)
    check(p, case)


def test_formula_is_the_chained_schedule():
    """The layer's latency is the three kernels' less the overlaps: ffn-in's C row beats come
    during attn-layer's output, ffn-out's ffn input beats during ffn-in's rows."""
    p = g.DecoderLayerParams()
    ph = g.phase_cycles(p)
    assert list(ph) == ["attn_norm", "qkv_frontend", "kv_append", "attention", "attn_out",
                        "ffn_norm", "w1_w3", "ffn_subln", "w2"]
    assert g.latency_cycles(p) == al.latency_cycles(p.attn_layer()) + \
        fi.latency_cycles(p.ffn_in()) - p.chunks + fo.latency_cycles(p.ffn_out()) - p.ffn
    assert ph["ffn_norm"] == nq.latency_cycles(p.ffn_in().norm_quant()) - p.chunks == 178
    assert g.latency_cycles(p) == 3473 + 178 + 2830 + 255 + 2842 == 9578
    assert p.ffn_in().prod_width == p.ffn_out().prod_width == 44
    assert p.ffn_in().res_width == p.ffn_out().res_width == p.res_width + 1


def test_decode_cycles_are_the_decoder_layer_schedule():
    """The schedule model (estimator, bench) takes every phase from the decoder-layer
    controller; its total is the simulated latency less the attention half's front: the same
    phases in sequence."""
    p = g.DecoderLayerParams(keep=128)
    c = g.decode_cycles(p)
    assert {k: v for k, v in c.items() if k != "total"} == g.phase_cycles(p)
    assert c["total"] == g.latency_cycles(p) == 12378   # was 12386: ffn_norm 186 → 178
    for keep in (8, 16, 64):
        q = dataclasses.replace(p, keep=keep)
        assert g.decode_cycles(q)["total"] == g.latency_cycles(q)


def test_params_and_golden_reject_bad_input():
    with pytest.raises(HwsimError, match=r"decoder-layer lanes \(16\) must divide ffn"):
        g.DecoderLayerParams(ffn=100, lanes=16)
    with pytest.raises(HwsimError, match="must divide head_dim"):
        g.DecoderLayerParams(head_dim=12, lanes=8)
    with pytest.raises(HwsimError, match="decoder-layer res_width"):
        g.DecoderLayerParams(res_width=61)
    with pytest.raises(HwsimError, match="keep"):
        g.DecoderLayerParams(keep=200)
    with pytest.raises(HwsimError, match="> 64"):
        g.DecoderLayerParams(heads=64, head_dim=1024, ffn=1024)
    with pytest.raises(HwsimError, match="decoder-layer heads"):
        g.DecoderLayerParams(heads=True)
    with pytest.raises(HwsimError, match="needs DecoderLayerParams"):
        DecoderLayer(al.AttnLayerParams())
    p = g.DecoderLayerParams(**SMALL)
    a = ka.golden_arrays(KERNEL.cases(p, seed=1, quick=True)[0]["arrays"])
    with pytest.raises(HwsimError, match="needs the array 'w2'"):
        g.decoder_layer({k: v for k, v in a.items() if k != "w2"}, p)
    with pytest.raises(HwsimError, match="residual codes"):
        g.decoder_layer({**a, "x": a["x"][:3]}, p)
    with pytest.raises(HwsimError, match="w2 must be"):
        g.decoder_layer({**a, "w2": a["w2"][:2]}, p)


@pytest.mark.slow  # ~45 s: three whole decoder-layer tokens in Amaranth's simulator
def test_generates_three_tokens_on_its_own_cache(micro_token):
    """Layer 1 of an integer BitNet (micro shape, K = 3 of M = 10 cache slots) decodes the
    tokens at positions 7, 8, 9 one after another with length L = 8, 9, 10: the host loads
    the cache of positions 0 … 6 only (junk in slots 7, 8), each token appends its own k, v at
    slot L − 1 and the next one attends to it. Every output row == the integer model's
    decode step (:func:`hwsim.golden.vitallm.bitnet_layer.decode_step` with the accelerator's
    min(K, L) rule) == the kernel golden at L, every kv_new beat == that step's k8, v8, and
    every token's cycles == the formula of L."""
    from hwsim.golden.vitallm import bitnet_layer as bl
    from hwsim.kernels import decode_step as kds
    from hwsim.sim.amaranth_bench import Token, run_tokens

    im, cap = micro_token
    p, case, _ = ka.real_case(im, cap, 1, 3)
    c, first = cap[1], 7
    assert (p.tokens, p.keep) == (10, 3)
    k_cache, v_cache = c["k"][:first], c["v"][:first]
    junk = np.random.default_rng(9).integers(-128, 128, (p.tokens - 1 - first, p.kv_heads,
                                                          p.head_dim))
    load = {**case["arrays"],
            "K": np.concatenate([k_cache, junk]).transpose(1, 0, 2),
            "V": np.concatenate([v_cache, junk]).transpose(1, 0, 2)}
    dut = DecoderLayer(p)
    tokens, want = [], []
    for pos in range(first, p.tokens):
        a = {**case["arrays"], "x": c["x_in"][pos], "cos": im.cos[pos], "sin": im.sin[pos],
             "K": k_cache.transpose(1, 0, 2), "V": v_cache.transpose(1, 0, 2),
             "length": np.asarray(pos + 1)}
        x_out, k8, v8 = bl.decode_step(im.layers[1], im, c["x_in"][pos], k_cache, v_cache,
                                       attend=bl.topk_attend(p.keep))
        assert np.array_equal(ka.golden_words(p, a), x_out)
        want.append((x_out, k8, v8))
        tokens.append(Token(ka.x_words(a, p), settle_ports(dut, a, p)))
        k_cache, v_cache = np.concatenate([k_cache, k8[None]]), np.concatenate([v_cache, v8[None]])
    loads = [Source(dut.w, ka.w_words(load, p)), Source(dut.wo, ka.wo_words(load, p)),
             Source(dut.kv, ka.cache_words(load, p)), Source(dut.w1, ka.w1_words(load, p)),
             Source(dut.w3, ka.w3_words(load, p)), Source(dut.w2, ka.w2_words(load, p))]
    run_tokens(dut, loads, dut.x, dut.y, p.hidden, tokens,
               taps={"kv_new": (dut.kv_new.valid, dut.kv_new.as_value())})
    for pos, (tok, (x_out, k8, v8)) in enumerate(zip(tokens, want, strict=True), first):
        assert np.array_equal(np.array(tok.values), x_out), pos
        new = [kds.kv_new_fields(v, p.decode_step()) for v in tok.taps["kv_new"]]
        assert [h for h, _, _ in new] == list(range(p.kv_heads))
        assert np.array_equal(np.stack([k for _, k, _ in new]), k8), pos
        assert np.array_equal(np.stack([v for _, _, v in new]), v8), pos
        assert tok.cycles[1] - tok.cycles[0] + 1 == g.latency_cycles(p, pos + 1), pos
    assert not np.array_equal(want[0][0], want[1][0])


@pytest.mark.slow
def test_silu_without_subln_bit_exact_and_cycles():
    """The 1bitLLM form (``act="silu"``, ``subln=False``) on random stimulus: no SubLN ports,
    the gate requantizer's ports; y == golden, cycles == formula (its phases are the halves'
    no-SubLN ones)."""
    p = g.DecoderLayerParams(**SMALL, act="silu", subln=False)
    members = DecoderLayer(p).signature.members
    assert {"gate_mult", "gate_shift"} <= set(members)
    assert not {"sub_gamma", "sub_e", "ffn_sub_gamma", "ffn_sub_e"} & set(members)
    assert "ffn_quant" in g.phase_cycles(p)
    for case in KERNEL.cases(p, seed=4, quick=True):
        check(p, case)


def test_real_silu_decode_token_equals_the_integer_model(micro_silu_token):
    """Layer 1, the 10th token of a SiLU integer BitNet without SubLN (micro shape, the
    1bitLLM form, sparse attention K/M = 3/10): golden == the integer model's x_out, and the
    RTL == golden with cycles == formula."""
    im, cap = micro_silu_token
    p, case, want = ka.real_case(im, cap, 1, 3)
    assert (p.act, p.subln, p.hidden, p.ffn) == ("silu", False, 32, 64)
    assert np.array_equal(ka.golden_words(p, case["arrays"]), want)
    check(p, case)
