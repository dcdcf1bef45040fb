"""Fast tier: the Amaranth AttnOut (v-rescale → SubLN + quantizer → wo → residual add) against
the golden, on the kernel's stimulus and on a real decode token of a random micro BitNet."""

import numpy as np
import pytest
from amaranth.hdl import Value

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import attn_out as g
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.kernels import attn_out as ka
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.attn_out import AttnOut

KERNEL = get_kernel("attn-out")


def rtl_attn_out(p, arrays, idle=0.0, stall=0.0, seed=0):
    """``(residual row out, cycles from the first o beat to the last y code)``."""
    dut = AttnOut(p)
    w = Source(dut.w, ka.w_words(arrays, p))
    o = Source(dut.o, ka.o_words(arrays, p), idle=idle)
    x = Source(dut.x, ka.x_words(arrays, p), idle=idle)
    y = Sink(dut.y, p.hidden, stall=stall)
    pv = ka.port_values(arrays, p)
    settle = [(Value.cast(getattr(dut, k)), v) for k, v in pv.items()]
    run_streams(dut, [w, o, x], [y], seed=seed, settle=settle)
    return np.array(y.values, dtype=np.int64), y.cycles[-1] - o.cycles[0] + 1


def check(p, case):
    a = case["arrays"]
    idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
    got, cycles = rtl_attn_out(p, a, idle, stall, case.get("seed", 0))
    assert np.array_equal(got, ka.golden_words(p, a)), case["name"]
    if idle == 0 and stall == 0:
        assert cycles == g.latency_cycles(p), case["name"]


@pytest.mark.parametrize("heads, head_dim, lanes, res_width", [(2, 8, 8, 24), (3, 4, 2, 20)])
def test_bit_exact_and_cycles(heads, head_dim, lanes, res_width):
    p = g.AttnOutParams(heads=heads, head_dim=head_dim, lanes=lanes, amax_width=12,
                        e_width=64, res_width=res_width)
    for case in KERNEL.cases(p, seed=heads):
        check(p, case)


def test_tokens_back_to_back():
    """Three tokens streamed without a gap (the next token's rescale and norm overlap the
    previous one's wo and residual add, which hold it back): each row == golden."""
    p = g.AttnOutParams(heads=2, head_dim=8, lanes=4, amax_width=12, res_width=24)
    cases = [c["arrays"] for c in KERNEL.cases(p, seed=7)[:3]]
    shared = {k: cases[0][k] for k in ("ratio", "g", "e", "W", "mult")}
    toks = [{**c, **shared} for c in cases]
    dut = AttnOut(p)
    w = Source(dut.w, ka.w_words(toks[0], p))
    o = Source(dut.o, [b for t in toks for b in ka.o_words(t, p)])
    x = Source(dut.x, [v for t in toks for v in ka.x_words(t, p)])
    y = Sink(dut.y, 3 * p.hidden, stall=0.2)
    pv = ka.port_values(toks[0], p)
    run_streams(dut, [w, o, x], [y], seed=1,
                settle=[(dut.ratio.as_value(), pv["ratio"]), (dut.gamma.as_value(), pv["gamma"]),
                        (dut.e, pv["e"]), (dut.mult.as_value(), pv["mult"])])
    want = np.concatenate([ka.golden_words(p, t) for t in toks])
    assert np.array_equal(np.array(y.values), want)


def test_saturating_case_saturates():
    p = g.AttnOutParams(heads=2, head_dim=8, lanes=8, amax_width=12, res_width=24)
    (case,) = [c for c in KERNEL.cases(p, seed=2) if c["name"] == "saturating"]
    a = case["arrays"]
    add = ka.golden_words(p, a) - a["x"]
    assert np.isin(add, [p.res.min_code, p.res.max_code]).any()


def test_real_decode_token_equals_the_integer_model(micro_token):
    """Layer 1, the 10th token of an integer BitNet (micro shape, random ternary weights,
    sparse attention K/M = 3/10): golden == the integer model's residual row after the
    attention block, and the RTL == golden with cycles == formula."""
    im, cap = micro_token
    p, case, want = ka.real_case(im, cap, 1, 3)
    assert (p.heads, p.head_dim, p.hidden, p.res_width) == (4, 8, 32, im.res.width)
    assert np.array_equal(ka.golden_words(p, case["arrays"]), want)
    check(p, case)


def test_params_and_golden_reject_bad_input():
    with pytest.raises(HwsimError, match="must divide head_dim"):
        g.AttnOutParams(head_dim=12, lanes=8)
    with pytest.raises(HwsimError, match="res_width"):
        g.AttnOutParams(res_width=1)
    with pytest.raises(HwsimError, match="needs AttnOutParams"):
        AttnOut(dl.DecoderLayerParams())
    p = g.AttnOutParams(heads=2, head_dim=8, lanes=8, amax_width=12, res_width=24)
    a = dict(KERNEL.cases(p, seed=1, quick=True)[0]["arrays"])
    E = ka.e_value(a["e"])
    args = [a["o"], a["amax"], a["ratio"], a["g"], E, a["W"], a["mult"], a["x"], p]
    with pytest.raises(HwsimError, match="shape"):
        g.attn_out(a["o"][:1], *args[1:])
    with pytest.raises(HwsimError, match="amax"):
        g.attn_out(a["o"], np.array([1 << 12, 1]), *args[2:])
    with pytest.raises(HwsimError, match="E must be"):
        g.attn_out(*args[:4], -1, *args[5:])
    with pytest.raises(HwsimError, match="residual codes"):
        g.attn_out(*args[:7], np.full(p.hidden, 1 << 23), p)
    with pytest.raises(HwsimError, match="residual scale"):
        g.attn_out(*args[:6], [1 << 24, 0], *args[7:])


@pytest.mark.slow      # the registry's test_params[1] runs it in the default tier
@pytest.mark.parametrize("heads, head_dim, lanes, amax_width", [(2, 4, 2, 12), (2, 8, 4, 20)])
def test_without_subln_bit_exact_and_cycles(heads, head_dim, lanes, amax_width):
    """Without SubLN (the 1bitLLM form): shift → absmax quantizer → wo with the row scale
    ``amax << shift`` (``amax_width`` 20: wide rows of 29 bits, shifted); RTL == golden on
    every case, cycles == formula."""
    from hwsim.golden.vitallm import layer_codes as lc

    p = g.AttnOutParams(heads=heads, head_dim=head_dim, lanes=lanes, amax_width=amax_width,
                        res_width=24, subln=False)
    assert "gamma" not in AttnOut(p).signature.members
    cases = KERNEL.cases(p, seed=heads + amax_width)
    a = cases[0]["arrays"]
    _, scale = g.wo_accumulators(a["o"], a["amax"], a["ratio"], None, None, a["W"], p)
    wide = np.concatenate([lc.v_rescale(a["o"][h][None], a["amax"][h:h + 1],
                                        int(a["ratio"][h]))[0] for h in range(heads)])
    assert scale == int(lc.act_quant_wide(wide[None])[1][0])
    if amax_width == 20:
        assert int(lc.shift_rows(wide[None])[1][0]) > 0
    for case in cases:
        check(p, case)


@pytest.mark.slow      # the decoder-layer's real SiLU token covers it in the default tier
def test_real_silu_decode_token_without_subln(micro_silu_token):
    """Layer 1, the 10th token of a SiLU integer BitNet without SubLN (the 1bitLLM form):
    golden == the integer model's ``x_attn``, RTL == golden with cycles == formula."""
    im, cap = micro_silu_token
    p, case, want = ka.real_case(im, cap, 1, 3)
    assert not p.subln and "g" not in case["arrays"]
    assert np.array_equal(ka.golden_words(p, case["arrays"]), want)
    check(p, case)
