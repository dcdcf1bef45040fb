"""Registry entry and stimulus of the output half of a layer's FFN (``prod`` peak → shift →
wide ε divider → FFN SubLN + activation quantizer → ``w2`` → residual add; without SubLN the
shifted row goes to the absmax quantizer directly)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import ffn_out as spec
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
from .attn_out import _mult_for
from .norm_quant import e_limbs as _nq_e_limbs
from .norm_quant import e_value


def manifest(p: spec.FfnOutParams) -> dict:
    lat = latency(spec.latency_cycles, p, first="p beat", last="y code")
    if p.subln:
        norm = {"function": "hwsim.golden.vitallm.ffn_out.ffn_out: prod row peak -> shift; eps "
                            f"= eps_code(E, shift, amax, {p.eps_power}) (wide divider, hwsim."
                            "golden.vitallm.eps_divider); norm-quant with that eps -> a3, "
                            "amax3; w2 projection; residual add into x",
                "norm_quant": NORM_QUANT,
                "gamma": {"port": "gamma", "format": p.norm_quant().norm().gamma.to_dict(),
                          "count": p.ffn, "meaning": "FFN SubLN gain codes; " + STATIC},
                "E": {"port": "e", "width": p.e_width, "signed": False,
                      "meaning": f"FFN SubLN eps constant (power {p.eps_power}); " + STATIC}}
    else:
        norm = {"function": "hwsim.golden.vitallm.ffn_out.ffn_out: prod row peak -> shift to "
                            "NORM_IN_BITS bits (half even); absmax quantizer (hwsim.golden."
                            "common.attention_head.absmax_requant) -> a3, amax3; w2 projection; "
                            "residual add into x with the row scale (amax3 << shift) * "
                            f"amax**{p.prod_power}"}
    return {"kernel": "ffn-out",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "numeric": {
                **norm, "residual": RESIDUAL,
                "sat_width": p.sat_width,
                "M_S": residual_mult("mult", "w2"),
                "weight_code": I2S_WEIGHTS,
                "rounding": "half_even", "overflow": "saturate (requantizers); the add is exact",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, overlap="the row memory takes the next token once "
                                                   "this token's last word goes to the norm "
                                                   "unit"),
            "cycles": {"phases": spec.phase_cycles(p), "token": spec.latency_cycles(p)}}


def e_limbs(E: int, p: spec.FfnOutParams) -> np.ndarray:
    """``E`` as 32-bit limbs, lowest first (as :func:`hwsim.kernels.norm_quant.e_limbs`)."""
    return _nq_e_limbs(E, p.norm_quant())


def w_words(a: dict, p: spec.FfnOutParams) -> list[int]:
    return tm.weight_words(a["W"], p.lanes)


def p_words(a: dict, p: spec.FfnOutParams) -> list[int]:
    """``ffn`` beats ``{prod: signed(prod_width), amax: unsigned(amax_width)}``, one code each
    in order, every beat carrying the amax."""
    mask = (1 << p.prod_width) - 1
    am = int(np.ravel(a["amax"])[0])
    return [int(v) & mask | am << p.prod_width for v in np.ravel(a["prod"])]


def x_words(a: dict, p: spec.FfnOutParams) -> list[int]:
    mask = (1 << p.res_width) - 1
    return [int(v) & mask for v in np.ravel(a["x"])]


def port_values(a: dict, p: spec.FfnOutParams) -> dict[str, int]:
    """Packed values of the static ports ``gamma``, ``e`` (SubLN only), ``mult``."""
    M, S = (int(v) for v in np.ravel(a["mult"]))
    if not p.subln:
        return {"mult": M | S << lc.MULT_BITS}
    gw = p.norm_quant().norm().gamma.width
    return {"gamma": pack_lanes(np.ravel(a["g"]), gw), "e": e_value(a["e"]),
            "mult": M | S << lc.MULT_BITS}


def golden_words(p: spec.FfnOutParams, a: dict) -> np.ndarray:
    g, E = (a["g"], e_value(a["e"])) if p.subln else (None, None)
    return spec.ffn_out(a["prod"], int(np.ravel(a["amax"])[0]), g, E, a["W"], a["mult"],
                        a["x"], p)


def cases(p: spec.FfnOutParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random ``prod`` rows as ``relu(g)²·u`` (``act="silu"``: a SiLU code times ``u``) of
    random accumulators (wide ones that need a shift), their amax, SubLN gains, ``E`` of
    ``e_width`` bits, ternary ``w2``, residual rows, a residual scale that keeps most codes
    inside; a narrow row (shift 0; with SubLN, a small amax that saturates the ε code); a row
    of zeros with amax 0 (D = 0); idle input and back-pressure. Without SubLN the amax stays
    below 2**12 (the row scale ``(amax3 << shift) · amax`` and ``S ≤ 62`` keep the residual
    codes from all saturating), and the cases carry no gains or ``E``."""
    if not p.subln:
        return _cases_quant(p, seed, quick)
    rng = np.random.default_rng(seed)
    n, f = p.hidden, p.ffn
    g_fmt = p.norm_quant().norm().gamma
    res = p.res
    amax_max = (1 << p.amax_width) - 1

    def one(name, prod, amax, E, **kw):
        g = rng.integers(g_fmt.min_code, g_fmt.max_code + 1, f)
        W = rng.integers(-1, 2, (n, f))
        x = rng.integers(res.min_code // 4, res.max_code // 4 + 1, n)
        acc, am3 = spec.w2_accumulators(prod, amax, g, E, W, p)
        mult = _mult_for(int(np.abs(acc).max()) * am3, p.res_width, rng)
        return {"name": name, **kw, "arrays": {
            "prod": np.asarray(prod, dtype=np.int64), "amax": np.array([amax], dtype=np.int64),
            "g": g, "e": e_limbs(E, p), "W": W, "x": x,
            "mult": np.array(mult, dtype=np.int64)}}

    def big_E():
        return int.from_bytes(rng.bytes(64), "little") % (1 << p.e_width)

    out = [one("random", _wide_row(p, rng), int(rng.integers(1, amax_max + 1)), big_E())]
    if not quick:
        narrow = rng.integers(-(1 << lc.NORM_IN_BITS - 2), 1 << lc.NORM_IN_BITS - 2, f)
        out += [one("narrow_saturated_eps", narrow, 1, (1 << p.e_width) - 1),
                one("zero_row", np.zeros(f, dtype=np.int64), 0, big_E())]
    out.append(one("idle_backpressure", _wide_row(p, rng), amax_max, big_E(), idle=0.3,
                   stall=0.4, seed=seed + 5))
    return out


def _wide_row(p: spec.FfnOutParams, rng) -> np.ndarray:
    """A ``prod`` row of ``prod_width`` bits: ``relu(g)²·u`` or a SiLU code times ``u``."""
    top = (1 << p.prod_width - 1) - 1
    f = p.ffn
    if p.act == "silu":
        sb = min(lc.GATE.width - 1, (p.prod_width - 1) // 2)
        s = rng.integers(-36, 1 << sb, f)
        u = rng.integers(-(top >> sb), (top >> sb) + 1, f)
        return np.clip(s * u, -top, top)
    b = max(1, round(top ** (1 / 3)))
    gg = rng.integers(-b, b + 1, f)
    u = rng.integers(-b, b + 1, f)
    return np.clip(np.maximum(gg, 0) ** 2 * u, -top, top)


def _cases_quant(p: spec.FfnOutParams, seed: int, quick: bool) -> list[dict]:
    """:func:`cases` without SubLN."""
    rng = np.random.default_rng(seed)
    n, f = p.hidden, p.ffn
    res = p.res
    amax_hi = (1 << min(p.amax_width, 12)) - 1

    def one(name, prod, amax, **kw):
        W = rng.integers(-1, 2, (n, f))
        x = rng.integers(res.min_code // 4, res.max_code // 4 + 1, n)
        acc, scale = spec.w2_accumulators(prod, amax, None, None, W, p)
        M, S = _mult_for(int(np.abs(acc).max()) * scale, p.res_width, rng)
        return {"name": name, **kw, "arrays": {
            "prod": np.asarray(prod, dtype=np.int64), "amax": np.array([amax], dtype=np.int64),
            "W": W, "x": x, "mult": np.array([M, min(S, 62)], dtype=np.int64)}}

    out = [one("random", _wide_row(p, rng), int(rng.integers(1, amax_hi + 1)))]
    if not quick:
        narrow = rng.integers(-(1 << lc.NORM_IN_BITS - 2), 1 << lc.NORM_IN_BITS - 2, f)
        out += [one("narrow", narrow, int(rng.integers(1, amax_hi + 1))),
                one("zero_row", np.zeros(f, dtype=np.int64), 0)]
    out.append(one("idle_backpressure", _wide_row(p, rng), amax_hi, idle=0.3, stall=0.4,
                   seed=seed + 5))
    return out


def real_case(im, cap: dict, layer: int, name: str = "layer") -> tuple:
    """The last token of a captured integer-model run (``cap`` of
    :func:`models.bitnet.integer_model.integer_forward`): ``(FfnOutParams, stimulus case, the
    integer model's output residual row)``; ``act`` and ``subln`` the layer's, ``prod_width``
    as ``ffn-in`` sizes it, ``e_width`` the bit length of the SubLN's ``E``."""
    from hwsim.golden.vitallm import ffn_in as fi

    L, c = im.layers[layer], cap[layer]
    hidden, ffn = L.proj["w2"].W.shape
    lanes = int(np.gcd(np.gcd(hidden, ffn), 16))
    sub = L.ffn_sub
    prod_width = fi.FfnInParams(hidden=hidden, ffn=ffn, lanes=lanes, act=L.act).prod_width
    p = spec.FfnOutParams(hidden=hidden, ffn=ffn, lanes=lanes, prod_width=prod_width,
                          gamma_frac=sub.p.gamma.frac if sub else 16,
                          e_width=max(1, int(sub.eps).bit_length()) if sub else 1,
                          res_width=im.res.width, act=L.act, subln=sub is not None)
    arrays = {"prod": c["prod"][-1], "amax": np.array([c["ffn_amax"][-1]], dtype=np.int64),
              "W": L.proj["w2"].W, "x": c["x_attn"][-1],
              "mult": np.array(L.res_mult["w2"], dtype=np.int64)}
    if sub:
        arrays |= {"g": sub.gamma, "e": e_limbs(sub.eps, p)}
    return p, {"name": f"{name}{layer}_pos{c['prod'].shape[0] - 1}", "arrays": arrays}, \
        c["x_out"][-1]


KERNEL = Kernel(
    name="ffn-out",
    top="ffn_out",
    summary="output half of a VitaLLM layer's FFN: prod peak → shift, wide ε divider "
            "(power 6; silu: 2), SubLN + int8 quantizer (or, without SubLN, the absmax "
            "quantizer alone), ternary w2, residual add",
    params_cls=spec.FfnOutParams,
    cli_params=(
        CliParam("hidden", int, 16, "residual row length"),
        CliParam("ffn", int, 32, "FFN width"),
        CliParam("lanes", int, 8, "lanes of the norm unit and the w2 MVU"),
        CliParam("prod_width", int, 40, "signed bits of a relu(g)²·u code"),
        CliParam("amax_width", int, 24, "bits of the FFN activations' amax"),
        CliParam("e_width", int, 161, "bits of the SubLN's ε constant E"),
        CliParam("res_width", int, 24, "bits of the residual codes"),
        CliParam("act", str, "relu2", "gated product: relu2 (relu(g)²·u) or silu (silu(g)·u)"),
        CliParam("subln", on_off, True, "FFN SubLN before w2 (off: the SiLU form of the "
                 "1bitLLM configurations)"),
    ),
    component_path="rtl.vitallm.ffn_out:FfnOut",
    testbench="hwsim.sim.tb_ffn_out",
    golden="hwsim.golden.vitallm.ffn_out:ffn_out",
    cycles=spec.latency_cycles,
    parts=("norm-quant", "ternary-mvu"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(hidden=8, ffn=12, lanes=4, prod_width=36, e_width=161, res_width=24),
                 dict(hidden=8, ffn=12, lanes=4, prod_width=36, res_width=24, act="silu",
                      subln=False)),
)
