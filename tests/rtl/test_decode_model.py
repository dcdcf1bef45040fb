"""Fast tier: the Amaranth DecodeModel (every layer of a BitNet on one time-multiplexed decoder
layer, loaded per layer, then the LM head) against the golden: the greedy token of a random
micro BitNet's last position == the integer model's argmax, cycles == formula."""

import dataclasses

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decode_model as g
from hwsim.golden.vitallm import decoder_layer as dl
from hwsim.golden.vitallm import lm_head as lh
from hwsim.kernels import decode_model as kd
from hwsim.kernels import get_kernel
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.decode_model import DecodeModel
from rtl.vitallm.decoder_layer import DecoderLayer

KERNEL = get_kernel("decode-model")


def rtl_decode_model(p, a, stall=0.0, seed=0):
    """One token: ``((token, logit), cycles from the first x beat to the y beat)``."""
    x, layers, head = kd.split(a, p)
    words = kd.layer_words(layers, p, kd.length_of(a, p))
    dut = DecodeModel(p)
    srcs = [Source(dut.hw, kd.klh.w_words(head, p.head()))]
    srcs += [Source(getattr(dut, n), words[n]) for n in g.LOAD_PORTS]
    xs = Source(dut.x, kd.x_words(x, p))
    y = Sink(dut.y, 1, stall=stall)
    pv = kd.port_values(a, p)
    run_streams(dut, [*srcs, xs], [y], seed=seed, together=True,
                settle=[(dut.head_gamma.as_value(), pv["head_gamma"]),
                        (dut.head_e, pv["head_e"]), (dut.length, pv["length"])])
    return kd.klh.y_fields(y.values[0], p.head()), y.cycles[-1] - xs.cycles[0] + 1


@pytest.mark.slow  # ~40 s; the default tier's generation test runs the same model's tokens
def test_real_token_equals_the_integer_models_greedy_choice(micro_model):
    """The 10th token of a micro integer BitNet (2 layers, sparse attention K/M = 3/10): the
    golden's layer rows == the integer model's ``x_out`` rows, its token == the integer
    model's argmax; the RTL == golden, cycles == formula."""
    from hwsim.golden.vitallm import bitnet_layer as bl
    from models.bitnet.integer_model import integer_forward

    im, tokens = micro_model
    cap: dict = {}
    logits = integer_forward(im, tokens, capture=cap, attend=bl.sparse_attend(0.3))
    p, case = kd.real_case(im, cap, keep=3)
    assert (p.layers, p.vocab, p.tokens, p.keep) == (2, 256, 10, 3)
    x, layers, head = kd.split(case["arrays"], p)
    tok, logit, rows = g.decode_model(x, [kd.kdl.golden_arrays(la) for la in layers],
                                      {"g": head["g"], "E": kd.e_value(head["e"]),
                                       "w": head["w"]}, p)
    for i, r in enumerate(rows):
        assert np.array_equal(r, cap[i]["x_out"][-1])
    assert tok == int(np.argmax(logits[-1])) and logit == logits[-1].max()
    got, cycles = rtl_decode_model(p, case["arrays"])
    assert got == (tok, logit)
    assert cycles == g.latency_cycles(p)


def test_formula_and_load_beats():
    p = KERNEL.params(**KERNEL.test_params[0])
    b = g.load_beats(p)
    q = p.layer()
    assert b["w"] == (q.hidden + 2 * q.kv_dim) * q.hidden // q.lanes
    assert b["kv"] == q.kv_heads * (q.tokens - 1)
    assert g.load_beats(p, 2)["kv"] == q.kv_heads       # a step of length 2: one cached row
    assert g.latency_cycles(p, 2) < g.latency_cycles(p)
    assert b["cfg"] == -(-sum(w for _, w in g.cfg_fields(q)) // 32)
    assert g.latency_cycles(p) == (q.chunks + p.layers * (max(b.values()) + 1)
                                 + p.layers * dl.latency_cycles(q) + lh.latency_cycles(p.head()))


@pytest.mark.parametrize("act, subln", [("relu2", True), ("silu", True), ("silu", False)])
def test_cfg_fields_are_the_layers_static_ports(act, subln):
    """The cfg layout names every static port of the decoder layer with its RTL width, in the
    2B4T form and both SiLU forms."""
    from amaranth.hdl import Shape

    q = dataclasses.replace(KERNEL.params(**KERNEL.test_params[0]).layer(), act=act, subln=subln)
    members = DecoderLayer(q).signature.members
    streams = {"w", "kv", "wo", "w1", "w3", "w2", "x", "y", "length", "kv_new"}
    ports = {n: Shape.cast(mb.shape).width for n, mb in members.items() if n not in streams}
    assert dict(g.cfg_fields(q)) == ports


def test_bad_input():
    with pytest.raises(HwsimError, match="layers"):
        g.DecodeModelParams(layers=0)
    with pytest.raises(HwsimError, match="vocab"):
        g.DecodeModelParams(vocab=1)
    with pytest.raises(HwsimError, match="needs DecodeModelParams"):
        DecodeModel(dl.DecoderLayerParams())
    p = KERNEL.params(**KERNEL.test_params[0])
    (case,) = KERNEL.cases(p, seed=1, quick=True)
    x, layers, head = kd.split(case["arrays"], p)
    with pytest.raises(HwsimError, match="2 layers"):
        g.decode_model(x, [kd.kdl.golden_arrays(layers[0])], head, p)
    narrow = dataclasses.replace(p, res_width=12)
    with pytest.raises(HwsimError, match=r"outside int12|exceeds 12 bits"):
        g.decode_model(x, [kd.kdl.golden_arrays(la) for la in layers],
                       {"g": head["g"], "E": kd.e_value(head["e"]), "w": head["w"]}, narrow)
    with pytest.raises(HwsimError, match="does not fit"):
        g.cfg_words({n: 1 << b for n, b in g.cfg_fields(p.layer())}, p.layer())


def test_layers_share_their_gain_formats():
    """Trained layers have different gain peaks; the integer model gives each kind of norm one
    format for all layers (one datapath runs them), so every layer fits the same
    ``decode-model`` parameters."""
    import torch

    from hwsim.golden.vitallm import bitnet_layer as bl
    from models.bitnet.config import BitNetConfig
    from models.bitnet.integer_model import build_integer_model, integer_forward
    from models.bitnet.model import BitNetModel

    cfg = BitNetConfig("micro", hidden=32, ffn=64, layers=2, heads=4, kv_heads=2, vocab=64,
                       max_seq=16, source="tests")
    torch.manual_seed(5)
    model = BitNetModel(cfg).eval()
    with torch.no_grad():
        model.layers[1].attn_norm.weight.mul_(5.0)       # a peak two binades above layer 0's
        model.layers[0].ffn.sub_norm.weight.mul_(0.2)
    rng = np.random.default_rng(5)
    im = build_integer_model(model, rng.integers(0, 64, (2, 8)))
    assert im.layers[0].attn_norm.p == im.layers[1].attn_norm.p
    assert im.layers[0].ffn_sub.p == im.layers[1].ffn_sub.p
    cap: dict = {}
    integer_forward(im, rng.integers(0, 64, 6), capture=cap, attend=bl.sparse_attend(0.5))
    p, _ = kd.real_case(im, cap, keep=3)
    assert p.norm_gamma_frac == im.layers[1].attn_norm.p.gamma.frac


def _generate(micro_model, prompt_len, new_tokens):
    from hwsim.sim.generate import generate

    im, tokens = micro_model
    return generate(im, tokens[:prompt_len], new_tokens, keep=3)


@pytest.mark.slow  # ~50 s; decode-model itself is checked by default (registry stimulus)
def test_generates_tokens_on_the_rtl(micro_model):
    """Two greedy tokens after a one-token prompt (steps of length 1 and 2), the KV caches built
    from the design's own kv_new rows: every token, key and value == the integer model's,
    every step's cycles == the formula at its length."""
    r = _generate(micro_model, 1, 2)
    assert r["tokens_equal_golden"] and r["generated"] == r["golden_generated"]
    assert r["kv_equal_golden"] and r["cycles_equal_formula"]
    assert len(r["cycles"]) == 2 and r["cycles"][0] < r["cycles"][1]


@pytest.mark.slow
def test_generates_past_the_selector_budget(micro_model):
    """Three tokens after a three-token prompt with K = 3: the last steps see more tokens than
    the selector keeps (sparse attention on the RTL's own cache)."""
    r = _generate(micro_model, 3, 3)
    assert r["tokens_equal_golden"] and r["kv_equal_golden"] and r["cycles_equal_formula"]
    assert r["capacity"] == 5 and len(r["generated"]) == 3


def test_the_silu_form_without_subln():
    """The 1bitLLM form (``act="silu"``, ``subln=False``) on the registry's stimulus: the cfg
    words carry the gate's requantizer and no SubLN ports; token == golden, cycles == formula."""
    p = KERNEL.params(**KERNEL.test_params[0], act="silu", subln=False)
    (case,) = KERNEL.cases(p, seed=2, quick=True)
    got, cycles = rtl_decode_model(p, case["arrays"])
    assert got == tuple(kd.golden_words(p, case["arrays"]))
    assert cycles == g.latency_cycles(p)
