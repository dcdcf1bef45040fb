"""Fast tier: the Amaranth FfnIn (residual row → peak → shift → FFN RMSNorm + quantizer →
w1, w3 → relu(g)²·u) against the golden, on the kernel's stimulus and on a real decode token
of a random micro BitNet."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.golden.vitallm import ffn_in as g
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.golden.vitallm import ternary_mvu as mvu
from hwsim.kernels import ffn_in as ka
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.ffn_in import FfnIn
from rtl.vitallm.relu2_mul import Relu2Mul
from rtl.vitallm.row_shift import RowShift
from rtl.vitallm.silu_mul import SiluMul

KERNEL = get_kernel("ffn-in")


def rtl_ffn_in(p, toks, idle=0.0, stall=0.0, seed=0):
    """Tokens ``toks`` (stimulus arrays sharing weights and norm) streamed back to back →
    ``(checker words per token, cycles from the first x beat to the last y beat)``."""
    dut = FfnIn(p)
    w1 = Source(dut.w1, ka.w1_words(toks[0], p))
    w3 = Source(dut.w3, ka.w3_words(toks[0], p))
    x = Source(dut.x, [b for t in toks for b in ka.x_words(t, p)], idle=idle)
    y = Sink(dut.y, p.ffn * len(toks), stall=stall)
    res = Sink(dut.res, p.hidden * len(toks), stall=stall)
    settle = [(getattr(dut, k).as_value() if k == "gamma" else getattr(dut, k), v)
              for k, v in ka.port_values(toks[0], p).items()]
    run_streams(dut, [w1, w3, x], [y, res], seed=seed, settle=settle)
    fields = np.array([ka.y_fields(v, p) for v in y.values], dtype=object).reshape(-1, 2)
    words = []
    for t in range(len(toks)):
        rows = slice(t * p.ffn, (t + 1) * p.ffn)
        words.append(np.concatenate([fields[rows, 0].astype(np.int64),
                                     fields[rows, 1].astype(np.int64),
                                     np.array(res.values[t * p.hidden:(t + 1) * p.hidden])]))
    return words, y.cycles[-1] - x.cycles[0] + 1


def check(p, case):
    a = case["arrays"]
    idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
    (got,), cycles = rtl_ffn_in(p, [a], idle, stall, case.get("seed", 0))
    assert np.array_equal(got, ka.golden_words(p, a)), case["name"]
    if idle == 0 and stall == 0:
        assert cycles == g.latency_cycles(p), case["name"]


@pytest.mark.parametrize("hidden, ffn, lanes, res_width, act",
                         [(16, 12, 8, 28, "relu2"), (12, 5, 4, 40, "relu2"), (4, 3, 1, 24, "relu2"),
                          pytest.param(16, 24, 8, 28, "silu", marks=pytest.mark.slow),
                          (4, 3, 1, 24, "silu")])
def test_bit_exact_and_cycles(hidden, ffn, lanes, res_width, act):
    p = g.FfnInParams(hidden=hidden, ffn=ffn, lanes=lanes, res_width=res_width, act=act)
    for case in KERNEL.cases(p, seed=hidden):
        check(p, case)


def test_extreme_case_reaches_wide_products():
    """The ``extreme`` case's first rows give ``g = u = Σ|a|`` (product ``Σ|a|³``) and
    ``u = −g`` (its negative): above 24 bits at hidden 16, inside ``prod_width``."""
    p = g.FfnInParams(hidden=16, ffn=12, lanes=8, res_width=28)
    (case,) = [c for c in KERNEL.cases(p, seed=3) if c["name"] == "extreme"]
    prod, _ = g.ffn_in(case["arrays"]["x"], case["arrays"]["g"], ka.e_value(case["arrays"]["e"]),
                       case["arrays"]["w1"], case["arrays"]["w3"], p)
    assert prod[0] == -prod[1] > 1 << 24
    assert int(prod[0]).bit_length() < p.prod_width


def test_tokens_back_to_back():
    """Three residual rows streamed without a gap with back-pressure (a row's MVU input waits
    until the previous row's last prod has left): each token's words == golden."""
    p = g.FfnInParams(hidden=16, ffn=6, lanes=4, res_width=28)
    cases = [c["arrays"] for c in KERNEL.cases(p, seed=5)[:3]]
    shared = {k: cases[0][k] for k in ("g", "e", "w1", "w3")}
    toks = [{**c, **shared} for c in cases]
    got, _ = rtl_ffn_in(p, toks, stall=0.2, seed=1)
    for t, want in zip(got, toks, strict=True):
        assert np.array_equal(t, ka.golden_words(p, want))


def test_real_decode_token_equals_the_integer_model(micro_token):
    """Layer 1, the 10th token of an integer BitNet (micro shape, random ternary weights,
    sparse attention K/M = 3/10): golden == the integer model's prod row and FFN amax
    (``layer_forward``'s captures), and the RTL == golden with cycles == formula."""
    im, cap = micro_token
    p, case, (prod, amax) = ka.real_case(im, cap, 1)
    assert (p.hidden, p.ffn, p.lanes, p.res_width) == (32, 64, 16, im.res.width)
    a = case["arrays"]
    assert np.array_equal(ka.golden_words(p, a),
                          np.concatenate([prod, np.full(p.ffn, amax), a["x"]]))
    check(p, case)


def test_formula_composes_the_units():
    p = g.FfnInParams()
    assert (p.mvu().acc_width, p.prod_width) == (16, 44)
    assert g.phase_cycles(p) == {"ffn_norm": nq.latency_cycles(p.norm_quant()),
                                 "w1_w3": mvu.latency_cycles(p.mvu()) + g.RELU2_DEPTH}
    assert g.latency_cycles(p) == 186 + 2828 + 2


def test_params_and_golden_reject_bad_input():
    with pytest.raises(HwsimError, match="must divide hidden"):
        g.FfnInParams(hidden=12, lanes=8)
    with pytest.raises(HwsimError, match="res_width"):
        g.FfnInParams(res_width=1)
    with pytest.raises(HwsimError, match="> 64"):
        g.FfnInParams(hidden=1 << 16, lanes=16)
    with pytest.raises(HwsimError, match="needs FfnInParams"):
        FfnIn(dl.DecoderLayerParams())
    with pytest.raises(HwsimError, match="Relu2Mul"):
        Relu2Mul(16, 40, 1 << 14)
    with pytest.raises(HwsimError, match="SiluMul"):
        SiluMul(16, 37, 1 << 14, 24)
    with pytest.raises(HwsimError, match="act must be relu2 or silu"):
        g.FfnInParams(act="gelu")
    with pytest.raises(HwsimError, match="RowShift"):
        RowShift(nq.NormQuantParams(shift_width=1), 48)
    with pytest.raises(HwsimError, match="RowShift"):
        RowShift(nq.NormQuantParams(), "48")
    p = g.FfnInParams(hidden=16, ffn=12, lanes=8, res_width=28)
    a = KERNEL.cases(p, seed=1, quick=True)[0]["arrays"]
    E = ka.e_value(a["e"])
    with pytest.raises(HwsimError, match="residual codes"):
        g.ffn_in(np.full(p.hidden, 1 << 27), a["g"], E, a["w1"], a["w3"], p)
    with pytest.raises(HwsimError, match="16 residual codes"):
        g.ffn_in(a["x"][:8], a["g"], E, a["w1"], a["w3"], p)
    with pytest.raises(HwsimError, match="E must be"):
        g.ffn_in(a["x"], a["g"], -1, a["w1"], a["w3"], p)
    with pytest.raises(HwsimError, match="w3 must be"):
        g.ffn_in(a["x"], a["g"], E, a["w1"], a["w3"][:3], p)
    ps = g.FfnInParams(hidden=16, ffn=12, lanes=8, res_width=28, act="silu")
    for gate in (None, (1 << 24, 3), (5, 64), (5.0, 3)):
        with pytest.raises(HwsimError, match="silu needs gate"):
            g.ffn_in(a["x"], a["g"], E, a["w1"], a["w3"], ps, gate)


def test_silu_formula_and_stimulus():
    """The SiLU unit adds one stage to the relu² unit's two; the stimulus drives the gate
    through the table's domain on both signs and, in the extreme case, into saturation."""
    p = g.FfnInParams(act="silu")
    assert (p.prod_width, p.gated_depth) == (38, g.SILU_DEPTH) == (38, 3)   # 2**23 · 2**14
    assert g.latency_cycles(p) == g.latency_cycles(g.FfnInParams()) + 1
    ps = g.FfnInParams(hidden=16, ffn=24, lanes=8, res_width=28, act="silu")
    for case in KERNEL.cases(ps, seed=16):
        a = case["arrays"]
        an, amax = nq.norm_quant_row(a["x"], a["g"], ka.e_value(a["e"]), ps.norm_quant())
        gx = lc.silu_gate(mvu.ternary_mvu_acc(a["w1"], an)[None], [amax], tuple(a["gate"]))
        if case["name"] == "extreme":
            assert gx.max() == lc.GATE.max_code
        else:
            assert gx.min() < -(1 << lc.SILU_LUT_BITS - 2) and gx.max() > 1 << lc.SILU_LUT_BITS


def test_decode_cycles_take_ffn_norm_and_w1_w3_from_ffn_in():
    p = dl.DecoderLayerParams(keep=128)
    c, ph = dl.decode_cycles(p), g.phase_cycles(p.ffn_in())
    assert ph == {"ffn_norm": 186, "w1_w3": 2830}
    assert sum(ph.values()) == g.latency_cycles(p.ffn_in())
    assert p.ffn_in().norm_quant().norm() == p.norm_quant(p.hidden).norm()
    # chained behind attn-layer (decoder-layer), the C row beats overlap attn-out's codes
    assert (c["ffn_norm"], c["w1_w3"]) == (ph["ffn_norm"] - p.hidden // p.lanes, ph["w1_w3"])
    # the two MVUs in parallel: one w1-sized MVU's latency, not w1's + w3's
    assert c["w1_w3"] == mvu.latency_cycles(p.mvu("w1")) + g.RELU2_DEPTH
    assert c["total"] == 12378  # decoder-layer: ffn_norm 178 (the schedule model had 186)
