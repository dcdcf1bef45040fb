"""Registry entry and stimulus of the TINT → Booth front end (q, k, v of one decode token)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import qkv_frontend as spec
from hwsim.golden.vitallm import ternary_mvu as tm
from quant.qtype import quantize

from . import CliParam, Kernel
from ._contract import I2S_WEIGHTS, latency, one_at_a_time


def manifest(p: spec.QkvFrontendParams) -> dict:
    lat = latency(spec.qkv_frontend_cycles, p, first="x beat", last="out code")
    side = ("per-token side port, sampled with the token's first x beat (free to change once "
            "that beat is accepted)")
    return {"kernel": "qkv-frontend",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "numeric": {
                "function": "hwsim.golden.vitallm.qkv_frontend.qkv_codes: acc = W . a exact (ternary "
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
                "side_ports": "amax, cos, sin, mults: per-token side ports, sampled with the "
                              "token's first x beat and held inside for its codes",
                "rounding": "half_even", "overflow": "saturate to int8",
                "out_order": "(heads + 2*kv_heads)*head_dim codes: q (head-major), k, v",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, overlap="the next token's x is accepted while "
                                                   "this token's codes go out"),
            "cycles": {"token": spec.qkv_frontend_cycles(p)}}


def w_words(a: dict, p: spec.QkvFrontendParams) -> list[int]:
    return [w for n in ("wq", "wk", "wv") for w in tm.weight_words(a[n], p.lanes)]


def tokens(a: dict) -> list[dict]:
    """A case's tokens, each a single-token arrays dict: a case holds one token (``a`` of
    ``hidden`` codes) or several back to back (``a`` (T, hidden), ``amax`` (T,), ``cos``,
    ``sin`` (T, d), ``mults`` (T, H + 2G, 2)), all with the same weights."""
    if np.ndim(a["a"]) == 1:
        return [a]
    return [{**{n: a[n] for n in ("wq", "wk", "wv")},
             **{n: np.asarray(a[n])[t] for n in ("a", "amax", "cos", "sin", "mults")}}
            for t in range(np.shape(a["a"])[0])]


def x_words(a: dict, p: spec.QkvFrontendParams) -> list[int]:
    """The ``x`` beats of a case's tokens, ``hidden/lanes`` per token."""
    return [pack_lanes(x[c * p.lanes:(c + 1) * p.lanes], 8)
            for x in (np.asarray(t["a"]).ravel() for t in tokens(a))
            for c in range(p.hidden // p.lanes)]


def port_values(a: dict, p: spec.QkvFrontendParams) -> dict[str, int]:
    """Packed values of a token's ports ``amax``, ``cos``, ``sin``, ``mults`` (sampled with its
    first ``x`` beat)."""
    rc = lc.ROPE_CODE.width
    mults = 0
    for i, (M, S) in enumerate(np.asarray(a["mults"]).reshape(-1, 2)):
        mults |= (int(M) | int(S) << lc.MULT_BITS) << (i * (lc.MULT_BITS + 6))
    return {"amax": int(a["amax"]), "cos": pack_lanes(np.asarray(a["cos"]), rc),
            "sin": pack_lanes(np.asarray(a["sin"]), rc), "mults": mults}


def side_widths(p: spec.QkvFrontendParams) -> dict[str, int]:
    """Bits of the per-token ports ``amax``, ``cos``, ``sin``, ``mults``."""
    rc = lc.ROPE_CODE.width
    return {"amax": spec.AMAX_BITS, "cos": rc * p.head_dim, "sin": rc * p.head_dim,
            "mults": (lc.MULT_BITS + 6) * (p.heads + 2 * p.kv_heads)}


def side_values(p: spec.QkvFrontendParams, a: dict) -> list[tuple[tuple[str, int], ...]]:
    """Per ``x`` beat, the ``amax``, ``cos``, ``sin``, ``mults`` a host drives with it: the
    token's own on its first beat (where the RTL samples them), the next token's on the beat
    after (a host that moves on as soon as the first beat is taken) and the bitwise
    complement of the token's own on the other beats; after a token's last beat they hold
    what its last beat drove. An RTL that reads them later than the first beat is caught."""
    pvs = [port_values(t, p) for t in tokens(a)]
    masks = {n: (1 << w) - 1 for n, w in side_widths(p).items()}
    C = p.hidden // p.lanes
    out = []
    for i, pv in enumerate(pvs):
        for k in range(C):
            if k == 0:
                vals = pv
            elif k == 1 and i + 1 < len(pvs):
                vals = pvs[i + 1]
            else:
                vals = {n: ~v & masks[n] for n, v in pv.items()}
            out.append(tuple(vals.items()))
    return out


def golden_codes(p: spec.QkvFrontendParams, a: dict) -> np.ndarray:
    """The golden codes of a case's tokens, token after token."""
    return np.concatenate([
        spec.qkv_codes({n: t[n] for n in ("wq", "wk", "wv")}, t["a"], int(t["amax"]),
                       t["cos"], t["sin"], np.asarray(t["mults"]).reshape(-1, 2), p)
        for t in tokens(a)])


def _token_maker(p: spec.QkvFrontendParams, rng: np.random.Generator):
    """``one(name, pos, W=None, **kw)``: a one-token case (random weights unless ``W`` is
    given), its position's RoPE row, scales chosen so that codes both saturate and stay
    inside."""
    H, G, d = p.heads, p.kv_heads, p.head_dim

    def one(name, pos, W=None, **kw):
        if W is None:
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

    return one


def one_token_cases(p: spec.QkvFrontendParams, seed: int = 0,
                    quick: bool = False) -> list[dict]:
    """One token per case: random ternary weights and activations, a random position's RoPE
    row, scales chosen so that codes both saturate and stay inside; idle input and
    back-pressure (the decode step's stimulus builds on these)."""
    one = _token_maker(p, np.random.default_rng(seed))
    out = [one("random", 3)]
    if not quick:
        out.append(one("far_position", 200))
    out.append(one("idle_backpressure", 7, idle=0.3, stall=0.5, seed=seed + 4))
    return out


def back_to_back(p: spec.QkvFrontendParams, name: str, positions, rng: np.random.Generator,
                 **kw) -> dict:
    """Tokens back to back on one set of weights, each with its own activations, ``amax``,
    position (``cos``, ``sin``) and head scales (:func:`tokens` describes the arrays)."""
    one = _token_maker(p, rng)
    first = one(name, positions[0], **kw)
    W = {n: first["arrays"][n] for n in ("wq", "wk", "wv")}
    toks = [first["arrays"]] + [one(name, pos, W)["arrays"] for pos in positions[1:]]
    return {**first, "arrays": {**W, **{n: np.stack([np.asarray(t[n]) for t in toks])
                                        for n in ("a", "amax", "cos", "sin", "mults")}}}


def cases(p: spec.QkvFrontendParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """:func:`one_token_cases`, then tokens back to back, each with its own ``amax``, ``cos``,
    ``sin``, ``mults`` driven with its first ``x`` beat only (:func:`side_values`):

    * ``tokens_back_to_back``: 3 tokens, no idle input, no back-pressure (the first token's
      cycles checked);
    * ``tokens_stall50`` / ``tokens_stall90``: 4 tokens under 50 % output stalls and 20 % idle
      input / 90 % output stalls — the next token's first beat is taken while the current
      token's codes are held back, and must not change them.
    """
    rng = np.random.default_rng(seed + 1000)
    out = one_token_cases(p, seed, quick)
    out.append(back_to_back(p, "tokens_back_to_back", (3, 11, 200), rng))
    out.append(back_to_back(p, "tokens_stall50", (5, 6, 90, 1), rng, idle=0.2, stall=0.5,
                            seed=seed + 21))
    if not quick:
        out.append(back_to_back(p, "tokens_stall90", (2, 40, 7, 300), rng, stall=0.9,
                                seed=seed + 23))
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
    component_path="rtl.vitallm.qkv_frontend:QkvFrontend",
    testbench="hwsim.sim.tb_qkv_frontend",
    golden="hwsim.golden.vitallm.qkv_frontend:qkv_codes",
    cycles=spec.qkv_frontend_cycles,
    parts=("ternary-mvu",),
    manifest=manifest,
    cases=cases,
    test_params=(dict(hidden=16, heads=2, kv_heads=1, head_dim=4, lanes=8),),
)
