"""AirFM-DDA on the attention-head kernel: one real DDA window bit-exact in RTL, and the cost of
window versus global attention.

A Sionna channel sample goes through the DDA transform and the AirFM net (a trained run with
``--run``, else a freshly initialized net, said so in the output) up to one attention layer;
that window's ``q, k, v`` become int8 codes and run on the attention-head RTL under cocotb
(:func:`hwsim.sim.runner.simulate`), which checks ``==`` against
:func:`hwsim.golden.common.attention_head.run_ops` and the measured cycles against the formula. The
cost figures come from :func:`models.airfm.hardware.attention_cost` (the golden module's
``stream_cycles`` and ``action_counts``); ``--synth`` adds UltraScale+ resources (Yosys
``synth_xilinx -family xcup``; ``synth_tool`` names the build) of the window head and of the
global head (whose KV cache holds the whole grid).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

DESCRIPTION = ("AirFM-DDA window attention on the attention-head RTL: a real DDA window bit-exact "
               "under cocotb, window vs global cycles / MACs / KV cache / latency, optional "
               "UltraScale+ resources")


def add_arguments(p) -> None:
    p.add_argument("--run", type=Path, default=None,
                   help="AirFM run folder (hwsim airfm train); default: untrained net")
    p.add_argument("--variant", choices=("window", "window_int8", "window_int4"),
                   default="window", help="net of the run: float, or a QAT net (its own int8 "
                                          "q/k/v codes)")
    p.add_argument("--profile", default="CDL-D", help="channel profile of the sample")
    p.add_argument("--speed", type=float, default=60.0, help="UE speed km/h of the sample")
    p.add_argument("--layer", type=int, default=0, help="attention layer")
    p.add_argument("--window", type=int, default=0, help="window index in the layer")
    p.add_argument("--lanes", type=int, default=16, help="multipliers of the engine")
    p.add_argument("--exp-lanes", type=int, default=4, help="exponential units")
    p.add_argument("--clock-mhz", type=float, default=250.0, help="fabric clock for latency")
    p.add_argument("--sim", choices=("icarus", "verilator", "none"), default="icarus")
    p.add_argument("--synth", action="store_true", help="synthesize window and global heads")
    p.add_argument("--seed", type=int, default=7, help="channel-sample seed")


def run(args) -> dict:
    import torch

    from hwsim.errors import HwsimError
    from hwsim.kernels import get_kernel
    from models.airfm.data import split
    from models.airfm.hardware import attention_cost, head_params, window_case
    from models.airfm.model import AirFMConfig, AirFMNet
    from models.airfm.pipeline import load_net
    from models.channels.timevarying import ChannelSpec, generate, parse_profiles

    torch.set_num_threads(1)
    (profile,) = parse_profiles(args.profile)[:1]
    if args.run is not None:
        net, meta = load_net(args.run, args.variant)
        cfg, base, trained = net.cfg, ChannelSpec(**meta["channel"]), True
    else:
        if args.variant != "window":
            raise HwsimError("--variant needs --run (a trained run folder)")
        torch.manual_seed(0)
        cfg = AirFMConfig()
        net, base, trained = AirFMNet(cfg), ChannelSpec(frames=cfg.past + cfg.future), False
    if not 0 <= args.layer < cfg.layers:
        raise HwsimError(f"layer must be 0 … {cfg.layers - 1}, not {args.layer}")
    nw = cfg.tokens // cfg.window_tokens
    if not 0 <= args.window < nw:
        raise HwsimError(f"window must be 0 … {nw - 1}, not {args.window}")
    spec = ChannelSpec(**{**base.to_dict(), "profile": profile, "speed_kmh": args.speed})
    ds = split(generate(spec, 1, seed=args.seed), cfg.past)
    kernel = get_kernel("attention-head")
    p = head_params(cfg, "window", args.lanes, args.exp_lanes)
    case = window_case(net, ds.X[0], p, args.layer, args.window)
    cost = attention_cost(cfg, args.lanes, args.exp_lanes, args.clock_mhz * 1e6)
    ref = case["float_ref"]
    out = {"trained": trained, "run": str(args.run) if args.run else None,
           "variant": args.variant,
           "sample": {"profile": profile, "speed_kmh": args.speed, "seed": args.seed},
           "config": cfg.to_dict(), "head": {"head_dim": p.head_dim, "max_len": p.max_len,
                                             "lanes": p.lanes, "exp_lanes": p.exp_lanes},
           "golden_vs_float_max_abs": float(np.abs(case["golden_real"] - ref).max()),
           "float_max_abs": float(np.abs(ref).max()), "cost": cost}
    with tempfile.TemporaryDirectory() as tmp:
        if args.sim != "none":
            from hwsim.sim.runner import simulate

            rep = simulate(kernel, p, [case], Path(tmp) / "sim", sim=args.sim)
            if not rep.passed:
                raise HwsimError(f"{args.sim} simulation failed: {rep.failures}")
            c = rep.cases[0]
            out["rtl"] = {"sim": args.sim, "bit_exact": c["bit_exact"],
                          "cycles": c["cycles"], "formula_cycles": c["expected_cycles"],
                          "cycles_match": c["cycles_match"]}
        if args.synth:
            from fpga.yosys import synth_xilinx
            from rtl.emit import emit

            for att in ("window", "global"):
                hp = head_params(cfg, att, args.lanes, args.exp_lanes)
                folder = Path(tmp) / f"synth_{att}"
                v = emit(kernel.component(hp), kernel.top, folder, kernel.manifest(hp))
                res = synth_xilinx(v["verilog"], kernel.top, workdir=folder)
                r = res["resources"]
                out[f"{att}_resources"] = {k: r[k] for k in ("luts", "ffs", "dsp48e2", "carry",
                                                              "bram36")}
                out["synth_tool"] = res["yosys"]
    return out


def table(r: dict) -> str:
    c, w, g = r["cost"], r["cost"]["window"], r["cost"]["global"]
    rows = [
        ("net", f"trained run {r['run']} ({r['variant']})" if r["trained"]
         else "untrained (no --run)"),
        ("DDA sample", f"{r['sample']['profile']} at {r['sample']['speed_kmh']:g} km/h"),
        ("head", f"head_dim={r['head']['head_dim']} window tokens={r['head']['max_len']} "
                 f"lanes={r['head']['lanes']} exp_lanes={r['head']['exp_lanes']}"),
    ]
    if "rtl" in r:
        x = r["rtl"]
        rows += [(f"RTL ({x['sim']}) == golden on the window", "yes" if x["bit_exact"] else "NO"),
                 ("window cycles measured / formula", f"{x['cycles']} / {x['formula_cycles']}")]
    rows += [
        ("golden vs float attention: max abs / max |float|",
         f"{r['golden_vs_float_max_abs']:.4f} / {r['float_max_abs']:.4f}"),
        ("tokens per window: window / global", f"{w['window_tokens']} / {g['window_tokens']}"),
        ("attention cycles per inference: window / global", f"{w['cycles']} / {g['cycles']}"),
        (f"latency at {c['clock_hz'] / 1e6:g} MHz (µs): window / global",
         f"{w['latency_us']:.1f} / {g['latency_us']:.1f}"),
        ("global / window: cycles", f"{c['ratio_cycles']:.2f}×"),
        ("global / window: QKᵀ+AV MACs", f"{c['ratio_mac']:.2f}×"),
        ("global / window: KV-cache bits", f"{c['ratio_kv_cache']:.2f}×"),
    ]
    for att in ("window", "global"):
        if f"{att}_resources" in r:
            x = r[f"{att}_resources"]
            rows.append((f"UltraScale+ {att} head: LUT / FF / DSP / CARRY / BRAM36",
                         f"{x['luts']} / {x['ffs']} / {x['dsp48e2']} / {x['carry']} / "
                         f"{x['bram36']}"))
    if "synth_tool" in r:
        rows.append(("synthesis", f"{r['synth_tool']}, synth_xilinx -family xcup"))
    wd = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{wd}}  {v}" for k, v in rows)
