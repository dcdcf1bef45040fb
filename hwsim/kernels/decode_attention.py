"""Registry entry and stimulus of the decode-step attention phase (VitaLLM decoder layer)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import decode_attention as spec

from . import CliParam, Kernel
from ._contract import latency, one_at_a_time
from .attention_head import scale_for


def manifest(p: spec.DecodeAttentionParams) -> dict:
    ap = p.attention()
    lat = latency(spec.decode_attention_cycles, p, unit="decode step", first="q beat")
    return {"kernel": "decode-attention",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "numeric": {
                "function": "hwsim.golden.vitallm.decode_attention.decode_attention: per query head h "
                            "on KV head h // (heads/kv_heads), sparse attention (hwsim.golden."
                            "sparse_attention): lo-topk keeps `keep` of the `tokens` cached "
                            "tokens, then attention-head's integer attention on them; with the "
                            "length port L < tokens: the first L tokens, keeping min(keep, L)",
                "score": {"M": {"field": "q.mult", "width": ap.mult_bits, "signed": False},
                          "S": {"field": "q.shift", "width": ap.shift_bits, "signed": False},
                          "meaning": "the head's folded score scale M * 2**-S, with its q beat",
                          "format": ap.score.to_dict()},
                "out": ap.out.to_dict(), "prob": ap.prob.to_dict(),
                "rounding": "as attention-head: half_even requantizers", "overflow": "saturate",
                "kv_beat": "a cached token's k and v rows at addr = g*tokens + token",
                "length": "L = 1 ... tokens, the tokens the step attends to (slots 0 ... L-1); "
                          "sampled with the first q beat; cycles given for L = tokens",
                "out_beat": "C = head_dim/lanes beats per head, heads in order: lanes int8 "
                            "codes and the head's amax (as attention-head)",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, unit="decode step"),
            "cycles": {"step": spec.decode_attention_cycles(p)}}


def kv_words(K, V, p: spec.DecodeAttentionParams, addrs=None) -> list[int]:
    """``kv`` stream: ``{k: d × int8, v: d × int8, addr}`` per beat; rows of ``K``, ``V``
    ((G, M, d) or (n, d)) at ``addrs`` (default ``0, 1, …``: KV head-major, token minor)."""
    d = p.head_dim
    K, V = np.asarray(K).reshape(-1, d), np.asarray(V).reshape(-1, d)
    addrs = range(K.shape[0]) if addrs is None else addrs
    return [pack_lanes(k, 8) | pack_lanes(v, 8) << (8 * d) | int(a) << (16 * d)
            for k, v, a in zip(K, V, addrs, strict=True)]


def q_words(Q, mults, p: spec.DecodeAttentionParams) -> list[int]:
    """``q`` stream: ``{q: d × int8, mult, shift}`` per head."""
    d, mb = p.head_dim, p.attention().mult_bits
    return [pack_lanes(q, 8) | int(M) << (8 * d) | int(S) << (8 * d + mb)
            for q, (M, S) in zip(np.asarray(Q), mults, strict=True)]


def arrays(q, K, V, mults, length: int | None = None) -> dict[str, np.ndarray]:
    """A case's arrays; ``length`` (the ``length`` port, ``L``) only where given."""
    out = {"Q": np.asarray(q), "K": np.asarray(K), "V": np.asarray(V),
           "mults": np.asarray(mults, dtype=np.int64)}
    return out if length is None else {**out, "length": np.asarray(length, dtype=np.int64)}


def length_of(a: dict, p) -> int:
    """The case's run-time length ``L`` (default: ``tokens``)."""
    return int(a["length"]) if "length" in a else p.tokens


def golden_words(p: spec.DecodeAttentionParams, a: dict) -> np.ndarray:
    """Golden results as the checker compares them: per head, ``d`` codes then ``amax``."""
    o, amax = spec.decode_attention(a["Q"], a["K"], a["V"], [tuple(m) for m in a["mults"]], p,
                                    length_of(a, p))
    return np.concatenate([np.append(o[h], amax[h]) for h in range(p.heads)])


def expected_cycles(p: spec.DecodeAttentionParams, a: dict) -> int:
    return spec.decode_attention_cycles(p, length_of(a, p))


def cases(p: spec.DecodeAttentionParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random codes; every key equal (top-K ties broken by index); a run-time length
    ``L = max(1, keep − 1) < tokens`` (fewer visible tokens than kept: dense on them); idle
    input + back-pressure."""
    rng = np.random.default_rng(seed)
    H, G, M, d = p.heads, p.kv_heads, p.tokens, p.head_dim

    def rnd(*shape):
        return rng.integers(-128, 128, shape)

    def case(name, q, K, V, length=None, **kw):
        mults = [scale_for(q[h][None], K[h * G // H], p.attention().mult_bits)
                 for h in range(H)]
        return {"name": name, "arrays": arrays(q, K, V, mults, length), **kw}

    out = [case("random", rnd(H, d), rnd(G, M, d), rnd(G, M, d))]
    if not quick:
        out.append(case("equal_keys", rnd(H, d), np.full((G, M, d), 7), rnd(G, M, d)))
    if M > 1:
        out.append(case("short_length", rnd(H, d), rnd(G, M, d), rnd(G, M, d),
                        length=max(1, min(p.keep - 1, M - 1))))
    out.append(case("idle_backpressure", rnd(H, d), rnd(G, M, d), rnd(G, M, d), idle=0.3,
                    stall=0.5, seed=seed + 3))
    return out


KERNEL = Kernel(
    name="decode-attention",
    top="decode_attention",
    summary="attention phase of a VitaLLM decode step: on-chip KV cache, LO top-K selector and "
            "int8 attention engine pipelined one head apart",
    params_cls=spec.DecodeAttentionParams,
    cli_params=(
        CliParam("heads", int, 4, "query heads H"),
        CliParam("kv_heads", int, 2, "KV heads G (GQA; G divides H)"),
        CliParam("head_dim", int, 16, "head dimension d"),
        CliParam("tokens", int, 16, "cached tokens M"),
        CliParam("keep", int, 4, "tokens kept per head K (K = M: dense)"),
        CliParam("lanes", int, 8, "multipliers of the attention engine"),
        CliParam("exp_lanes", int, 2, "exponential units"),
        CliParam("score_frac", int, 4, "fractional bits of the int8 scores"),
        CliParam("multiplier", str, "booth", "attention multipliers: booth (BoothFlex) or dsp"),
    ),
    component_path="rtl.vitallm.decode_attention:DecodeAttention",
    testbench="hwsim.sim.tb_decode_attention",
    golden="hwsim.golden.vitallm.decode_attention:decode_attention",
    cycles=spec.decode_attention_cycles,
    parts=("lo-topk", "attention-head"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(heads=2, kv_heads=1, head_dim=8, tokens=8, keep=3, lanes=4, exp_lanes=2),),
)
