"""TINT → Booth front end in Amaranth's simulator: == golden (random codes, and a real decode
token of an integer BitNet layer: == the integer model's q, k, v), cycles == formula."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decode_attention as gda
from hwsim.golden.vitallm import qkv_frontend as spec
from hwsim.kernels import qkv_frontend as kf
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.qkv_frontend import QkvFrontend


def _side(dut):
    return {"amax": dut.amax, "cos": dut.cos.as_value(), "sin": dut.sin.as_value(),
            "mults": dut.mults.as_value()}


def _run(p, case):
    """A case's tokens through the RTL, each token's ``amax``/``cos``/``sin``/``mults`` driven
    with its first ``x`` beat only (:func:`hwsim.kernels.qkv_frontend.side_values`). Returns
    the codes and the first token's cycles (first ``x`` beat to its last code)."""
    a = case["arrays"]
    dut = QkvFrontend(p)
    ports = _side(dut)
    w = Source(dut.w, kf.w_words(a, p))
    x = Source(dut.x, kf.x_words(a, p), idle=case.get("idle", 0.0),
               side=[tuple((ports[n], v) for n, v in beat) for beat in kf.side_values(p, a)])
    out = Sink(dut.out, len(kf.tokens(a)) * p.elements, stall=case.get("stall", 0.0))
    run_streams(dut, [w, x], [out], seed=case.get("seed", 0))
    got = np.array([v - 256 if v >= 128 else v for v in out.values])
    return got, out.cycles[p.elements - 1] - x.cycles[0] + 1


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


def _tokens_back_to_back(p, tokens, stall, idle, seed):
    """Tokens' ``x`` streamed back to back (random idle input, random output stalls); a
    token's ``amax``/``cos``/``sin``/``mults`` are driven only while its first ``x`` beat is
    presented; in the cycle after that beat is taken they are the next token's (a host that
    moves on at once), in every other cycle random garbage. Returns the codes per token and
    the number of tokens whose first beat was taken before its predecessor's last code."""
    from amaranth.sim import Simulator

    dut = QkvFrontend(p)
    ports = _side(dut)
    widths = kf.side_widths(p)
    pvs = [kf.port_values(a, p) for a in tokens]
    C = p.hidden // p.lanes
    xs = [w for a in tokens for w in kf.x_words(a, p)]
    rng = np.random.default_rng(seed)
    got, first_x, last_out = [], [], []

    def garbage():
        return {n: int.from_bytes(rng.bytes((w + 7) // 8), "little") & ((1 << w) - 1)
                for n, w in widths.items()}

    async def bench(ctx):
        for word in kf.w_words(tokens[0], p):
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.w.payload, word)
            await ctx.tick().until(dut.w.ready)
        ctx.set(dut.w.valid, 0)
        cycle, sent, taken_first = 0, 0, None
        while len(got) < len(tokens) * p.elements:
            present = sent < len(xs) and rng.random() >= idle
            ctx.set(dut.x.valid, present)
            if present:
                ctx.set(dut.x.payload.as_value(), xs[sent])
            if present and sent % C == 0:
                vals = pvs[sent // C]
            elif taken_first is not None and taken_first + 1 < len(tokens):
                vals = pvs[taken_first + 1]
            else:
                vals = garbage()
            for n, v in vals.items():
                ctx.set(ports[n], v)
            ready = bool(rng.random() >= stall)
            ctx.set(dut.out.ready, ready)
            taken_first = None
            if present and ctx.get(dut.x.ready):
                if sent % C == 0:
                    taken_first = sent // C
                    first_x.append(cycle)
                sent += 1
            if ready and ctx.get(dut.out.valid):
                got.append(int(ctx.get(dut.out.payload)))
                if len(got) % p.elements == 0:
                    last_out.append(cycle)
            await ctx.tick()
            cycle += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    overlaps = sum(first_x[t + 1] < last_out[t] for t in range(len(tokens) - 1))
    return np.array(got).reshape(len(tokens), -1), overlaps


# corners: lanes == hidden (one x beat per token), lanes == 1, heads == kv_heads, GQA, the
# smallest head (d = 2: a whole token fits in the MVUs' pipelines, three tokens in flight)
_CORNERS = {
    "gqa": dict(hidden=16, heads=2, kv_heads=1, head_dim=4, lanes=8),
    "lanes_eq_hidden": dict(hidden=8, heads=2, kv_heads=1, head_dim=4, lanes=8),
    "lanes_1": dict(hidden=4, heads=2, kv_heads=1, head_dim=2, lanes=1),
    "mha": dict(hidden=8, heads=2, kv_heads=2, head_dim=4, lanes=4),
    "tiny_head": dict(hidden=8, heads=1, kv_heads=1, head_dim=2, lanes=8),
}


@pytest.mark.parametrize("corner", list(_CORNERS))
@pytest.mark.parametrize("stall", [0.0, 0.6])
def test_tokens_back_to_back_ports_sampled_with_first_beat(corner, stall):
    """Four tokens back to back, each with its own amax, position (cos, sin) and head
    scales, driven only with the token's first x beat (the next token's right after it,
    garbage otherwise), with and without back-pressure: every code == golden. The next
    token's first beat is taken while the current token's codes are still going out."""
    p = spec.QkvFrontendParams(**_CORNERS[corner])
    case = kf.back_to_back(p, corner, (3, 11, 200, 1), np.random.default_rng(5))
    toks = kf.tokens(case["arrays"])
    got, overlaps = _tokens_back_to_back(p, toks, stall, idle=0.2 if stall else 0.0, seed=1)
    want = np.stack([kf.golden_codes(p, a) for a in toks])
    assert np.array_equal(got, want), np.flatnonzero(got != want)
    assert overlaps >= 1  # the overlap the sampling is about
    assert len({kf.port_values(a, p)["cos"] for a in toks}) == 4
