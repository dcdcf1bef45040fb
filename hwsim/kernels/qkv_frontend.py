"""Registry entry and stimulus of the TINT → Booth front end (q, k, v of one decode token)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden import layer_codes as lc
from hwsim.golden import qkv_frontend as spec
from hwsim.golden import ternary_mvu as tm
from hwsim.golden.lanes import pack_lanes
from quant.qtype import quantize

from . import CliParam, Kernel
from ._contract import I2S_WEIGHTS, latency, one_at_a_time


def manifest(p: spec.QkvFrontendParams) -> dict:
    formula = "latency(wq MVU) + 1 + (heads + 2*kv_heads)*head_dim"
    lat = latency(spec.qkv_frontend_cycles, p, formula=formula, first="x beat",
                  last="out code")
    side = "per-token side port; see rtl.qkv_frontend.QkvFrontend for when it is sampled"
    return {"kernel": "qkv-frontend",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "numeric": {
                "function": "hwsim.golden.qkv_frontend.qkv_codes: acc = W . a exact (ternary "
                            "MVUs wq, wk, wv); q and k rotated, round_half_even((acc * cos + "
                            "rot(acc) * sin) * 2**-ROPE_FRAC), rot(v) = [-v[d/2:], v[:d/2]]; "
                            "code = sat8(round_half_even(x * amax * M_h * 2**-S_h)) per head",
                "weight_code": I2S_WEIGHTS,
                "w_order": "wq's words, then wk's, then wv's",
                "amax": {"port": "amax", "width": spec.AMAX_BITS, "signed": False,
                         "meaning": "the token's activation amax (the step of x), " + side},
                "cos_sin": {"ports": ["cos", "sin"], "format": lc.ROPE_CODE.to_dict(),
                            "count": p.head_dim,
                            "meaning": f"the token position's RoPE row, element i at bits "
                                       f"[i*{lc.ROPE_CODE.width}, (i+1)*{lc.ROPE_CODE.width}), "
                                       + side},
                "mults": {"port": "mults", "count": p.heads + 2 * p.kv_heads,
                          "layout": {"m": f"unsigned {lc.MULT_BITS} bits, low",
                                     "s": "unsigned 6 bits"},
                          "order": "q heads, then k heads, then v heads",
                          "meaning": "each head's static requantization M_h, S_h, " + side},
                "side_ports": "amax, cos, sin, mults: per-token side ports; see the component "
                              "docstring for when they are sampled",
                "rounding": "half_even", "overflow": "saturate to int8",
                "out_order": "(heads + 2*kv_heads)*head_dim codes: q (head-major), k, v",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, overlap="the next token's x is accepted while "
                                                   "this token's codes go out"),
            "cycles": {"formula": formula, "token": spec.qkv_frontend_cycles(p)}}


def w_words(a: dict, p: spec.QkvFrontendParams) -> list[int]:
    return [w for n in ("wq", "wk", "wv") for w in tm.weight_words(a[n], p.lanes)]


def x_words(a: dict, p: spec.QkvFrontendParams) -> list[int]:
    x = np.asarray(a["a"]).ravel()
    return [pack_lanes(x[c * p.lanes:(c + 1) * p.lanes], 8) for c in range(p.hidden // p.lanes)]


def port_values(a: dict, p: spec.QkvFrontendParams) -> dict[str, int]:
    """Packed values of the static ports ``amax``, ``cos``, ``sin``, ``mults``."""
    rc = lc.ROPE_CODE.width
    mults = 0
    for i, (M, S) in enumerate(np.asarray(a["mults"]).reshape(-1, 2)):
        mults |= (int(M) | int(S) << lc.MULT_BITS) << (i * (lc.MULT_BITS + 6))
    return {"amax": int(a["amax"]), "cos": pack_lanes(np.asarray(a["cos"]), rc),
            "sin": pack_lanes(np.asarray(a["sin"]), rc), "mults": mults}


def golden_codes(p: spec.QkvFrontendParams, a: dict) -> np.ndarray:
    return spec.qkv_codes({n: a[n] for n in ("wq", "wk", "wv")}, a["a"], int(a["amax"]),
                          a["cos"], a["sin"], np.asarray(a["mults"]).reshape(-1, 2), p)


def cases(p: spec.QkvFrontendParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random ternary weights and activations, a random position's RoPE row, scales chosen so
    that codes both saturate and stay inside; idle input and back-pressure."""
    rng = np.random.default_rng(seed)
    H, G, d = p.heads, p.kv_heads, p.head_dim

    def one(name, pos, **kw):
        W = {n: rng.integers(-1, 2, (p.rows(n), p.hidden)) for n in ("wq", "wk", "wv")}
        x = rng.integers(-128, 128, p.hidden)
        ang = pos / 10000.0 ** (np.arange(d // 2) * 2 / d)
        ang = np.concatenate([ang, ang])
        cos, sin = quantize(np.cos(ang), lc.ROPE_CODE), quantize(np.sin(ang), lc.ROPE_CODE)
        amax = int(rng.integers(1, 1 << 23))
        # each head's shift puts its peak |x·amax·M| at 2**6 … 2**8: some codes saturate
        acc = {n: tm.ternary_mvu_acc(W[n], x[None])[0] for n in ("wq", "wk", "wv")}
        heads = [lc.rope(acc["wq"].reshape(1, H, d), cos[None], sin[None])[0],
                 lc.rope(acc["wk"].reshape(1, G, d), cos[None], sin[None])[0],
                 acc["wv"].reshape(G, d)]
        mults = []
        for i, row in enumerate(np.concatenate(heads)):  # head 0 always saturates its peak
            M = int(rng.integers(1 << 22, 1 << 24))
            peak = max(int(np.abs(row).max()), 1) * amax * M
            extra = 1 if i == 0 else int(rng.integers(0, 2))
            mults.append((M, max(0, min(62, peak.bit_length() - 7 - extra))))
        return {"name": name, "arrays": {
            **W, "a": x, "amax": amax, "cos": cos, "sin": sin,
            "mults": np.array(mults, dtype=np.int64)}, **kw}

    out = [one("random", 3)]
    if not quick:
        out.append(one("far_position", 200))
    out.append(one("idle_backpressure", 7, idle=0.3, stall=0.5, seed=seed + 4))
    return out


KERNEL = Kernel(
    name="qkv-frontend",
    top="qkv_frontend",
    summary="TINT → Booth front end of a VitaLLM decode step: ternary q/k/v, RoPE, static int8",
    params_cls=spec.QkvFrontendParams,
    cli_params=(
        CliParam("hidden", int, 32, "activation length (hidden size)"),
        CliParam("heads", int, 2, "query heads H"),
        CliParam("kv_heads", int, 1, "KV heads G"),
        CliParam("head_dim", int, 8, "head dimension d (even)"),
        CliParam("lanes", int, 8, "ternary MVU lanes (divides hidden)"),
    ),
    component_path="rtl.qkv_frontend:QkvFrontend",
    testbench="hwsim.sim.tb_qkv_frontend",
    manifest=manifest,
    cases=cases,
)
