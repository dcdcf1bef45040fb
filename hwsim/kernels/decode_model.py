"""Registry entry and stimulus of a whole BitNet decode step on one time-multiplexed decoder
layer (embedding row → every layer, loaded in turn → final norm → LM head → greedy token)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import decode_model as spec

from . import CliParam, Kernel
from . import decoder_layer as kdl
from . import lm_head as klh
from ._contract import NORM_QUANT, RESIDUAL, latency, one_at_a_time
from .norm_quant import e_value

_STREAMS = {"w": kdl.w_words, "kv": kdl.cache_words, "wo": kdl.wo_words, "w1": kdl.w1_words,
            "w3": kdl.w3_words, "w2": kdl.w2_words}


def manifest(p: spec.DecodeModelParams) -> dict:
    lat = latency(spec.latency_cycles, p, first="x beat", last="y beat")  # at L = M
    return {"kernel": "decode-model",
            "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
            "widths": {"x": p.res_width, "token": p.head().token_width, "cfg": spec.CFG_WORD},
            "load_beats": spec.load_beats(p),
            "cfg_fields": [{"port": n, "bits": b} for n, b in spec.cfg_fields(p.layer())],
            "numeric": {
                "function": "hwsim.golden.vitallm.decode_model.decode_model: per layer, "
                            "decoder-layer on the row buffer (its output saturated to "
                            "res_width bits); then lm-head -> greedy token",
                "norm_quant": NORM_QUANT, "residual": RESIDUAL,
                "layer_streams": "w, kv, wo, w1, w3, w2 as decoder-layer, one layer's beats "
                                 "per load phase (load_beats), taken only while loading",
                "cfg": "per layer: decoder-layer's static ports concatenated in cfg_fields "
                       "order (first lowest), 32-bit words, lowest first",
                "hw": "lm-head's w (int8 head weight words), before the first token",
                "head_gamma": "final RMSNorm gains (lm-head gamma); static",
                "head_e": "final RMSNorm eps constant (lm-head e); static",
                "length": "tokens the step sees (1 ... tokens), sampled with its first x beat; "
                          "each layer's kv load is its length - 1 earlier rows; latency and "
                          "load_beats here are at length = tokens",
                "kv_new": "valid-only: the new token's k, v of the layer on `layer`, kv_heads "
                          "beats per layer (decoder-layer's kv_new)",
                "rounding": "half_even", "overflow": "layer outputs saturate to res_width",
            },
            "latency": lat,
            "interval": one_at_a_time(lat, overlap="the next token's row is taken while the "
                                                   "head runs"),
            "cycles": {"phases": spec.phase_cycles(p), "token": spec.latency_cycles(p)}}


def layer_words(layers: list[dict], p: spec.DecodeModelParams,
                length: int | None = None) -> dict[str, list[int]]:
    """Every load stream's beats for one token over ``L = length`` visible tokens (default
    ``tokens``): the layers' words back to back, each layer's cache cut to its ``L − 1``
    earlier rows."""
    q = p.layer()
    L = p.tokens if length is None else int(length)
    layers = [{**a, "K": np.asarray(a["K"])[:, :L - 1], "V": np.asarray(a["V"])[:, :L - 1]}
              for a in layers]
    out = {n: [w for a in layers for w in fn(a, q)] for n, fn in _STREAMS.items()}
    out["cfg"] = [w for a in layers for w in spec.cfg_words(kdl.port_values(a, q), q)]
    return out


def x_words(x, p: spec.DecodeModelParams) -> list[int]:
    return kdl.x_words({"x": x}, p.layer())


def length_of(a: dict, p: spec.DecodeModelParams) -> int:
    """The case's run-time length ``L`` (default: ``tokens``)."""
    return int(np.ravel(a["length"])[0]) if "length" in a else p.tokens


def port_values(a: dict, p: spec.DecodeModelParams) -> dict[str, int]:
    """Packed values of the static ports ``head_gamma``, ``head_e`` and ``length``."""
    _, _, head = split(a, p)
    v = klh.port_values(head, p.head())
    return {"head_gamma": v["gamma"], "head_e": v["e"], "length": length_of(a, p)}


def join(x, layers: list[dict], head: dict) -> dict:
    """One flat array dict (a stimulus case's ``arrays``): ``x``, the head's ``head_g``,
    ``head_e``, ``head_w`` and layer ``i``'s ``decoder-layer`` arrays as ``l{i}__{name}``."""
    return {"x": np.asarray(x), **{f"head_{k}": v for k, v in head.items()},
            **{f"l{i}__{k}": v for i, la in enumerate(layers) for k, v in la.items()}}


def split(a: dict, p: spec.DecodeModelParams) -> tuple:
    """:func:`join`'s inverse: ``(x, [layer arrays], head arrays)``."""
    layers = [{k.split("__", 1)[1]: v for k, v in a.items() if k.startswith(f"l{i}__")}
              for i in range(p.layers)]
    head = {k[5:]: v for k, v in a.items() if k.startswith("head_")}
    return a["x"], layers, head


def golden_words(p: spec.DecodeModelParams, a: dict) -> np.ndarray:
    """The checker's integer list: the token, then its logit."""
    x, layers, head = split(a, p)
    tok, logit, _ = spec.decode_model(x, [kdl.golden_arrays(la) for la in layers],
                                      {"g": head["g"], "E": e_value(head["e"]), "w": head["w"]},
                                      p, length_of(a, p))
    return np.array([tok, logit], dtype=np.int64)


def cases(p: spec.DecodeModelParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random layers (``decoder-layer``'s stimulus, one case a layer, each layer's input the
    previous one's output, drawn at a residual width ``2·layers + 2`` bits narrower so that
    the rows stay inside ``res_width``) and a random head (``lm-head``'s stimulus); the
    embedding row is the first layer's stimulus row. Unless ``quick``, the same token at a
    run-time length below ``keep`` with ``y`` stalled."""
    q = p.layer()
    hp = p.head()
    # drawn at a narrower residual width, so that L layers of growth stay inside res_width
    q2 = dataclasses.replace(q, res_width=max(16, q.res_width - 2 * p.layers - 2))
    rng = np.random.default_rng(seed + 900)
    layers = [c["arrays"] for c in (kdl.cases(q2, seed + i, True)[0] for i in range(p.layers))]
    head = klh.cases(hp, seed, True)[0]["arrays"]
    arrays = join(layers[0]["x"], layers, head)
    golden_words(p, arrays)              # the chain stays inside res_width (else: one line)
    out = [{"name": "random", "arrays": arrays, "seed": int(rng.integers(1 << 30))}]
    if not quick:       # a step that sees fewer tokens than the cache holds, y stalled
        short = {**arrays, "length": np.array([max(1, p.keep - 1)])}
        golden_words(p, short)
        out.append({"name": "short_length", "arrays": short, "seed": out[0]["seed"],
                    "stall": 0.5})
    return out


def real_case(im, cap: dict, keep: int, name: str = "model") -> tuple:
    """The last token of a captured integer-model run (``cap`` of
    :func:`models.bitnet.integer_model.integer_forward`, sparse attention with K = ``keep``)
    through every layer: ``(DecodeModelParams, stimulus case)``. The layers must share their
    gains' formats (one datapath runs them all); ε constants take the widest layer's width."""
    per = [kdl.real_case(im, cap, i, keep) for i in range(len(im.layers))]
    widths = ("norm_e_width", "sub_e_width", "ffn_e_width", "ffn_sub_e_width")
    base = per[0][0]
    for i, (q, _, _) in enumerate(per):
        diff = [f.name for f in dataclasses.fields(q)
                if f.name not in widths and getattr(q, f.name) != getattr(base, f.name)]
        if diff:
            raise HwsimError(f"decode-model: layer {i} differs from layer 0 in "
                             f"{', '.join(diff)}; one datapath runs every layer")
    wide = {w: max(getattr(q, w) for q, _, _ in per) for w in widths}
    hp, hcase = klh.real_case(im, cap)
    p = spec.DecodeModelParams(**{**dataclasses.asdict(base), **wide},
                               layers=len(im.layers), vocab=hp.vocab,
                               head_gamma_frac=hp.gamma_frac, head_e_width=hp.e_width)
    layers = [c["arrays"] for _, c, _ in per]
    arrays = join(per[0][1]["arrays"]["x"], layers, hcase["arrays"])
    return p, {"name": f"{name}_pos{cap[0]['x_in'].shape[0] - 1}", "arrays": arrays}


KERNEL = Kernel(
    name="decode-model",
    top="decode_model",
    summary="a whole BitNet decode step: every layer on one time-multiplexed decoder-layer "
            "(weights, KV cache and parameters loaded per layer), then lm-head → greedy token",
    params_cls=spec.DecodeModelParams,
    cli_params=(
        CliParam("layers", int, 2, "decoder layers"),
        CliParam("vocab", int, 12, "rows of the LM head"),
        *kdl.KERNEL.cli_params,           # the decoder layer's, res_width between layers
    ),
    component_path="rtl.vitallm.decode_model:DecodeModel",
    testbench="hwsim.sim.tb_decode_model",
    golden="hwsim.golden.vitallm.decode_model:decode_model",
    cycles=spec.latency_cycles,
    parts=("decoder-layer", "lm-head"),
    manifest=manifest,
    cases=cases,
    test_params=(dict(layers=2, vocab=6, heads=2, kv_heads=1, head_dim=4, ffn=8, tokens=5,
                      keep=2, lanes=4, exp_lanes=2, res_width=28),),
)
