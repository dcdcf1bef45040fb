"""Fast tier: the Amaranth LmHead (residual row → peak → shift → final RMSNorm + quantizer →
int8 head → greedy token) against the golden, on the kernel's stimulus and on the last row of
a random micro BitNet, whose greedy token the integer model chose."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.common import int8_mvu as im8
from hwsim.golden.vitallm import lm_head as g
from hwsim.golden.vitallm import norm_quant as nq
from hwsim.kernels import get_kernel
from hwsim.kernels import lm_head as kl
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.lm_head import LmHead

KERNEL = get_kernel("lm-head")


def rtl_lm_head(p, toks, idle=0.0, stall=0.0, seed=0):
    """Tokens ``toks`` (stimulus arrays sharing the head and norm) streamed back to back →
    ``([(token, logit) per token], cycles from the first x beat to the last y beat)``."""
    dut = LmHead(p)
    w = Source(dut.w, kl.w_words(toks[0], p))
    x = Source(dut.x, [b for t in toks for b in kl.x_words(t, p)], idle=idle)
    y = Sink(dut.y, len(toks), stall=stall)
    pv = kl.port_values(toks[0], p)
    run_streams(dut, [w, x], [y], seed=seed,
                settle=[(dut.gamma.as_value(), pv["gamma"]), (dut.e, pv["e"])])
    return [kl.y_fields(v, p) for v in y.values], y.cycles[-1] - x.cycles[0] + 1


def check(p, case):
    a = case["arrays"]
    idle, stall = case.get("idle", 0.0), case.get("stall", 0.0)
    (got,), cycles = rtl_lm_head(p, [a], idle, stall, case.get("seed", 0))
    assert list(got) == list(kl.golden_words(p, a)), case["name"]
    if idle == 0 and stall == 0:
        assert cycles == g.latency_cycles(p), case["name"]


@pytest.mark.parametrize("hidden, vocab, lanes, res_width",
                         [(16, 24, 8, 28), (4, 3, 1, 24)])
def test_bit_exact_and_cycles(hidden, vocab, lanes, res_width):
    p = g.LmHeadParams(hidden=hidden, vocab=vocab, lanes=lanes, res_width=res_width)
    for case in KERNEL.cases(p, seed=hidden):
        check(p, case)


def test_tie_and_last_cases_pick_what_numpy_picks():
    """The ``tie`` case has two equal largest logits (rows 1 and ``vocab − 1``): the token is
    1; the ``last`` case's largest logit is the last row's."""
    p = g.LmHeadParams(hidden=16, vocab=24, lanes=8, res_width=28)
    by = {c["name"]: c["arrays"] for c in KERNEL.cases(p, seed=2)}
    tok, logit, logits = g.lm_head(by["tie"]["x"], by["tie"]["g"], kl.e_value(by["tie"]["e"]),
                                   by["tie"]["w"], p)
    assert tok == 1 and logits[1] == logits[p.vocab - 1] == logit == logits.max()
    tok, _, _ = g.lm_head(by["last"]["x"], by["last"]["g"], kl.e_value(by["last"]["e"]),
                          by["last"]["w"], p)
    assert tok == p.vocab - 1


def test_tokens_back_to_back():
    """Three rows streamed without a gap, with back-pressure on the token beat: each token ==
    golden (the next row's norm overlaps the head; its logits wait for the token beat)."""
    p = g.LmHeadParams(hidden=16, vocab=10, lanes=4, res_width=28)
    cases = [c["arrays"] for c in KERNEL.cases(p, seed=5)[:3]]
    shared = {k: cases[0][k] for k in ("g", "e", "w")}
    toks = [{**c, **shared} for c in cases]
    got, _ = rtl_lm_head(p, toks, stall=0.5, seed=1)
    assert got == [tuple(kl.golden_words(p, t)) for t in toks]


def test_real_row_gives_the_integer_models_greedy_token(micro_model):
    """The last layer's output row of a micro integer BitNet (10 tokens, dense attention): the
    golden's token == the integer model's argmax after that row, and RTL == golden with cycles
    == formula."""
    from models.bitnet.integer_model import integer_forward

    im, tokens = micro_model
    cap: dict = {}
    logits = integer_forward(im, tokens, capture=cap)
    p, case = kl.real_case(im, cap)
    assert (p.hidden, p.vocab, p.lanes) == (32, 256, 16)
    a = case["arrays"]
    tok, _, row = g.lm_head(a["x"], a["g"], kl.e_value(a["e"]), a["w"], p)
    assert np.array_equal(row, logits[-1]) and tok == int(np.argmax(logits[-1]))
    check(p, case)


def test_formula_composes_the_units():
    p = g.LmHeadParams()
    assert g.phase_cycles(p) == {"final_norm": nq.latency_cycles(p.norm_quant()),
                                 "head": im8.latency_cycles(p.mvu()), "argmax": g.ARGMAX_DEPTH}
    assert g.latency_cycles(p) == nq.latency_cycles(p.norm_quant()) + 8 + 256 * 8 + 4 + 1


def test_params_and_golden_reject_bad_input():
    with pytest.raises(HwsimError, match="must divide hidden"):
        g.LmHeadParams(hidden=12, lanes=8)
    with pytest.raises(HwsimError, match="vocab"):
        g.LmHeadParams(vocab=1)
    with pytest.raises(HwsimError, match="needs LmHeadParams"):
        LmHead(nq.NormQuantParams())
    p = g.LmHeadParams(hidden=16, vocab=6, lanes=8, res_width=28)
    a = KERNEL.cases(p, seed=1, quick=True)[0]["arrays"]
    E = kl.e_value(a["e"])
    with pytest.raises(HwsimError, match="residual codes"):
        g.lm_head(np.full(p.hidden, 1 << 27), a["g"], E, a["w"], p)
    with pytest.raises(HwsimError, match="E must be"):
        g.lm_head(a["x"], a["g"], -1, a["w"], p)
    with pytest.raises(HwsimError, match="W must be"):
        g.lm_head(a["x"], a["g"], E, a["w"][:3], p)
    with pytest.raises(HwsimError, match="weights"):
        g.lm_head(a["x"], a["g"], E, a["w"] * 2, p)
