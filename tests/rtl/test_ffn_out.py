"""Fast tier: the Amaranth FfnOut (prod peak → shift → wide ε divider → FFN SubLN + quantizer
→ w2 → residual add) against the golden, on the kernel's stimulus and on a real decode token
of a random micro BitNet (RTL == golden == the integer model's output residual row)."""

import numpy as np
import pytest
from amaranth.hdl import Value

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.golden.vitallm import ffn_out as g
from hwsim.kernels import ffn_out as kf
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.ffn_out import FfnOut

KERNEL = get_kernel("ffn-out")


def rtl_ffn_out(p, toks, idle=0.0, stall=0.0, seed=0):
    """``(residual rows out, cycles from the first p beat to the last y code)`` of the tokens
    ``toks`` (stimulus arrays sharing the static ports of the first) sent back to back."""
    dut = FfnOut(p)
    w = Source(dut.w, kf.w_words(toks[0], p))
    pb = Source(dut.p, [b for t in toks for b in kf.p_words(t, p)], idle=idle)
    x = Source(dut.x, [v for t in toks for v in kf.x_words(t, p)], idle=idle)
    y = Sink(dut.y, len(toks) * p.hidden, stall=stall)
    pv = kf.port_values(toks[0], p)
    run_streams(dut, [w, pb, x], [y], seed=seed,
                settle=[(Value.cast(getattr(dut, k)), v) for k, v in pv.items()])
    return np.array(y.values, dtype=np.int64), y.cycles[-1] - pb.cycles[0] + 1


def check(p, case):
    a = case["arrays"]
    idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
    got, cycles = rtl_ffn_out(p, [a], idle, stall, case.get("seed", 0))
    assert np.array_equal(got, kf.golden_words(p, a)), case["name"]
    if idle == 0 and stall == 0:
        assert cycles == g.latency_cycles(p), case["name"]


@pytest.mark.parametrize("hidden, ffn, lanes, prod_width, e_width",
                         [(16, 32, 8, 40, 161), (8, 12, 4, 30, 70)])
def test_bit_exact_and_cycles(hidden, ffn, lanes, prod_width, e_width):
    p = g.FfnOutParams(hidden=hidden, ffn=ffn, lanes=lanes, prod_width=prod_width,
                       e_width=e_width, res_width=24)
    cases = KERNEL.cases(p, seed=hidden)
    assert [c["name"] for c in cases] == ["random", "narrow_saturated_eps", "zero_row",
                                          "idle_backpressure"]
    for case in cases:
        check(p, case)


def test_tokens_back_to_back():
    """Two tokens streamed without a gap: each row == golden."""
    p = g.FfnOutParams(hidden=8, ffn=16, lanes=4, prod_width=36, e_width=100, res_width=24)
    cases = [c["arrays"] for c in KERNEL.cases(p, seed=7)]
    toks = [{**c, **{k: cases[0][k] for k in ("g", "e", "W", "mult")}}
            for c in (cases[0], cases[3])]
    got, _ = rtl_ffn_out(p, toks, stall=0.2, seed=1)
    assert np.array_equal(got, np.concatenate([kf.golden_words(p, t) for t in toks]))


def test_real_decode_token_equals_the_integer_model(micro_token):
    """Layer 1, the 10th token of an integer BitNet (micro shape, random ternary weights,
    sparse attention K/M = 3/10): golden == the integer model's output residual row (its
    ``x_out``, from its own ``prod``, ``ffn_amax`` and ``x_attn``), and the RTL == golden
    with cycles == formula."""
    im, cap = micro_token
    p, case, want = kf.real_case(im, cap, 1)
    assert (p.hidden, p.ffn, p.lanes, p.res_width) == (32, 64, 16, im.res.width)
    assert p.e_width == int(im.layers[1].ffn_sub.eps).bit_length() > 64
    assert np.array_equal(kf.golden_words(p, case["arrays"]), want)
    check(p, case)


def test_sat_width_saturates_w2_rows_narrower_than_x():
    """``sat_width`` < ``res_width`` (the decoder-layer's x_attn is one bit wider than the
    model's residual format): w2's rows saturate to ``sat_width`` bits, the add stays exact;
    RTL == golden with cycles == formula, and the golden differs from a saturation at
    ``res_width``."""
    p = g.FfnOutParams(hidden=8, ffn=16, lanes=4, prod_width=36, e_width=100, res_width=25,
                       sat_width=24)
    a = dict(KERNEL.cases(p, seed=2, quick=True)[0]["arrays"])
    acc, am3 = g.w2_accumulators(a["prod"], int(a["amax"][0]), a["g"], kf.e_value(a["e"]),
                                 a["W"], p)
    a["mult"] = np.array(kf._mult_for(int(np.abs(acc).max()) * am3, 24, np.random.default_rng(1),
                                      3), dtype=np.int64)
    wide = g.ffn_out(a["prod"], int(a["amax"][0]), a["g"], kf.e_value(a["e"]), a["W"],
                     a["mult"], a["x"], g.FfnOutParams(**{**p.__dict__, "sat_width": 0}))
    assert not np.array_equal(kf.golden_words(p, a), wide)
    check(p, {"name": "sat_width", "arrays": a})


def test_params_and_golden_reject_bad_input():
    with pytest.raises(HwsimError, match="must divide ffn"):
        g.FfnOutParams(ffn=20, lanes=8, hidden=16)
    with pytest.raises(HwsimError, match="prod_width"):
        g.FfnOutParams(prod_width=65)
    with pytest.raises(HwsimError, match="amax_width"):
        g.FfnOutParams(amax_width=25)
    with pytest.raises(HwsimError, match="e_width"):
        g.FfnOutParams(e_width=513)
    with pytest.raises(HwsimError, match="sat_width"):
        g.FfnOutParams(res_width=24, sat_width=25)
    with pytest.raises(HwsimError, match="needs FfnOutParams"):
        FfnOut(dl.DecoderLayerParams())
    p = g.FfnOutParams(hidden=8, ffn=16, lanes=4, prod_width=36, e_width=100, res_width=24)
    a = dict(KERNEL.cases(p, seed=1, quick=True)[0]["arrays"])
    E = kf.e_value(a["e"])
    args = [a["prod"], 5, a["g"], E, a["W"], a["mult"], a["x"], p]
    with pytest.raises(HwsimError, match="prod codes"):
        g.ffn_out(np.full(16, 1 << 36), *args[1:])
    with pytest.raises(HwsimError, match="amax must be"):
        g.ffn_out(a["prod"], 1 << 24, *args[2:])
    with pytest.raises(HwsimError, match="E must be"):
        g.ffn_out(*args[:3], 1 << 100, *args[4:])
    with pytest.raises(HwsimError, match="E must be an integer"):
        g.ffn_out(*args[:3], 2.5, *args[4:])
    with pytest.raises(HwsimError, match="w2 must be"):
        g.ffn_out(*args[:4], a["W"][:, :8], *args[5:])
    with pytest.raises(HwsimError, match="residual codes"):
        g.ffn_out(*args[:6], np.full(p.hidden, 1 << 23), p)
    with pytest.raises(HwsimError, match="residual scale"):
        g.ffn_out(*args[:5], [1 << 24, 0], *args[6:])


@pytest.mark.parametrize("hidden, ffn, lanes, prod_width",
                         [pytest.param(8, 12, 4, 36, marks=pytest.mark.slow),
                          pytest.param(16, 16, 8, 40, marks=pytest.mark.slow), (4, 6, 1, 30)])
def test_silu_without_subln_bit_exact_and_cycles(hidden, ffn, lanes, prod_width):
    """The SiLU form without SubLN (shift → absmax quantizer → w2 with the row scale
    ``(amax3 << shift) · amax``): RTL == golden on every case, cycles == formula."""
    p = g.FfnOutParams(hidden=hidden, ffn=ffn, lanes=lanes, prod_width=prod_width,
                       res_width=24, act="silu", subln=False)
    assert set(g.phase_cycles(p)) == {"ffn_quant", "w2"}
    assert "gamma" not in FfnOut(p).signature.members
    cases = KERNEL.cases(p, seed=hidden)
    assert [c["name"] for c in cases] == ["random", "narrow", "zero_row", "idle_backpressure"]
    for case in cases:
        check(p, case)


def test_silu_without_subln_golden_is_the_layers_rule():
    """The golden's row scale is ``layer_forward``'s: ``act_quant_wide`` of the row, its
    ``amax << shift`` times the FFN amax; a wide row is shifted (its scale carries 2**shift)."""
    from hwsim.golden.vitallm import layer_codes as lc
    from hwsim.golden.vitallm import ternary_mvu as mvu

    p = g.FfnOutParams(hidden=8, ffn=12, lanes=4, prod_width=36, res_width=24, act="silu",
                       subln=False)
    a = KERNEL.cases(p, seed=3, quick=True)[0]["arrays"]
    am = int(a["amax"][0])
    a3, sc = lc.act_quant_wide(a["prod"][None])
    assert int(sc[0]) % (1 << 8) == 0                     # shifted: the row has > 22 bits
    acc, scale = g.w2_accumulators(a["prod"], am, None, None, a["W"], p)
    assert np.array_equal(acc, mvu.ternary_mvu_acc(a["W"], a3)[0]) and scale == int(sc[0]) * am
    want = lc.residual_add(a["x"][None], acc[None], [scale], tuple(a["mult"]), p.res)[0]
    assert np.array_equal(kf.golden_words(p, a), want)


@pytest.mark.slow
def test_silu_with_subln_uses_eps_power_2():
    """SiLU with SubLN: the divider's ε power is 2 (``silu(g)·u`` has step ∝ amax, not
    amax³); RTL == golden, cycles == formula."""
    from hwsim.golden.vitallm import eps_divider as ed
    from hwsim.golden.vitallm import layer_codes as lc

    p = g.FfnOutParams(hidden=8, ffn=12, lanes=4, prod_width=36, e_width=100, res_width=24,
                       act="silu")
    assert p.divider().power == lc.SILU_SUB_EPS_POWER == 2 and p.eps_power == 2
    cases = KERNEL.cases(p, seed=4, quick=True)
    a = cases[0]["arrays"]
    E, am = kf.e_value(a["e"]), int(a["amax"][0])
    shift = int(lc.shift_rows(a["prod"][None])[1][0])
    assert ed.eps_divide(E, shift, am, p.divider()) == lc.eps_code(E, shift, am, 2) != \
        lc.eps_code(E, shift, am, 6)
    for case in cases:
        check(p, case)


@pytest.mark.slow      # the decoder-layer's real SiLU token covers it in the default tier
def test_real_silu_decode_token_equals_the_integer_model(micro_silu_token):
    """Layer 1, the 10th token of a SiLU integer BitNet without SubLN (micro shape, the
    1bitLLM form): golden == the integer model's output residual row, RTL == golden with
    cycles == formula."""
    im, cap = micro_silu_token
    assert im.layers[1].ffn_sub is None and im.layers[1].act == "silu"
    p, case, want = kf.real_case(im, cap, 1)
    assert (p.act, p.subln, p.prod_width) == ("silu", False, 36)
    assert np.array_equal(kf.golden_words(p, case["arrays"]), want)
    check(p, case)


def test_form_params_reject_bad_input():
    with pytest.raises(HwsimError, match="act must be relu2 or silu"):
        g.FfnOutParams(act="gelu")
    with pytest.raises(HwsimError, match="SiLU form"):
        g.FfnOutParams(subln=False)
    with pytest.raises(HwsimError, match="subln must be True or False"):
        g.FfnOutParams(act="silu", subln=0)
    p = g.FfnOutParams(hidden=8, ffn=12, lanes=4, prod_width=36, res_width=24, act="silu",
                       subln=False)
    a = KERNEL.cases(p, seed=1, quick=True)[0]["arrays"]
    with pytest.raises(HwsimError, match="amax must be 0"):
        g.ffn_out(a["prod"], 1 << 24, None, None, a["W"], a["mult"], a["x"], p)
