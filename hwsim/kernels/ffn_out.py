"""Registry entry and stimulus of the output half of a layer's FFN (``prod`` peak → shift →
wide ε divider → FFN SubLN + activation quantizer → ``w2`` → residual add)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import ffn_out as spec
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import ternary_mvu as tm

from . import CliParam, Kernel
from ._contract import I2S_WEIGHTS, NORM_QUANT, RESIDUAL, STATIC, latency, one_at_a_time, residual_mult
from .attn_out import _mult_for
from .norm_quant import e_limbs as _nq_e_limbs
from .norm_quant import e_value


def manifest(p: spec.FfnOutParams) -> dict:
    lat = latency(spec.latency_cycles, p, first="p beat", last="y code")
    return {"kernel": "ffn-out",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "numeric": {
                "function": "hwsim.golden.vitallm.ffn_out.ffn_out: prod row peak -> shift; eps = "
                            "eps_code(E, shift, amax, 6) (wide divider, hwsim.golden."
                            "eps_divider); norm-quant with that eps -> a3, amax3; w2 "
                            "projection; residual add into x",
                "norm_quant": NORM_QUANT, "residual": RESIDUAL,
                "sat_width": p.sat_width,
                "gamma": {"port": "gamma", "format": p.norm_quant().norm().gamma.to_dict(),
                          "count": p.ffn, "meaning": "FFN SubLN gain codes; " + STATIC},
                "E": {"port": "e", "width": p.e_width, "signed": False,
                      "meaning": "FFN SubLN eps constant (power 6); " + STATIC},
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
    """Packed values of the static ports ``gamma``, ``e``, ``mult``."""
    M, S = (int(v) for v in np.ravel(a["mult"]))
    gw = p.norm_quant().norm().gamma.width
    return {"gamma": pack_lanes(np.ravel(a["g"]), gw), "e": e_value(a["e"]),
            "mult": M | S << lc.MULT_BITS}


def golden_words(p: spec.FfnOutParams, a: dict) -> np.ndarray:
    return spec.ffn_out(a["prod"], int(np.ravel(a["amax"])[0]), a["g"], e_value(a["e"]), a["W"],
                        a["mult"], a["x"], p)


def cases(p: spec.FfnOutParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random ``prod`` rows as ``relu(g)²·u`` of random accumulators (wide ones that need a
    shift), their amax, SubLN gains, ``E`` of ``e_width`` bits, ternary ``w2``, residual rows,
    a residual scale that keeps most codes inside; a narrow row (shift 0) whose small amax
    saturates the ε code; a row of zeros with amax 0 (D = 0); idle input and back-pressure."""
    rng = np.random.default_rng(seed)
    n, f = p.hidden, p.ffn
    g_fmt = p.norm_quant().norm().gamma
    res = p.res
    top = (1 << p.prod_width - 1) - 1
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

    def wide_row():
        b = max(1, round(top ** (1 / 3)))
        gg = rng.integers(-b, b + 1, f)
        u = rng.integers(-b, b + 1, f)
        return np.clip(np.maximum(gg, 0) ** 2 * u, -top, top)

    def big_E():
        return int.from_bytes(rng.bytes(64), "little") % (1 << p.e_width)

    out = [one("random", wide_row(), int(rng.integers(1, amax_max + 1)), big_E())]
    if not quick:
        narrow = rng.integers(-(1 << lc.NORM_IN_BITS - 2), 1 << lc.NORM_IN_BITS - 2, f)
        out += [one("narrow_saturated_eps", narrow, 1, (1 << p.e_width) - 1),
                one("zero_row", np.zeros(f, dtype=np.int64), 0, big_E())]
    out.append(one("idle_backpressure", wide_row(), amax_max, big_E(), idle=0.3, stall=0.4,
                   seed=seed + 5))
    return out


def real_case(im, cap: dict, layer: int, name: str = "layer") -> tuple:
    """The last token of a captured integer-model run (``cap`` of
    :func:`models.bitnet.integer_model.integer_forward`): ``(FfnOutParams, stimulus case, the
    integer model's output residual row)``; ``prod_width`` as ``ffn-in`` sizes it (``|prod| ≤
    (hidden · 2**7)**3``), ``e_width`` the bit length of the SubLN's ``E``."""
    L, c = im.layers[layer], cap[layer]
    hidden, ffn = L.proj["w2"].W.shape
    lanes = int(np.gcd(np.gcd(hidden, ffn), 16))
    p = spec.FfnOutParams(hidden=hidden, ffn=ffn, lanes=lanes,
                          prod_width=((hidden << 7) ** 3).bit_length() + 1,
                          gamma_frac=L.ffn_sub.p.gamma.frac,
                          e_width=max(1, int(L.ffn_sub.eps).bit_length()),
                          res_width=im.res.width)
    arrays = {"prod": c["prod"][-1], "amax": np.array([c["ffn_amax"][-1]], dtype=np.int64),
              "g": L.ffn_sub.gamma, "e": e_limbs(L.ffn_sub.eps, p), "W": L.proj["w2"].W,
              "x": c["x_attn"][-1], "mult": np.array(L.res_mult["w2"], dtype=np.int64)}
    return p, {"name": f"{name}{layer}_pos{c['prod'].shape[0] - 1}", "arrays": arrays}, \
        c["x_out"][-1]


KERNEL = Kernel(
    name="ffn-out",
    top="ffn_out",
    summary="output half of a VitaLLM layer's FFN: prod peak → shift, wide ε divider "
            "(power 6), SubLN + int8 quantizer, ternary w2, residual add",
    params_cls=spec.FfnOutParams,
    cli_params=(
        CliParam("hidden", int, 16, "residual row length"),
        CliParam("ffn", int, 32, "FFN width"),
        CliParam("lanes", int, 8, "lanes of the norm unit and the w2 MVU"),
        CliParam("prod_width", int, 40, "signed bits of a relu(g)²·u code"),
        CliParam("amax_width", int, 24, "bits of the FFN activations' amax"),
        CliParam("e_width", int, 161, "bits of the SubLN's ε constant E"),
        CliParam("res_width", int, 24, "bits of the residual codes"),
    ),
    component_path="rtl.vitallm.ffn_out:FfnOut",
    testbench="hwsim.sim.tb_ffn_out",
    golden="hwsim.golden.vitallm.ffn_out:ffn_out",
    cycles=spec.latency_cycles,
    parts=("norm-quant", "ternary-mvu"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(hidden=8, ffn=12, lanes=4, prod_width=36, e_width=161, res_width=24),),
)
