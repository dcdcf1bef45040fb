"""Fast tier: the Amaranth AttnLayer (residual row → peak → shift → RMSNorm + quantizer →
decode step → output path) against the golden, on the kernel's stimulus and on a real decode
token of a random micro BitNet."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import attn_layer as g
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.kernels import attn_layer as ka
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.attn_layer import AttnLayer

KERNEL = get_kernel("attn-layer")


def settle_ports(dut, arrays, p):
    """(signal, value) pairs of the static ports."""
    return [(getattr(getattr(dut, k), "as_value", lambda k=k: getattr(dut, k))(), v)
            for k, v in ka.port_values(arrays, p).items()]


def rtl_attn_layer(p, arrays, idle=0.0, stall=0.0, seed=0):
    """``(residual row out, cycles from the first x beat to the last y code)``."""
    dut = AttnLayer(p)
    w = Source(dut.w, ka.w_words(arrays, p))
    wo = Source(dut.wo, ka.wo_words(arrays, p))
    kv = Source(dut.kv, ka.cache_words(arrays, p))
    x = Source(dut.x, ka.x_words(arrays, p), idle=idle)
    y = Sink(dut.y, p.hidden, stall=stall)
    run_streams(dut, [w, wo, kv, x], [y], seed=seed, settle=settle_ports(dut, arrays, p))
    return np.array(y.values, dtype=np.int64), y.cycles[-1] - x.cycles[0] + 1


def check(p, case):
    a = case["arrays"]
    idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
    got, cycles = rtl_attn_layer(p, a, idle, stall, case.get("seed", 0))
    assert np.array_equal(got, ka.golden_words(p, a)), case["name"]
    if idle == 0 and stall == 0:
        assert cycles == g.latency_cycles(p), case["name"]


def test_bit_exact_and_cycles():
    p = g.AttnLayerParams(heads=2, kv_heads=1, head_dim=4, tokens=5, keep=2, lanes=4,
                          exp_lanes=2, res_width=28)
    for case in KERNEL.cases(p, seed=1):
        check(p, case)


def test_tokens_back_to_back():
    """Two residual rows streamed without a gap with back-pressure (the second waits until the
    first row's last code is added): each output row == golden."""
    p = g.AttnLayerParams(heads=2, kv_heads=1, head_dim=4, tokens=5, keep=2, lanes=4,
                          exp_lanes=2, res_width=28)
    a = KERNEL.cases(p, seed=2, quick=True)[0]["arrays"]
    toks = [a, {**a, "x": np.random.default_rng(5).integers(-(1 << 24), 1 << 24, p.hidden)}]
    dut = AttnLayer(p)
    w, wo = Source(dut.w, ka.w_words(a, p)), Source(dut.wo, ka.wo_words(a, p))
    kv = Source(dut.kv, ka.cache_words(a, p))
    x = Source(dut.x, [b for t in toks for b in ka.x_words(t, p)])
    y = Sink(dut.y, 2 * p.hidden, stall=0.3)
    run_streams(dut, [w, wo, kv, x], [y], seed=1, settle=settle_ports(dut, a, p))
    want = np.concatenate([ka.golden_words(p, t) for t in toks])
    assert np.array_equal(np.array(y.values), want)


def test_real_decode_token_equals_the_integer_model(micro_token):
    """Layer 1, the 10th token of an integer BitNet (micro shape, random ternary weights,
    sparse attention K/M = 3/10): golden == the integer model's x_attn, and the RTL == golden
    with cycles == formula."""
    im, cap = micro_token
    p, case, want = ka.real_case(im, cap, 1, 3)
    assert (p.heads, p.head_dim, p.hidden, p.res_width) == (4, 8, 32, im.res.width)
    assert np.array_equal(ka.golden_words(p, case["arrays"]), want)
    check(p, case)


def test_decode_cycles_take_the_attention_half_from_attn_layer():
    p = dl.DecoderLayerParams()
    c, ph = dl.decode_cycles(p), g.phase_cycles(p.attn_layer())
    assert {k: c[k] for k in ph} == ph
    assert sum(ph.values()) == g.latency_cycles(p.attn_layer())


def test_params_and_golden_reject_bad_input():
    with pytest.raises(HwsimError, match="must divide head_dim"):
        g.AttnLayerParams(head_dim=12, lanes=8)
    with pytest.raises(HwsimError, match="res_width"):
        g.AttnLayerParams(res_width=1)
    with pytest.raises(HwsimError, match="needs AttnLayerParams"):
        AttnLayer(dl.DecoderLayerParams())
    p = g.AttnLayerParams(heads=2, kv_heads=1, head_dim=4, tokens=5, keep=2, lanes=4,
                          exp_lanes=2, res_width=28)
    a = ka.golden_arrays(KERNEL.cases(p, seed=1, quick=True)[0]["arrays"])
    with pytest.raises(HwsimError, match="residual codes"):
        g.attn_layer({**a, "x": a["x"][:3]}, p)
    with pytest.raises(HwsimError, match="residual codes"):
        g.attn_layer({**a, "x": np.full(p.hidden, 1 << 28)}, p)
