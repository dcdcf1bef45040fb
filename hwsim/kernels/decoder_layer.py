"""Registry entry and stimulus of one whole decoder layer in one controller (residual row →
attention half → repacker → FFN input half → FFN output half → residual row)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import attn_layer as gal
from hwsim.golden.vitallm import decoder_layer as spec
from hwsim.golden.vitallm import ffn_in as gfi
from hwsim.golden.vitallm import ffn_out as gfo
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as gnq
from hwsim.golden.vitallm import ternary_mvu as tm

from . import CliParam, Kernel
from . import attn_layer as kal
from . import decode_attention as kda
from . import ffn_out as kfo
from ._contract import NORM_QUANT, RESIDUAL, latency, on_off, one_at_a_time
from .attn_out import _mult_for
from .norm_quant import e_limbs, e_value


def manifest(p: spec.DecoderLayerParams) -> dict:
    lat = latency(spec.latency_cycles, p, first="x beat", last="y code")
    return {"kernel": "decoder-layer",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "widths": {"x": p.res_width, "x_attn": p.res_width + 1, "y": p.res_width + 2,
                       "prod": p.ffn_in().prod_width},
            "numeric": {
                "function": "hwsim.golden.vitallm.decoder_layer.decoder_layer: attn-layer -> x_attn "
                            "(res_width + 1 bits); ffn-in on x_attn -> prod, amax; ffn-out "
                            "-> x_out = x_attn + sat(w2 rows) (res_width + 2 bits)",
                "norm_quant": NORM_QUANT, "residual": RESIDUAL,
                "attn_layer": "as attn-layer: w, kv, wo, cos, sin, mults, score, norm_gamma, "
                              "norm_e, ratio, sub_gamma, sub_e, res_mult, length, kv_new",
                "ffn_in": "as ffn-in: w1, w3, ffn_gamma (gamma), ffn_e (e)",
                "ffn_out": "as ffn-out: w2 (w), ffn_sub_gamma (gamma), ffn_sub_e (e), w2_mult "
                           "(mult)",
                "rounding": "half_even", "overflow": "saturate (requantizers); the adds are "
                                                     "exact",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, overlap="the next token's row is accepted once the "
                                                   "attention half has added its last code"),
            "cycles": {"phases": spec.phase_cycles(p), "token": spec.latency_cycles(p)}}


def golden_arrays(a: dict) -> dict:
    """The stimulus arrays as :func:`hwsim.golden.vitallm.decoder_layer.decoder_layer` takes them
    (the ε constants as integers)."""
    return {**kal.golden_arrays(a), "ffn_E": e_value(a["ffn_e"]),
            **({"ffn_sub_E": e_value(a["ffn_sub_e"])} if "ffn_sub_e" in a else {})}


def w_words(a: dict, p: spec.DecoderLayerParams) -> list[int]:
    return kal.w_words(a, p.attn_layer())


def wo_words(a: dict, p: spec.DecoderLayerParams) -> list[int]:
    return kal.wo_words(a, p.attn_layer())


def cache_words(a: dict, p: spec.DecoderLayerParams) -> list[int]:
    return kal.cache_words(a, p.attn_layer())


def w1_words(a: dict, p: spec.DecoderLayerParams) -> list[int]:
    return tm.weight_words(a["w1"], p.lanes)


def w3_words(a: dict, p: spec.DecoderLayerParams) -> list[int]:
    return tm.weight_words(a["w3"], p.lanes)


def w2_words(a: dict, p: spec.DecoderLayerParams) -> list[int]:
    return tm.weight_words(a["w2"], p.lanes)


def x_words(a: dict, p: spec.DecoderLayerParams) -> list[int]:
    """``C`` beats of ``lanes`` residual codes."""
    return kal.x_words(a, p.attn_layer())


def port_values(a: dict, p: spec.DecoderLayerParams) -> dict[str, int]:
    """Packed values of the static ports."""
    fo = kfo.port_values({"g": a.get("ffn_sub_g"), "e": a.get("ffn_sub_e"),
                          "mult": a["w2_mult"]}, p.ffn_out())
    gw = p.ffn_in().norm_quant().norm().gamma.width
    gate = ({"gate_mult": int(a["gate"][0]), "gate_shift": int(a["gate"][1])}
            if p.act == "silu" else {})
    return {**kal.port_values(a, p.attn_layer()),
            "ffn_gamma": pack_lanes(np.ravel(a["ffn_g"]), gw), "ffn_e": e_value(a["ffn_e"]),
            **gate,
            **({"ffn_sub_gamma": fo["gamma"], "ffn_sub_e": fo["e"]} if p.subln else {}),
            "w2_mult": fo["mult"]}


def golden_words(p: spec.DecoderLayerParams, a: dict) -> np.ndarray:
    return spec.decoder_layer(golden_arrays(a), p, kda.length_of(a, p))


def expected_cycles(p: spec.DecoderLayerParams, a: dict) -> int:
    return spec.latency_cycles(p, kda.length_of(a, p))


def cases(p: spec.DecoderLayerParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """``attn-layer``'s stimulus (:func:`hwsim.kernels.attn_layer.cases`: wide residual rows
    that need a shift and one that fits ``NORM_IN_BITS``, the decode step's weights, cache and
    scales, the attention norms, ``wo`` and its scale) with random FFN-norm gains and ``E``,
    ternary ``w1``, ``w3``, ``w2``, SubLN gains and an ``E`` of ``ffn_sub_e_width`` bits, and
    a ``w2`` residual scale from the token's own accumulators (``w2_saturates``: one that
    saturates ``w2``'s rows at ``res_width`` bits); idle input and back-pressure (the last
    case). ``act="silu"``: a gate requantizer that maps the token's largest ``|g · amax|`` to
    about the SiLU table's range (as ``ffn-in``'s stimulus); without SubLN no SubLN gains or
    ``E``."""
    rng = np.random.default_rng(seed + 400)
    n, f = p.hidden, p.ffn
    fin, fout = p.ffn_in(), p.ffn_out()
    gf, gs = fin.norm_quant().norm().gamma, fout.norm_quant().norm().gamma

    def one(c, extra=0):
        a = dict(c["arrays"])
        x_attn = gal.attn_layer(kal.golden_arrays(a), p.attn_layer())
        a["ffn_g"] = rng.integers(gf.min_code, gf.max_code + 1, n)
        ffn_E = int(rng.integers(0, 1 << min(62, p.ffn_e_width)))
        a["ffn_e"] = e_limbs(ffn_E, fin.norm_quant())
        a["w1"], a["w3"] = rng.integers(-1, 2, (f, n)), rng.integers(-1, 2, (f, n))
        gate = None
        if p.act == "silu":
            act, am = gnq.norm_quant_row(x_attn, a["ffn_g"], ffn_E, fin.norm_quant())
            peak = max(1, int(np.abs(tm.ternary_mvu_acc(a["w1"], act)).max()) * int(am))
            S = min(62, max(0, lc.MULT_BITS - 1 + peak.bit_length() - lc.SILU_LUT_BITS - 1))
            M = min((1 << lc.MULT_BITS) - 1, max(1, (1 << (lc.SILU_LUT_BITS + 1 + S)) // peak))
            gate = (M, S)
            a["gate"] = np.array(gate, dtype=np.int64)
        prod, amax = gfi.ffn_in(x_attn, a["ffn_g"], ffn_E, a["w1"], a["w3"], fin, gate)
        sub_E = None
        if p.subln:
            a["ffn_sub_g"] = rng.integers(gs.min_code, gs.max_code + 1, f)
            sub_E = int.from_bytes(rng.bytes(64), "little") % (1 << p.ffn_sub_e_width)
            a["ffn_sub_e"] = kfo.e_limbs(sub_E, fout)
        a["w2"] = rng.integers(-1, 2, (n, f))
        acc, am3 = gfo.w2_accumulators(prod, amax, a.get("ffn_sub_g"), sub_E, a["w2"], fout)
        M, S = _mult_for(int(np.abs(acc).max()) * am3, p.res_width, rng, extra)
        a["w2_mult"] = np.array([M, min(S, 62)], dtype=np.int64)
        return {**c, "arrays": a}

    out = [one(c) for c in kal.cases(p.attn_layer(), seed, quick)]
    if not quick:
        out.insert(2, {**one(kal.cases(p.attn_layer(), seed + 1, True)[0], extra=3),
                       "name": "w2_saturates"})
    return out


def real_case(im, cap: dict, layer: int, keep: int, name: str = "layer") -> tuple:
    """The last token of a captured integer-model run (``cap`` of
    :func:`models.bitnet.integer_model.integer_forward`, sparse attention with K = ``keep``):
    ``(DecoderLayerParams, stimulus case, the integer model's output row x_out)``; ``act``
    and ``subln`` the layer's."""
    L, c = im.layers[layer], cap[layer]
    sub = L.ffn_sub
    pa, case, _ = kal.real_case(im, cap, layer, keep, name)
    f = L.proj["w1"].W.shape[0]
    p = spec.DecoderLayerParams(
        heads=pa.heads, kv_heads=pa.kv_heads, head_dim=pa.head_dim, ffn=f, tokens=pa.tokens,
        keep=pa.keep, lanes=int(np.gcd(np.gcd(pa.head_dim, f), 16)), exp_lanes=pa.exp_lanes,
        score_frac=pa.score_frac, norm_gamma_frac=pa.norm_gamma_frac,
        norm_e_width=pa.norm_e_width, sub_gamma_frac=pa.sub_gamma_frac,
        sub_e_width=pa.sub_e_width, ffn_gamma_frac=L.ffn_norm.p.gamma.frac,
        ffn_e_width=max(1, int(L.ffn_norm.eps).bit_length()),
        ffn_sub_gamma_frac=sub.p.gamma.frac if sub else 16,
        ffn_sub_e_width=max(1, int(sub.eps).bit_length()) if sub else 161,
        res_width=pa.res_width, act=L.act, subln=pa.subln)
    a = {**case["arrays"], "ffn_g": L.ffn_norm.gamma,
         "ffn_e": e_limbs(L.ffn_norm.eps, p.ffn_in().norm_quant()),
         "w1": L.proj["w1"].W, "w3": L.proj["w3"].W, "w2": L.proj["w2"].W,
         "w2_mult": np.array(L.res_mult["w2"], dtype=np.int64)}
    if sub:
        a |= {"ffn_sub_g": sub.gamma, "ffn_sub_e": kfo.e_limbs(sub.eps, p.ffn_out())}
    if L.act == "silu":
        a["gate"] = np.array(L.gate_mult, dtype=np.int64)
    return p, {**case, "arrays": a}, c["x_out"][-1]


KERNEL = Kernel(
    name="decoder-layer",
    top="decoder_layer",
    summary="one VitaLLM decoder layer in one controller: attn-layer → repacker → ffn-in → "
            "ffn-out, residual row in, the layer's output residual row out",
    params_cls=spec.DecoderLayerParams,
    cli_params=(
        CliParam("heads", int, 2, "query heads H"),
        CliParam("kv_heads", int, 1, "KV heads G"),
        CliParam("head_dim", int, 8, "head dimension d"),
        CliParam("ffn", int, 16, "FFN width"),
        CliParam("tokens", int, 6, "cached tokens M (the new one included)"),
        CliParam("keep", int, 3, "tokens kept per head K"),
        CliParam("lanes", int, 8, "lanes of every unit (divides head_dim and ffn)"),
        CliParam("exp_lanes", int, 2, "exponential units"),
        CliParam("ffn_sub_e_width", int, 161, "bits of the FFN SubLN's ε constant E"),
        CliParam("res_width", int, 28, "bits of the input residual codes"),
        CliParam("act", str, "relu2", "FFN gated product: relu2 (2B4T) or silu (1bitLLM)"),
        CliParam("subln", on_off, True, "the attention and FFN SubLNs (off: the 1bitLLM form, "
                 "act=silu)"),
        CliParam("weight_kib", int, None, "on-chip weight memory (KiB) the layer's ternary "
                 "weights must fit at 2 bits (default: not checked)"),
        CliParam("kv_kib", int, None, "on-chip KV-cache memory (KiB) the layer's K, V and LO "
                 "codes of M tokens must fit (default: not checked)"),
    ),
    component_path="rtl.vitallm.decoder_layer:DecoderLayer",
    testbench="hwsim.sim.tb_decoder_layer",
    golden="hwsim.golden.vitallm.decoder_layer:decoder_layer",
    cycles=spec.latency_cycles,
    parts=("attn-layer", "ffn-in", "ffn-out"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(heads=2, kv_heads=1, head_dim=4, ffn=8, tokens=5, keep=2, lanes=4,
                      exp_lanes=2, res_width=28),),
)
