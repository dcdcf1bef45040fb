"""Registry entry and stimulus of the end of a decode step (residual row → peak → shift → final
RMSNorm + quantizer → int8 LM head → greedy token)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common import int8_mvu as gim
from hwsim.golden.common.lanes import pack_lanes
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import lm_head as spec
from hwsim.golden.vitallm import norm_quant as gnq

from . import CliParam, Kernel
from ._contract import NORM_QUANT, STATIC, latency, one_at_a_time
from .norm_quant import e_limbs, e_value


def manifest(p: spec.LmHeadParams) -> dict:
    lat = latency(spec.latency_cycles, p, first="x beat", last="y beat")
    return {"kernel": "lm-head",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "widths": {"token": p.token_width, "logit": p.logit.width,
                       "amax": p.norm_quant().norm().out.width},
            "numeric": {
                "function": "hwsim.golden.vitallm.lm_head.lm_head: norm-quant of the residual "
                            "row (power 0) -> a; logits = W . a exact (int32); token = the "
                            "lowest index of the largest logit",
                "norm_quant": NORM_QUANT,
                "gamma": {"port": "gamma", "format": p.norm_quant().norm().gamma.to_dict(),
                          "count": p.hidden, "meaning": "final RMSNorm gain codes; " + STATIC},
                "E": {"port": "e", "width": p.e_width, "signed": False,
                      "meaning": "final RMSNorm eps constant (power 0); " + STATIC},
                "weight_word": "int8 codes of row r, columns k*lanes ... k*lanes+lanes-1, "
                               "lane 0 lowest, two's complement; words row-major "
                               "(hwsim.golden.common.int8_mvu.weight_words)",
                "rounding": "half_even (norm, quantizer); logits exact",
                "overflow": "saturate to int8 (quantizer); logits fit 32 bits",
                "y_beat": "{token (low token_width bits), logit (signed 32 above)}",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, overlap="the next token's row and norm overlap "
                                                   "this token's head"),
            "cycles": {"phases": spec.phase_cycles(p), "token": spec.latency_cycles(p)}}


def w_words(a: dict, p: spec.LmHeadParams) -> list[int]:
    return gim.weight_words(a["w"], p.lanes)


def x_words(a: dict, p: spec.LmHeadParams) -> list[int]:
    """``C`` beats of ``lanes`` residual codes."""
    x, L = np.ravel(a["x"]), p.lanes
    return [pack_lanes(x[c * L:(c + 1) * L], p.res_width) for c in range(p.chunks)]


def port_values(a: dict, p: spec.LmHeadParams) -> dict[str, int]:
    """Packed values of the static ports ``gamma``, ``e``."""
    gw = p.norm_quant().norm().gamma.width
    return {"gamma": pack_lanes(np.ravel(a["g"]), gw), "e": e_value(a["e"])}


def y_fields(word: int, p: spec.LmHeadParams) -> tuple[int, int]:
    """A ``y`` beat (unsigned payload) → ``(token, logit)``."""
    tw, lw = p.token_width, p.logit.width
    logit = word >> tw & ((1 << lw) - 1)
    return word & ((1 << tw) - 1), logit - (logit >> (lw - 1) << lw)


def golden_words(p: spec.LmHeadParams, a: dict) -> np.ndarray:
    """The checker's integer list: the token, then its logit."""
    tok, logit, _ = spec.lm_head(a["x"], a["g"], e_value(a["e"]), a["w"], p)
    return np.array([tok, logit], dtype=np.int64)


def cases(p: spec.LmHeadParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random residual rows (wide ones that need a shift, and one that fits
    ``NORM_IN_BITS``), final-norm gains and ``E``, int8 heads; a ``tie`` case whose two
    largest logits are equal (rows 1 and ``vocab − 1`` the same: the lower index wins) and a
    ``last`` case whose largest logit is the last row's; idle input and back-pressure."""
    rng = np.random.default_rng(seed + 700)
    n, V = p.hidden, p.vocab
    gn = p.norm_quant().norm().gamma
    top = min(p.res.max_code, (1 << lc.NORM_IN_BITS + 3) - 1)

    def one(name, peak, kind=None, **kw):
        x = rng.integers(-peak, peak + 1, n)
        g = rng.integers(gn.min_code, gn.max_code + 1, n)
        E = int(rng.integers(0, 1 << min(62, p.e_width)))
        w = rng.integers(-128, 128, (V, n))
        if kind is not None:
            a, _ = gnq.norm_quant_row(x, g, E, p.norm_quant())
            best = np.where(a >= 0, 127, -128)           # the largest logit any row can have
            if kind == "tie":
                w[1] = w[V - 1] = best
            else:
                w[V - 1] = best
        return {"name": name, **kw,
                "arrays": {"x": x, "g": g, "e": e_limbs(E, p.norm_quant()), "w": w}}

    out = [one("random", top)]
    if not quick:
        out += [one("narrow_row", (1 << lc.NORM_IN_BITS - 2) - 1), one("tie", top, "tie"),
                one("last", top, "last")]
    out.append(one("idle_backpressure", top, idle=0.3, stall=0.4, seed=seed + 5))
    return out


def real_case(im, cap: dict, name: str = "head") -> tuple:
    """The last token of a captured integer-model run (``cap`` of
    :func:`models.bitnet.integer_model.integer_forward`): ``(LmHeadParams, stimulus case)``;
    the case's golden token is the integer model's greedy choice after that row (tested)."""
    last = max(k for k in cap if isinstance(k, int))
    x = cap[last]["x_out"][-1]
    V, n = im.head.shape
    fn = im.final_norm
    p = spec.LmHeadParams(hidden=n, vocab=V, lanes=int(np.gcd(n, 16)),
                          gamma_frac=fn.p.gamma.frac,
                          e_width=max(1, int(fn.eps).bit_length()),
                          res_width=max(im.res.width, int(np.abs(x).max()).bit_length() + 1))
    arrays = {"x": x, "g": fn.gamma, "e": e_limbs(fn.eps, p.norm_quant()), "w": im.head}
    return p, {"name": f"{name}_pos{cap[last]['x_out'].shape[0] - 1}", "arrays": arrays}


KERNEL = Kernel(
    name="lm-head",
    top="lm_head",
    summary="end of a VitaLLM decode step: residual row peak → shift, final RMSNorm + int8 "
            "quantizer, int8 LM head (exact logits), greedy token",
    params_cls=spec.LmHeadParams,
    cli_params=(
        CliParam("hidden", int, 16, "residual row length"),
        CliParam("vocab", int, 24, "vocabulary (rows of the head)"),
        CliParam("lanes", int, 8, "lanes of the norm unit and the head MVU (divides hidden)"),
        CliParam("e_width", int, 64, "bits of the final RMSNorm's ε constant E"),
        CliParam("res_width", int, 28, "bits of the residual codes"),
    ),
    component_path="rtl.vitallm.lm_head:LmHead",
    testbench="hwsim.sim.tb_lm_head",
    golden="hwsim.golden.vitallm.lm_head:lm_head",
    cycles=spec.latency_cycles,
    parts=("norm-quant", "int8-mvu"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(hidden=8, vocab=6, lanes=4, res_width=28),),
)
