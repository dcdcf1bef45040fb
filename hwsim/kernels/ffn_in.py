"""Registry entry and stimulus of the input half of a layer's FFN (residual row → peak → shift
→ FFN RMSNorm + quantizer → ternary w1, w3 → relu(g)²·u or silu(g)·u)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import ffn_in as spec
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as gnq
from hwsim.golden.vitallm import ternary_mvu as tm

from . import CliParam, Kernel, _costs
from ._contract import I2S_WEIGHTS, NORM_QUANT, STATIC, latency, one_at_a_time
from .norm_quant import e_limbs, e_value


def manifest(p: spec.FfnInParams) -> dict:
    lat = latency(spec.latency_cycles, p, first="x beat", last="y beat")
    return {"kernel": "ffn-in",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "widths": {"acc": p.mvu().acc_width, "prod": p.prod_width,
                       "amax": p.norm_quant().norm().out.width},
            "numeric": {
                "function": "hwsim.golden.vitallm.ffn_in.ffn_in: norm-quant of the residual row "
                            "(power 0) -> a, amax; g = W1 . a, u = W3 . a exact; prod = "
                            + ("silu_int(sat24(round_half_even(g * amax * M / 2**S))) * u, "
                               "the SiLU from a 1024-entry table at step 2**-7 (<= 1/2 LSB)"
                               if p.act == "silu" else "relu(g)**2 * u")
                            + " exact in prod_width bits",
                **({"gate": {"ports": ["gate_mult", "gate_shift"],
                             "meaning": "gate requantizer (M, S) of the layer; " + STATIC}}
                   if p.act == "silu" else {}),
                "norm_quant": NORM_QUANT,
                "gamma": {"port": "gamma", "format": p.norm_quant().norm().gamma.to_dict(),
                          "count": p.hidden, "meaning": "FFN RMSNorm gain codes; " + STATIC},
                "E": {"port": "e", "width": p.e_width, "signed": False,
                      "meaning": "FFN RMSNorm eps constant (power 0); " + STATIC},
                "weight_code": I2S_WEIGHTS,
                "rounding": "half_even (norm, quantizer); prod exact",
                "overflow": "saturate to int8 (quantizer); prod cannot overflow prod_width",
                "y_beat": "prod of row r and the FFN activations' amax (every beat)",
                "res_beat": "the held residual row, one code per beat",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, overlap="the next token's row, norm and quantizer "
                                                   "overlap this token's MVUs"),
            "cycles": {"phases": spec.phase_cycles(p), "token": spec.latency_cycles(p)}}


def w1_words(a: dict, p: spec.FfnInParams) -> list[int]:
    return tm.weight_words(a["w1"], p.lanes)


def w3_words(a: dict, p: spec.FfnInParams) -> list[int]:
    return tm.weight_words(a["w3"], p.lanes)


def x_words(a: dict, p: spec.FfnInParams) -> list[int]:
    """``C`` beats of ``lanes`` residual codes."""
    x, L = np.ravel(a["x"]), p.lanes
    return [pack_lanes(x[c * L:(c + 1) * L], p.res_width) for c in range(p.chunks)]


def port_values(a: dict, p: spec.FfnInParams) -> dict[str, int]:
    """Packed values of the static ports ``gamma``, ``e`` (and ``gate_mult``, ``gate_shift``
    for ``act="silu"``)."""
    gw = p.norm_quant().norm().gamma.width
    out = {"gamma": pack_lanes(np.ravel(a["g"]), gw), "e": e_value(a["e"])}
    if p.act == "silu":
        out.update(gate_mult=int(a["gate"][0]), gate_shift=int(a["gate"][1]))
    return out


def _gate(a: dict, p: spec.FfnInParams):
    return (int(a["gate"][0]), int(a["gate"][1])) if p.act == "silu" else None


def y_fields(word: int, p: spec.FfnInParams) -> tuple[int, int]:
    """A ``y`` beat (unsigned payload) → ``(prod, amax)``."""
    pw = p.prod_width
    prod = word & ((1 << pw) - 1)
    return prod - (prod >> (pw - 1) << pw), word >> pw


def golden_words(p: spec.FfnInParams, a: dict) -> np.ndarray:
    """The checker's integer list: the ``ffn`` prod codes, the amax of every ``y`` beat, then
    the ``hidden`` residual codes of ``res``."""
    prod, amax = spec.ffn_in(a["x"], a["g"], e_value(a["e"]), a["w1"], a["w3"], p, _gate(a, p))
    return np.concatenate([prod, np.full(p.ffn, amax, dtype=np.int64),
                           np.ravel(a["x"]).astype(np.int64)])


def cases(p: spec.FfnInParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random residual rows (wide ones that need a shift, and one that fits
    ``NORM_IN_BITS``), FFN-norm gains and ``E``, ternary ``w1``, ``w3``; an ``extreme`` case
    whose first rows of ``w1`` and ``w3`` are the signs of the token's activations (``|g|``,
    ``|u|`` at ``Σ|a|``, a large positive and a large negative product); idle input and
    back-pressure. For ``act="silu"`` each case's gate requantizer maps the token's largest
    ``|g|`` to about ``2**(SILU_LUT_BITS + 1)`` (the table's domain on both signs; the
    ``extreme`` case's to about ``2**25``, saturating ``GATE``)."""
    rng = np.random.default_rng(seed + 300)
    n, f = p.hidden, p.ffn
    gn = p.norm_quant().norm().gamma
    top = min(p.res.max_code, (1 << lc.NORM_IN_BITS + 3) - 1)

    def one(name, peak, extreme=False, **kw):
        x = rng.integers(-peak, peak + 1, n)
        g = rng.integers(gn.min_code, gn.max_code + 1, n)
        E = int(rng.integers(0, 1 << min(62, p.e_width)))
        w1, w3 = rng.integers(-1, 2, (f, n)), rng.integers(-1, 2, (f, n))
        if extreme:
            a, _ = gnq.norm_quant_row(x, g, E, p.norm_quant())
            s = np.sign(a)
            w1[0], w3[0] = s, s
            if f > 1:
                w1[1], w3[1] = s, -s
        arrays = {"x": x, "g": g, "e": e_limbs(E, p.norm_quant()), "w1": w1, "w3": w3}
        if p.act == "silu":
            a, amax = gnq.norm_quant_row(x, g, E, p.norm_quant())
            peak = max(1, int(np.abs(tm.ternary_mvu_acc(w1, a)).max()) * int(amax))
            target = lc.SILU_LUT_BITS + 1 if not extreme else lc.GATE.width + 1
            S = min(63, max(0, lc.MULT_BITS - 1 + peak.bit_length() - target))
            M = min((1 << lc.MULT_BITS) - 1, max(1, (1 << (target + S)) // peak))
            arrays["gate"] = np.array([M, S], dtype=np.int64)
        return {"name": name, **kw, "arrays": arrays}

    out = [one("random", top)]
    if not quick:
        out += [one("narrow_row", (1 << lc.NORM_IN_BITS - 2) - 1), one("extreme", top, True)]
    out.append(one("idle_backpressure", top, idle=0.3, stall=0.4, seed=seed + 5))
    return out


def real_case(im, cap: dict, layer: int, name: str = "layer") -> tuple:
    """The last token of a captured integer-model run (``cap`` of
    :func:`models.bitnet.integer_model.integer_forward`): ``(FfnInParams, stimulus case, the
    integer model's (prod row, FFN amax))``."""
    L, c = im.layers[layer], cap[layer]
    M = c["x_attn"].shape[0]
    f, n = L.proj["w1"].W.shape
    p = spec.FfnInParams(hidden=n, ffn=f, lanes=int(np.gcd(n, 16)),
                         gamma_frac=L.ffn_norm.p.gamma.frac,
                         e_width=max(1, int(L.ffn_norm.eps).bit_length()),
                         res_width=im.res.width, act=L.act)
    arrays = {"x": c["x_attn"][-1], "g": L.ffn_norm.gamma,
              "e": e_limbs(L.ffn_norm.eps, p.norm_quant()),
              "w1": L.proj["w1"].W, "w3": L.proj["w3"].W}
    if L.act == "silu":
        arrays["gate"] = np.array(L.gate_mult, dtype=np.int64)
    return p, {"name": f"{name}{layer}_pos{M - 1}", "arrays": arrays}, \
        (c["prod"][-1], int(c["ffn_amax"][-1]))


KERNEL = Kernel(
    name="ffn-in",
    top="ffn_in",
    summary="input half of a VitaLLM FFN: residual row peak → shift, RMSNorm + int8 quantizer, "
            "ternary w1 and w3 in parallel, relu(g)²·u or silu(g)·u (exact)",
    params_cls=spec.FfnInParams,
    cli_params=(
        CliParam("hidden", int, 16, "residual row length"),
        CliParam("ffn", int, 12, "FFN width (rows of w1 and w3)"),
        CliParam("lanes", int, 8, "lanes of the norm unit and the MVUs (divides hidden)"),
        CliParam("e_width", int, 64, "bits of the FFN RMSNorm's ε constant E"),
        CliParam("res_width", int, 28, "bits of the residual codes"),
        CliParam("act", str, "relu2", "gated product: relu2 (relu(g)²·u, 2B4T) or silu "
                                      "(silu(g)·u, 1bitLLM 700M–3B)"),
    ),
    component_path="rtl.vitallm.ffn_in:FfnIn",
    testbench="hwsim.sim.tb_ffn_in",
    golden="hwsim.golden.vitallm.ffn_in:ffn_in",
    cycles=spec.latency_cycles,
    parts=("norm-quant", "ternary-mvu"),
    costs=(_costs.SILU_MUL,),
    manifest=manifest,
    cases=cases,
    test_params=(dict(hidden=8, ffn=5, lanes=4, res_width=28),
                 dict(hidden=8, ffn=5, lanes=4, res_width=28, act="silu")),
)
