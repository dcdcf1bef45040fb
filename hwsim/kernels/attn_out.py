"""Registry entry and stimulus of the attention output path of a decode step (v-rescale →
attention SubLN + activation quantizer, or the absmax quantizer alone without SubLN → ``wo`` →
residual add)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import attn_out as spec
from hwsim.golden.vitallm import decode_attention as gda
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import ternary_mvu as tm

from . import CliParam, Kernel
from ._contract import (
    I2S_WEIGHTS,
    NORM_QUANT,
    RESIDUAL,
    STATIC,
    latency,
    on_off,
    one_at_a_time,
    residual_mult,
)
from .norm_quant import e_limbs, e_value


def manifest(p: spec.AttnOutParams) -> dict:
    lat = latency(spec.latency_cycles, p, first="o beat", last="y code")
    wide = ("hwsim.golden.vitallm.attn_out.attn_out: v-rescale wide = round_half_even(o * amax * "
            "ratio_h * 2**-15); ")
    if p.subln:
        norm = {"function": wide + "norm-quant of the wide row (power 0); wo projection; "
                                   "residual add",
                "norm_quant": NORM_QUANT,
                "gamma": {"port": "gamma", "format": p.norm_quant().norm().gamma.to_dict(),
                          "count": p.hidden, "meaning": "SubLN gain codes; " + STATIC},
                "E": {"port": "e", "width": p.e_width, "signed": False,
                      "meaning": "SubLN eps constant (power 0); " + STATIC}}
    else:
        norm = {"function": wide + "the row shifted to NORM_IN_BITS bits (half even); absmax "
                                   "quantizer -> a, amax; wo projection; residual add with the "
                                   "row scale amax << shift"}
    return {"kernel": "attn-out",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "numeric": {
                **norm, "residual": RESIDUAL,
                "ratio": {"port": "ratio", "width": spec.RATIO_BITS, "count": p.heads,
                          "frac": lc.V_RATIO_FRAC,
                          "meaning": "each head's v step over the layer's largest; " + STATIC},
                "M_S": residual_mult("mult", "wo"),
                "weight_code": I2S_WEIGHTS,
                "rounding": "half_even", "overflow": "saturate (requantizers); the add is exact",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, overlap="the next token's rescale and norm overlap "
                                                   "this token's MVU and output stage"),
            "cycles": {"token": spec.latency_cycles(p)}}


def w_words(a: dict, p: spec.AttnOutParams) -> list[int]:
    return tm.weight_words(a["W"], p.lanes)


def o_words(a: dict, p: spec.AttnOutParams) -> list[int]:
    """``C`` beats ``{o: lanes × int8, amax}``, head-major (the attention engine's beats)."""
    o, L = np.asarray(a["o"]), p.lanes
    per_head = p.head_dim // L
    return [pack_lanes(o[c // per_head, (c % per_head) * L:(c % per_head + 1) * L], 8)
            | int(np.ravel(a["amax"])[c // per_head]) << 8 * L for c in range(p.chunks)]


def x_words(a: dict, p: spec.AttnOutParams) -> list[int]:
    mask = (1 << p.res_width) - 1
    return [int(v) & mask for v in np.ravel(a["x"])]


def port_values(a: dict, p: spec.AttnOutParams) -> dict[str, int]:
    """Packed values of the static ports ``ratio``, ``gamma``, ``e`` (SubLN only), ``mult``."""
    M, S = (int(v) for v in np.ravel(a["mult"]))
    out = {"ratio": pack_lanes(np.ravel(a["ratio"]), spec.RATIO_BITS),
           "mult": M | S << lc.MULT_BITS}
    if p.subln:
        gw = p.norm_quant().norm().gamma.width
        out |= {"gamma": pack_lanes(np.ravel(a["g"]), gw), "e": e_value(a["e"])}
    return out


def golden_words(p: spec.AttnOutParams, a: dict) -> np.ndarray:
    g, E = (a["g"], e_value(a["e"])) if p.subln else (None, None)
    return spec.attn_out(a["o"], a["amax"], a["ratio"], g, E, a["W"], a["mult"], a["x"], p)


def _mult_for(peak: int, width: int, rng, extra: int = 0) -> tuple[int, int]:
    """``(M, S)`` that bring ``peak`` (the row's largest ``|acc · amax|``) to about
    ``2**(width − 2 + extra)`` (``extra`` > 1 saturates)."""
    M = int(rng.integers(1 << 22, 1 << lc.MULT_BITS))
    S = (max(peak, 1) * M).bit_length() - (width - 2 + extra)
    return M, max(0, min((1 << spec.SHIFT_BITS) - 1, S))


def cases(p: spec.AttnOutParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random heads' outputs, amax, v-step ratios (head 0 at the largest step), SubLN gains and
    ``E``, ternary ``wo``, residual rows; scales that keep most residual codes inside and one
    case that saturates them; a row of zero heads; idle input and back-pressure. Without
    SubLN the same, with no gains or ``E`` in the cases."""
    rng = np.random.default_rng(seed)
    H, d, n = p.heads, p.head_dim, p.hidden
    nqp = p.norm_quant()
    q = nqp.norm()
    res = p.res

    def one(name, zero=False, extra=0, **kw):
        o = np.zeros((H, d), int) if zero else rng.integers(-128, 128, (H, d))
        amax = rng.integers(1, 1 << p.amax_width, H)
        ratio = rng.integers(1, (1 << lc.V_RATIO_FRAC) + 1, H)
        ratio[0] = 1 << lc.V_RATIO_FRAC
        g = rng.integers(q.gamma.min_code, q.gamma.max_code + 1, n)
        E = int(rng.integers(0, 1 << min(62, p.e_width)))
        W = rng.integers(-1, 2, (n, n))
        x = rng.integers(res.min_code // 4, res.max_code // 4 + 1, n)
        if not p.subln:
            acc, am = spec.wo_accumulators(o, amax, ratio, None, None, W, p)
            M, S = _mult_for(int(np.abs(acc).max()) * am, p.res_width, rng, extra)
            return {"name": name, **kw, "arrays": {
                "o": o, "amax": amax, "ratio": ratio, "W": W, "x": x,
                "mult": np.array([M, min(S, 62)], dtype=np.int64)}}
        acc, am = spec.wo_accumulators(o, amax, ratio, g, E, W, p)
        mult = _mult_for(int(np.abs(acc).max()) * am, p.res_width, rng, extra)
        return {"name": name, **kw, "arrays": {
            "o": o, "amax": amax, "ratio": ratio, "g": g, "e": e_limbs(E, nqp), "W": W,
            "x": x, "mult": np.array(mult, dtype=np.int64)}}

    out = [one("random")]
    if not quick:
        out += [one("saturating", extra=8), one("zero_heads", zero=True)]
    out.append(one("idle_backpressure", idle=0.3, stall=0.4, seed=seed + 5))
    return out


def real_case(im, cap: dict, layer: int, keep: int, name: str = "layer") -> tuple:
    """The last token of a captured integer-model run (``cap`` of
    :func:`models.bitnet.integer_model.integer_forward`, sparse attention with K = ``keep``):
    ``(AttnOutParams, stimulus case, the integer model's residual row after the attention
    block)``; ``subln`` the layer's."""
    L = im.layers[layer]
    c = cap[layer]
    M = c["q"].shape[0]
    ap = gda.DecodeAttentionParams(heads=im.heads, kv_heads=im.kv_heads, head_dim=im.head_dim,
                                   tokens=M, keep=keep, lanes=min(16, im.head_dim))
    sub = L.attn_sub
    p = spec.AttnOutParams(heads=im.heads, head_dim=im.head_dim,
                           lanes=int(np.gcd(im.head_dim, 16)),
                           amax_width=ap.attention().av_acc_width,
                           gamma_frac=sub.p.gamma.frac if sub else 16,
                           e_width=max(1, int(sub.eps).bit_length()) if sub else 64,
                           res_width=im.res.width, subln=sub is not None)
    arrays = {"o": c["o"][-1], "amax": c["amax"][-1],
              "ratio": np.array(lc.v_ratios(L, im.heads, im.kv_heads), dtype=np.int64),
              "W": L.proj["wo"].W, "x": c["x_in"][-1],
              "mult": np.array(L.res_mult["wo"], dtype=np.int64)}
    if sub:
        arrays |= {"g": sub.gamma, "e": e_limbs(sub.eps, p.norm_quant())}
    return p, {"name": f"{name}{layer}_pos{M - 1}", "arrays": arrays}, c["x_attn"][-1]


KERNEL = Kernel(
    name="attn-out",
    top="attn_out",
    summary="attention output path of a VitaLLM decode step: v-rescale, SubLN (integer ε) + "
            "int8 quantizer, ternary wo, residual add",
    params_cls=spec.AttnOutParams,
    cli_params=(
        CliParam("heads", int, 2, "query heads H"),
        CliParam("head_dim", int, 8, "head dimension d"),
        CliParam("lanes", int, 8, "lanes of the norm unit and the wo MVU (divides head_dim)"),
        CliParam("amax_width", int, 12, "bits of a head's output amax"),
        CliParam("gamma_frac", int, 16, "fractional bits of the SubLN gains"),
        CliParam("e_width", int, 64, "bits of the SubLN's ε constant E"),
        CliParam("res_width", int, 24, "bits of the residual codes"),
        CliParam("subln", on_off, True, "attention SubLN before wo (off: the 1bitLLM form)"),
    ),
    component_path="rtl.vitallm.attn_out:AttnOut",
    testbench="hwsim.sim.tb_attn_out",
    golden="hwsim.golden.vitallm.attn_out:attn_out",
    cycles=spec.latency_cycles,
    parts=("norm-quant", "ternary-mvu"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(heads=2, head_dim=4, lanes=2, amax_width=12, res_width=20),
                 dict(heads=2, head_dim=4, lanes=2, amax_width=12, res_width=20, subln=False)),
)
