"""Registry entry and stimulus of the attention block of a decode step (front end + KV append
+ attention phase)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import unpack_lanes
from hwsim.golden.vitallm import decode_step as spec
from hwsim.golden.vitallm import qkv_frontend as gqf

from . import CliParam, Kernel
from . import decode_attention as da
from . import qkv_frontend as fe
from ._contract import latency, one_at_a_time
from .attention_head import scale_for


def manifest(p: spec.DecodeStepParams) -> dict:
    ap = p.attention_phase().attention()
    lat = latency(spec.decode_step_cycles, p, unit="decode step",
                  first="x beat")
    return {"kernel": "decode-step",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "numeric": {
                "function": "hwsim.golden.vitallm.decode_step.decode_step_attention: qkv-frontend "
                            "codes of the token; its k, v rows written at slot L - 1 of each KV "
                            "head (L = the length port, default tokens); decode-attention of "
                            "the heads' q rows over L tokens",
                "front_end": "as qkv-frontend (w, x, amax, cos, sin, mults)",
                "attention": "as decode-attention (kv, out)",
                "score": {"port": "score", "count": p.heads,
                          "layout": {"m": f"unsigned {ap.mult_bits} bits, low",
                                     "s": f"unsigned {ap.shift_bits} bits"},
                          "meaning": "each query head's score scale m * 2**-s; hold it over "
                                     "the step"},
                "rounding": "half_even (as its parts)", "overflow": "saturate (as its parts)",
                "kv_load": "the host writes the L - 1 earlier tokens of every KV head on "
                           "kv before the step (not during it)",
                "length": "L = 1 ... tokens, the tokens the step attends to, itself included; "
                          "hold it over the step; cycles given for L = tokens",
                "kv_new": "valid-only tap, no ready: G consecutive cycles (head 0 first) with "
                          "the new k, v rows of KV head `head` as they are written at slot L-1",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, unit="decode step"),
            "cycles": {"step": spec.decode_step_cycles(p)}}


def cache_words(a: dict, p: spec.DecodeStepParams) -> list[int]:
    """The host's cache load: the earlier tokens of every KV head (``a["K"]``, ``a["V"]``:
    (G, n, d), ``n ≤ M − 1``, written at slots ``0 … n − 1``)."""
    G, M, d = p.kv_heads, p.tokens, p.head_dim
    K = np.asarray(a["K"]).reshape(G, -1, d)
    addrs = [g * M + t for g in range(G) for t in range(K.shape[1])]
    return da.kv_words(K.reshape(-1, d), np.asarray(a["V"]).reshape(-1, d),
                       p.attention_phase(), addrs)


def port_values(a: dict, p: spec.DecodeStepParams) -> dict[str, int]:
    ap = p.attention_phase().attention()
    score = 0
    for h, (M, S) in enumerate(np.asarray(a["score_mults"]).reshape(-1, 2)):
        score |= (int(M) | int(S) << ap.mult_bits) << (h * (ap.mult_bits + ap.shift_bits))
    return {**fe.port_values(a, p.frontend()), "score": score, "length": da.length_of(a, p)}


def kv_new_fields(word: int, p: spec.DecodeStepParams) -> tuple[int, np.ndarray, np.ndarray]:
    """A ``kv_new`` value (``{valid, head, k, v}``, valid lowest) → ``(head, k, v)``."""
    hb, d = max(1, (p.kv_heads - 1).bit_length()), p.head_dim
    return ((word >> 1) & ((1 << hb) - 1), unpack_lanes(word >> (1 + hb), 8, d),
            unpack_lanes(word >> (1 + hb + 8 * d), 8, d))


def golden_words(p: spec.DecodeStepParams, a: dict) -> np.ndarray:
    o, amax = spec.decode_step_attention(a, p, da.length_of(a, p))
    return np.concatenate([np.append(o[h], amax[h]) for h in range(p.heads)])


def expected_cycles(p: spec.DecodeStepParams, a: dict) -> int:
    return spec.decode_step_cycles(p, da.length_of(a, p))


def cases(p: spec.DecodeStepParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Front-end stimulus (:func:`hwsim.kernels.qkv_frontend.one_token_cases`) plus a random
    earlier cache and score scales from the q and k codes' spread; the first case again at a
    run-time length ``L = max(1, keep − 1) < tokens`` (``short_length``)."""
    rng = np.random.default_rng(seed + 100)
    H, G, M, d = p.heads, p.kv_heads, p.tokens, p.head_dim
    out = []
    for c in fe.one_token_cases(p.frontend(), seed, quick):
        a = dict(c["arrays"])
        a["K"] = rng.integers(-128, 128, (G, M - 1, d))
        a["V"] = rng.integers(-128, 128, (G, M - 1, d))
        codes = gqf.qkv_codes({n: a[n] for n in ("wq", "wk", "wv")}, a["a"], a["amax"],
                              a["cos"], a["sin"], a["mults"], p.frontend())
        q8 = codes[:H * d].reshape(H, d)
        mb = p.attention_phase().attention().mult_bits
        a["score_mults"] = np.array([scale_for(q8[h][None], a["K"][h * G // H], mb)
                                     for h in range(H)], dtype=np.int64)
        out.append({**c, "arrays": a})
    if M > 1:
        short = max(1, min(p.keep - 1, M - 1))
        out.append({"name": "short_length",
                    "arrays": {**out[0]["arrays"], "length": np.asarray(short)}})
    return out


KERNEL = Kernel(
    name="decode-step",
    top="decode_step",
    summary="attention block of a VitaLLM decode step: ternary q/k/v, RoPE, static int8, KV "
            "append, LO top-K + int8 attention pipelined by head",
    params_cls=spec.DecodeStepParams,
    cli_params=(
        CliParam("hidden", int, 32, "activation length"),
        CliParam("heads", int, 2, "query heads H"),
        CliParam("kv_heads", int, 1, "KV heads G"),
        CliParam("head_dim", int, 8, "head dimension d"),
        CliParam("tokens", int, 8, "cached tokens M (the new one included)"),
        CliParam("keep", int, 3, "tokens kept per head K"),
        CliParam("lanes", int, 8, "MVU and attention lanes"),
        CliParam("exp_lanes", int, 2, "exponential units"),
        CliParam("score_frac", int, 4, "fractional bits of the int8 scores"),
    ),
    component_path="rtl.vitallm.decode_step:DecodeStep",
    testbench="hwsim.sim.tb_decode_step",
    golden="hwsim.golden.vitallm.decode_step:decode_step_attention",
    cycles=spec.decode_step_cycles,
    parts=("qkv-frontend", "decode-attention"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(hidden=16, heads=2, kv_heads=1, head_dim=4, tokens=6, keep=2, lanes=4,
                      exp_lanes=2),),
)
