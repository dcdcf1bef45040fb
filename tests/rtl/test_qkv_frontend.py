"""TINT → Booth front end in Amaranth's simulator: == golden (random codes, and a real decode
token of an integer BitNet layer: == the integer model's q, k, v), cycles == formula."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden import decode_attention as gda
from hwsim.golden import qkv_frontend as spec
from hwsim.kernels import qkv_frontend as kf
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.qkv_frontend import QkvFrontend


def _run(p, case):
    a = case["arrays"]
    dut = QkvFrontend(p)
    w = Source(dut.w, kf.w_words(a, p))
    x = Source(dut.x, kf.x_words(a, p), idle=case.get("idle", 0.0))
    out = Sink(dut.out, p.elements, stall=case.get("stall", 0.0))
    pv = kf.port_values(a, p)
    settle = [(dut.amax, pv["amax"]), (dut.cos.as_value(), pv["cos"]),
              (dut.sin.as_value(), pv["sin"]), (dut.mults.as_value(), pv["mults"])]
    run_streams(dut, [w, x], [out], seed=case.get("seed", 0), settle=settle)
    got = np.array([v - 256 if v >= 128 else v for v in out.values])
    return got, out.cycles[-1] - x.cycles[0] + 1


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


def _tokens_back_to_back(p, tokens, stall, seed):
    """Tokens' x streamed back to back; each token's ``amax``/``cos``/``sin``/``mults`` are set
    when the previous token's last code is taken (the ports' contract: held until the token's
    last code; the next token's x is accepted before that). Returns (codes per token, cycle of
    the first x beat of token 1, cycle its predecessor's last code was taken)."""
    from amaranth.sim import Simulator

    dut = QkvFrontend(p)
    pvs = [kf.port_values(a, p) for a in tokens]
    ports = [dut.amax, dut.cos.as_value(), dut.sin.as_value(), dut.mults.as_value()]
    ws = kf.w_words(tokens[0], p)
    xs = [w for a in tokens for w in kf.x_words(a, p)]
    rng = np.random.default_rng(seed)
    got, x_cycles, out_cycles = [], [], []

    async def bench(ctx):
        for port, name in zip(ports, ("amax", "cos", "sin", "mults"), strict=True):
            ctx.set(port, pvs[0][name])
        for word in ws:
            ctx.set(dut.w.valid, 1)
            ctx.set(dut.w.payload, word)
            await ctx.tick().until(dut.w.ready)
        ctx.set(dut.w.valid, 0)
        cycle, sent = 0, 0
        while len(got) < len(tokens) * p.elements:
            ctx.set(dut.x.valid, sent < len(xs))
            if sent < len(xs):
                ctx.set(dut.x.payload.as_value(), xs[sent])
            ready = bool(rng.random() >= stall)
            ctx.set(dut.out.ready, ready)
            if sent < len(xs) and ctx.get(dut.x.ready):
                sent += 1
                x_cycles.append(cycle)
            if ready and ctx.get(dut.out.valid):
                got.append(int(ctx.get(dut.out.payload)))
                out_cycles.append(cycle)
            await ctx.tick()
            cycle += 1
            done = len(got)
            if done % p.elements == 0 and 0 < done < len(tokens) * p.elements \
                    and out_cycles[-1] == cycle - 1:
                for port, name in zip(ports, ("amax", "cos", "sin", "mults"), strict=True):
                    ctx.set(port, pvs[done // p.elements][name])

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    per_x = len(kf.x_words(tokens[0], p))
    return (np.array(got).reshape(len(tokens), -1), x_cycles[per_x],
            out_cycles[p.elements - 1])


@pytest.mark.parametrize("stall", [0.0, 0.5])
def test_tokens_back_to_back_with_their_own_ports(stall):
    """Three tokens, each with its own amax, position (cos, sin) and head scales, back to
    back, with and without back-pressure: every code == golden when the ports follow their
    contract (held until the token's last code), although the next token's x is accepted
    before that."""
    p = spec.QkvFrontendParams(hidden=8, heads=2, kv_heads=1, head_dim=4, lanes=8)
    cs = [c["arrays"] for c in kf.cases(p, seed=5)[:3]]
    tokens = [{**a, **{n: cs[0][n] for n in ("wq", "wk", "wv")}} for a in cs]
    got, next_x, last_out = _tokens_back_to_back(p, tokens, stall, seed=1)
    want = np.stack([kf.golden_codes(p, a) for a in tokens])
    assert np.array_equal(got, want)
    assert next_x < last_out  # the overlap the contract is about
    assert len({kf.port_values(a, p)["cos"] for a in tokens}) == 3
