"""Registry entry and stimulus of the attention half of a decoder layer (residual row → peak →
shift → attention RMSNorm + quantizer → decode step → output path → residual row)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import attn_layer as spec
from hwsim.golden.vitallm import attn_out as ao
from hwsim.golden.vitallm import decode_step as gds
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import qkv_frontend as gqf
from hwsim.golden.vitallm import ternary_mvu as tm

from . import CliParam, Kernel
from . import attn_out as kao
from . import decode_attention as kda
from . import decode_step as kds
from . import qkv_frontend as kfe
from ._contract import NORM_QUANT, RESIDUAL, STATIC, latency, on_off, one_at_a_time
from .attention_head import scale_for
from .norm_quant import e_limbs, e_value


def manifest(p: spec.AttnLayerParams) -> dict:
    lat = latency(spec.latency_cycles, p, first="x beat", last="y code")
    return {"kernel": "attn-layer",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "numeric": {
                "function": "hwsim.golden.vitallm.attn_layer.attn_layer: norm-quant of the residual "
                            "row (power 0) -> a, amax; decode-step (qkv-frontend, KV append, "
                            "decode-attention); attn-out (v-rescale, SubLN + quantizer, wo, "
                            "residual add into x)",
                "norm_quant": NORM_QUANT, "residual": RESIDUAL,
                "norm": {"gamma": {"port": "norm_gamma", "count": p.hidden},
                         "E": {"port": "norm_e", "width": p.norm_e_width},
                         "meaning": "attention RMSNorm gains and eps constant; " + STATIC},
                "decode_step": "as decode-step: w, kv, cos, sin, mults, score, length, kv_new "
                               "(amax internal)",
                "attn_out": "as attn-out: wo (its w), ratio, sub_gamma (gamma), sub_e (e), "
                            "res_mult (mult)",
                "rounding": "half_even", "overflow": "saturate (requantizers); the add is exact",
            },
            "latency": lat,
            "interval": one_at_a_time(lat),
            "cycles": {"phases": spec.phase_cycles(p), "token": spec.latency_cycles(p)}}


def _ds_arrays(a: dict) -> dict:
    return {"K": a["K"], "V": a["V"], "score_mults": a["score_mults"],
            **{n: a[n] for n in ("wq", "wk", "wv", "cos", "sin", "mults", "length") if n in a}}


def golden_arrays(a: dict) -> dict:
    """The stimulus arrays as :func:`hwsim.golden.vitallm.attn_layer.attn_layer` takes them (the ε
    constants as integers)."""
    return {**a, "norm_E": e_value(a["norm_e"]),
            **({"sub_E": e_value(a["sub_e"])} if "sub_e" in a else {})}


def w_words(a: dict, p: spec.AttnLayerParams) -> list[int]:
    """The q, k, v weight words (:func:`hwsim.kernels.qkv_frontend.w_words`)."""
    return kfe.w_words(a, p.decode_step().frontend())


def wo_words(a: dict, p: spec.AttnLayerParams) -> list[int]:
    return tm.weight_words(a["wo"], p.lanes)


def cache_words(a: dict, p: spec.AttnLayerParams) -> list[int]:
    return kds.cache_words(a, p.decode_step())


def x_words(a: dict, p: spec.AttnLayerParams) -> list[int]:
    """``C`` beats of ``lanes`` residual codes."""
    x, L = np.ravel(a["x"]), p.lanes
    return [pack_lanes(x[c * L:(c + 1) * L], p.res_width) for c in range(p.chunks)]


def port_values(a: dict, p: spec.AttnLayerParams) -> dict[str, int]:
    """Packed values of the static ports."""
    ds = kds.port_values({**_ds_arrays(a), "amax": 0}, p.decode_step())
    out = kao.port_values({k: a[v] for k, v in (("ratio", "ratio"), ("g", "sub_g"),
                                                ("e", "sub_e"), ("mult", "mult")) if v in a},
                          p.attn_out())
    gw = p.norm_quant().norm().gamma.width
    return {**{k: ds[k] for k in ("cos", "sin", "mults", "score", "length")},
            "norm_gamma": pack_lanes(np.ravel(a["norm_g"]), gw),
            "norm_e": e_value(a["norm_e"]), "ratio": out["ratio"],
            **({"sub_gamma": out["gamma"], "sub_e": out["e"]} if p.subln else {}),
            "res_mult": out["mult"]}


def golden_words(p: spec.AttnLayerParams, a: dict) -> np.ndarray:
    return spec.attn_layer(golden_arrays(a), p, kda.length_of(a, p))


def expected_cycles(p: spec.AttnLayerParams, a: dict) -> int:
    return spec.latency_cycles(p, kda.length_of(a, p))


def cases(p: spec.AttnLayerParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """The decode step's stimulus (:func:`hwsim.kernels.decode_step.cases`: weights, RoPE row,
    static scales, earlier cache) with random residual rows (wide ones that need a shift, and
    one that fits ``NORM_IN_BITS``), attention-norm and SubLN gains and ``E``, v-step ratios
    (head 0 at the largest step), ternary ``wo``; score and residual scales from the token's
    own codes; idle input and back-pressure."""
    rng = np.random.default_rng(seed + 200)
    H, d, n = p.heads, p.head_dim, p.hidden
    gn, gs = p.norm_quant().norm().gamma, p.attn_out().norm_quant().norm().gamma
    res, dsp = p.attn_out().res, p.decode_step()
    top = min(res.max_code, (1 << lc.NORM_IN_BITS + 3) - 1)

    def one(c, peak):
        a = _ds_arrays(c["arrays"])
        a["x"] = rng.integers(-peak, peak + 1, n)
        a["norm_g"] = rng.integers(gn.min_code, gn.max_code + 1, n)
        norm_E = int(rng.integers(0, 1 << min(62, p.norm_e_width)))
        a["norm_e"] = e_limbs(norm_E, p.norm_quant())
        act, amax = spec.activations(a["x"], a["norm_g"], norm_E, p)
        codes = gqf.qkv_codes({k: a[k] for k in ("wq", "wk", "wv")}, act, amax, a["cos"],
                              a["sin"], a["mults"], dsp.frontend())
        q8 = codes[:H * d].reshape(H, d)
        mb = dsp.attention_phase().attention().mult_bits
        a["score_mults"] = np.array([scale_for(q8[h][None], a["K"][h * p.kv_heads // H], mb)
                                     for h in range(H)], dtype=np.int64)
        o, amax_o = gds.decode_step_attention({**a, "a": act, "amax": amax}, dsp)
        a["ratio"] = rng.integers(1, (1 << lc.V_RATIO_FRAC) + 1, H)
        a["ratio"][0] = 1 << lc.V_RATIO_FRAC
        sub_E = None
        if p.subln:
            a["sub_g"] = rng.integers(gs.min_code, gs.max_code + 1, n)
            sub_E = int(rng.integers(0, 1 << min(62, p.sub_e_width)))
            a["sub_e"] = e_limbs(sub_E, p.attn_out().norm_quant())
        a["wo"] = rng.integers(-1, 2, (n, n))
        acc, am = ao.wo_accumulators(o, amax_o, a["ratio"], a.get("sub_g"), sub_E, a["wo"],
                                     p.attn_out())
        M, S = kao._mult_for(int(np.abs(acc).max()) * am, p.res_width, rng)
        a["mult"] = np.array([M, min(S, 62)], dtype=np.int64)
        return {**c, "arrays": a}

    ds_cases = [c for c in kds.cases(dsp, seed, quick) if "length" not in c["arrays"]]
    out = [one(ds_cases[0], top)]
    if not quick:
        out.append({**one(ds_cases[1], (1 << lc.NORM_IN_BITS - 2) - 1), "name": "narrow_row"})
    out.append(one(ds_cases[-1], top))
    return out


def real_case(im, cap: dict, layer: int, keep: int, name: str = "layer") -> tuple:
    """The last token of a captured integer-model run (``cap`` of
    :func:`models.bitnet.integer_model.integer_forward`, sparse attention with K = ``keep``):
    ``(AttnLayerParams, stimulus case, the integer model's x_attn row)``; ``subln`` the
    layer's."""
    L, c = im.layers[layer], cap[layer]
    sub = L.attn_sub
    M = c["q"].shape[0]
    p = spec.AttnLayerParams(heads=im.heads, kv_heads=im.kv_heads, head_dim=im.head_dim,
                             tokens=M, keep=keep, lanes=int(np.gcd(im.head_dim, 16)),
                             exp_lanes=4, score_frac=im.attn.score.frac,
                             norm_gamma_frac=L.attn_norm.p.gamma.frac,
                             norm_e_width=max(1, int(L.attn_norm.eps).bit_length()),
                             sub_gamma_frac=sub.p.gamma.frac if sub else 16,
                             sub_e_width=max(1, int(sub.eps).bit_length()) if sub else 64,
                             res_width=im.res.width, subln=sub is not None)
    K, V = c["k"].transpose(1, 0, 2), c["v"].transpose(1, 0, 2)
    arrays = {**{n: L.proj[n].W for n in ("wq", "wk", "wv")}, "cos": im.cos[M - 1],
              "sin": im.sin[M - 1],
              "mults": np.array(L.qkv_mult["q"] + L.qkv_mult["k"] + L.qkv_mult["v"],
                                dtype=np.int64),
              "K": K[:, :-1], "V": V[:, :-1],
              "score_mults": np.array(L.score_mult, dtype=np.int64),
              "x": c["x_in"][-1], "norm_g": L.attn_norm.gamma,
              "norm_e": e_limbs(L.attn_norm.eps, p.norm_quant()),
              "ratio": np.array(lc.v_ratios(L, im.heads, im.kv_heads), dtype=np.int64),
              **({"sub_g": sub.gamma, "sub_e": e_limbs(sub.eps, p.attn_out().norm_quant())}
                 if sub else {}),
              "wo": L.proj["wo"].W, "mult": np.array(L.res_mult["wo"], dtype=np.int64)}
    return p, {"name": f"{name}{layer}_pos{M - 1}", "arrays": arrays}, c["x_attn"][-1]


KERNEL = Kernel(
    name="attn-layer",
    top="attn_layer",
    summary="attention half of a VitaLLM decoder layer in one controller: residual row peak → "
            "shift, RMSNorm + int8 quantizer, decode step, attention output path",
    params_cls=spec.AttnLayerParams,
    cli_params=(
        CliParam("heads", int, 2, "query heads H"),
        CliParam("kv_heads", int, 1, "KV heads G"),
        CliParam("head_dim", int, 8, "head dimension d"),
        CliParam("tokens", int, 6, "cached tokens M (the new one included)"),
        CliParam("keep", int, 3, "tokens kept per head K"),
        CliParam("lanes", int, 8, "lanes of every unit (divides head_dim)"),
        CliParam("exp_lanes", int, 2, "exponential units"),
        CliParam("norm_e_width", int, 64, "bits of the attention RMSNorm's ε constant E"),
        CliParam("sub_e_width", int, 64, "bits of the SubLN's ε constant E"),
        CliParam("res_width", int, 28, "bits of the residual codes"),
        CliParam("subln", on_off, True, "attention SubLN before wo (off: the 1bitLLM form)"),
    ),
    component_path="rtl.vitallm.attn_layer:AttnLayer",
    testbench="hwsim.sim.tb_attn_layer",
    golden="hwsim.golden.vitallm.attn_layer:attn_layer",
    cycles=spec.latency_cycles,
    parts=("norm-quant", "decode-step", "attn-out"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(heads=2, kv_heads=1, head_dim=4, tokens=5, keep=2, lanes=4, exp_lanes=2,
                      res_width=28),),
)
