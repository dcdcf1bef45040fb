"""Registry entry and stimulus of the norm unit (RMSNorm with integer ε + activation
quantizer)."""

from __future__ import annotations

import dataclasses

import numpy as np

from hwsim.golden.common.lanes import pack_lanes, unpack_lanes
from hwsim.golden.vitallm import layer_codes as lc
from hwsim.golden.vitallm import norm_quant as spec
from hwsim.golden.vitallm import rmsnorm_int as rn

from . import CliParam, Kernel
from ._contract import interval, latency

LIMB = 32   # E is stored in stimulus files as 32-bit limbs, lowest first (it exceeds int64)


def manifest(p: spec.NormQuantParams) -> dict:
    norm = p.norm()
    return {
        "kernel": "norm-quant",
        "params": {f.name: getattr(p, f.name) for f in dataclasses.fields(p)},
        "numeric": {
            "function": "hwsim.golden.vitallm.norm_quant.norm_quant: eps = eps_code(E, shift) (E "
                        "rounded half up by 2*shift bits, capped at EPS_CAP); y = rmsnorm_int("
                        "x, gamma, eps) in NORM_OUT codes; amax = max |y|; (r, k) = "
                        "reciprocal(amax, ACT_RECIP_BITS); a = sat8(round_half_even(y * r * "
                        "127 * 2**-k))",
            "E": {"port": "e", "width": p.e_width, "signed": False,
                  "meaning": "the norm's eps constant (hwsim.golden.vitallm.layer_codes.eps_code, power "
                             "0), held while a vector loads"},
            "shift": {"field": "inp.shift", "width": p.shift_width,
                      "meaning": "the row's right shift to NORM_IN_BITS bits, from the "
                                 "vector's last beat"},
            "rounding": "half_even (activation quantizer); the norm's own: " + norm.out.rounding.value,
            "overflow": "saturate to int8",
            "x": norm.x.to_dict(), "gamma": norm.gamma.to_dict(), "norm_out": norm.out.to_dict(),
            "y_beat": "a: lanes int8 codes, lane 0 lowest; amax: the vector's max |y| in "
                      "NORM_OUT codes, on every beat",
        },
        "latency": latency(spec.latency_cycles, p, unit="vector"),
        "interval": interval(rn.latency_cycles, norm, unit="vector"),
        "cycles": {
            "vector": spec.latency_cycles(p),
            "interval": spec.stream_cycles(p, 2) - spec.latency_cycles(p),
        },
    }


def e_limbs(E: int, p: spec.NormQuantParams) -> np.ndarray:
    """``E`` as ``ceil(e_width / 32)`` limbs (int64 array, lowest first)."""
    n = -(-p.e_width // LIMB)
    return np.array([(int(E) >> (LIMB * i)) & ((1 << LIMB) - 1) for i in range(n)],
                    dtype=np.int64)


def e_value(limbs) -> int:
    return sum(int(v) << (LIMB * i) for i, v in enumerate(np.asarray(limbs).ravel()))


def in_words(X, g, shifts, p: spec.NormQuantParams) -> list[int]:
    """Input beats: struct ``{x: lanes × WIDE, g: lanes × gamma, shift}``, ``n/lanes`` per
    vector (every beat carries the vector's shift; the last one counts)."""
    L, q = p.lanes, p.norm()
    xw, gw = q.x.width, q.gamma.width
    return [pack_lanes(x[c * L:(c + 1) * L], xw)
            | pack_lanes(g[c * L:(c + 1) * L], gw) << L * xw
            | int(s) << L * (xw + gw)
            for x, s in zip(np.atleast_2d(X), np.ravel(shifts), strict=True)
            for c in range(p.chunks)]


def out_words(words: list[int], p: spec.NormQuantParams) -> tuple[np.ndarray, np.ndarray]:
    """``y`` beats → ``(a (beats·lanes,) int8 codes, amax (beats,))``."""
    L = p.lanes
    a = np.concatenate([unpack_lanes(w, 8, L) for w in words]) if words else np.zeros(0, int)
    return a, np.array([w >> (8 * L) for w in words], dtype=np.int64)


def vector_e(arrays: dict) -> list[int]:
    """Each vector's ``E``: a case's ``e`` is one limb row (:func:`e_limbs`) for every vector or
    one row per vector, (vectors, limbs) (the RTL uses it with each vector's last beat; it is
    held while a vector loads)."""
    n = np.atleast_2d(arrays["X"]).shape[0]
    e = np.asarray(arrays["e"])
    return [e_value(e)] * n if e.ndim == 1 else [e_value(row) for row in e]


def side_values(p: spec.NormQuantParams, arrays: dict) -> list[tuple[tuple[str, int], ...]]:
    """Per input beat, the ``e`` a host drives with it: the vector's own ``E`` on every beat."""
    return [(("e", E),) for E in vector_e(arrays) for _ in range(p.chunks)]


def golden_words(p: spec.NormQuantParams, arrays: dict) -> np.ndarray:
    """The checker's integer list: every code, then each vector's amax (each vector with its
    own ``E``)."""
    X, shifts = np.atleast_2d(arrays["X"]), np.ravel(arrays["shift"])
    rows = [spec.norm_quant(X[v:v + 1], arrays["g"], E, shifts[v:v + 1], p)
            for v, E in enumerate(vector_e(arrays))]
    return np.concatenate([np.concatenate([a.ravel() for a, _ in rows]),
                           np.concatenate([m.ravel() for _, m in rows])])


def layer_case(norm: lc.NormCodes, x, name: str = "layer_rows") -> tuple:
    """Rows ``x`` of a layer's norm input (e.g. its residual rows) as a stimulus case of the
    norm unit: ``(params, case, (a, amax) the integer model computes: act_quant(rms_rows))``.
    Only norms with a fixed input step (``eps_power = 0``) run on this unit."""
    from hwsim.errors import HwsimError

    if norm.eps_power:
        raise HwsimError(f"norm-quant takes norms with eps_power 0, not {norm.eps_power}")
    xs, shifts = lc.shift_rows(x)
    p = spec.NormQuantParams(n=norm.p.n, lanes=norm.p.lanes, gamma_frac=norm.p.gamma.frac,
                             e_width=max(1, int(norm.eps).bit_length()),
                             shift_width=max(1, int(shifts.max()).bit_length()))
    case = {"name": name, "arrays": {"X": xs, "g": norm.gamma, "e": e_limbs(norm.eps, p),
                                     "shift": shifts}}
    return p, case, lc.act_quant(lc.rms_rows(x, norm))


def cases(p: spec.NormQuantParams, seed: int = 0, quick: bool = False) -> list[dict]:
    """Random shifted rows with random shifts and ``E``; rows where ε dominates (small rows);
    ``E`` past the cap at shift 0; a zero row; extreme rows; idle input and back-pressure."""
    rng = np.random.default_rng(seed)
    q = p.norm()
    top = 1 << lc.NORM_IN_BITS
    smax = (1 << p.shift_width) - 1
    emax = (1 << p.e_width) - 1

    def gains():
        return rng.integers(q.gamma.min_code, q.gamma.max_code + 1, p.n)

    def case(name, X, E, shifts, **kw):
        X = np.atleast_2d(X)
        return {"name": name, **kw, "arrays": {"X": X, "g": gains(), "e": e_limbs(E, p),
                                                "shift": np.asarray(shifts, dtype=np.int64)}}

    def rand_e():
        return int(rng.integers(0, 1 << 62)) >> int(rng.integers(0, 40)) & emax

    out = [case("random", rng.integers(-top, top, (2, p.n)), rand_e(),
                rng.integers(0, smax + 1, 2))]
    if not quick:
        out += [
            case("small_rows", rng.integers(-40, 41, (2, p.n)), min(emax, 1 << 26), [0, 1]),
            case("eps_capped", rng.integers(-top, top, (1, p.n)), emax, [0]),
            case("zero_row", np.zeros((1, p.n), int), 0, [0]),
            case("extremes", np.stack([np.full(p.n, -top), np.full(p.n, top - 1)]), 1,
                 [smax, 0]),
        ]
    out.append(case("idle_backpressure", rng.integers(-top, top, (2, p.n)), rand_e(),
                    rng.integers(0, smax + 1, 2), idle=0.3, stall=0.4, seed=seed + 7))

    def per_vector(name, **kw):
        # small rows where ε matters, each vector with its own shift and its own E: none, then
        # an ε code about the row's mean square (v), 16·v and v/16 (the quantizer divides by the
        # row's amax, so ε shows mostly in amax)
        X = rng.integers(-40, 41, (4, p.n))
        shifts = rng.integers(0, min(smax, 2) + 1, 4)
        Es = []
        for k, (x, s, scale) in enumerate(zip(X, shifts, (0, 5, 9, 1), strict=True)):
            v = int(np.sum(x.astype(np.int64) ** 2)) << 2 * q.rms_frac
            Es.append(min(emax, ((v // p.n << 2 * int(s) << scale >> 5) if scale else 0) + k))
        c = case(name, X, 0, shifts, **kw)
        c["arrays"]["e"] = np.stack([e_limbs(E, p) for E in Es])
        return c

    if not quick:
        out.append(per_vector("per_vector"))
    out.append(per_vector("per_vector_stall50", stall=0.5, seed=seed + 11))
    if not quick:
        out.append(per_vector("per_vector_stall90", idle=0.3, stall=0.9, seed=seed + 13))
    return out


KERNEL = Kernel(
    name="norm-quant",
    top="norm_quant",
    summary="norm unit of the BitNet layer: RMSNorm with integer ε (E, shift) + absmax int8 "
            "activation quantizer",
    params_cls=spec.NormQuantParams,
    cli_params=(
        CliParam("n", int, 32, "vector length (hidden size)"),
        CliParam("lanes", int, 8, "elements per cycle (must divide n)"),
        CliParam("gamma_frac", int, 16, "fractional bits of the gains"),
        CliParam("e_width", int, 80, "bits of the ε constant E"),
        CliParam("shift_width", int, 5, "bits of a vector's shift"),
    ),
    component_path="rtl.vitallm.norm_quant:NormQuant",
    testbench="hwsim.sim.tb_norm_quant",
    golden="hwsim.golden.vitallm.norm_quant:norm_quant",
    cycles=spec.latency_cycles,
    parts=("rmsnorm",),
    manifest=manifest,
    cases=cases,
    test_params=(dict(n=16, lanes=4, gamma_frac=14, e_width=72),),
)
