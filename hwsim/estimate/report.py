"""Terminal tables for one estimate: headline figures and the per-layer roofline."""

from __future__ import annotations

from .estimate import Estimate

__all__ = ["format_estimate"]


def _fmt_cycles(c: float) -> str:
    return f"{c:,.0f}"


def format_estimate(est: Estimate) -> str:
    m = est.metrics()
    a = est.arch
    lines = [f"{est.model} on {a.name} ({a.kind}, arch v{a.version}, tables {a.tables}; "
             f"clock {a['clock'] / 1e6:g} MHz)", ""]
    head = [
        ("decode", f"{m['decode_tokens_per_s']:.2f} tokens/s ({m['decode_ms_per_token']:.2f} ms "
                   f"per token at context {m['decode_context']}; {m['decode_bound']}-bound)"),
        ("prefill", f"{m['prefill_s']:.3f} s for {m['prefill_tokens']} tokens "
                    f"({m['prefill_tokens_per_s']:.1f} tokens/s; {m['prefill_bound']}-bound)"),
        ("energy per decode token", f"{m['energy_per_token_mj']:.3f} mJ (on chip "
                                    f"{m['core_energy_per_token_mj']:.3f} mJ + DRAM "
                                    f"{m['dram_energy_per_token_mj']:.3f} mJ)"),
        ("average power (decode)", f"{m['power_mw']:.2f} mW on chip, "
                                   f"+ {m['dram_power_mw']:.1f} mW DRAM"),
        ("off-chip traffic", f"{m['decode_offchip_mb_per_token']:.1f} MB per decode token"),
    ]
    if a.kind == "asic":
        ar = est.area
        head.append(("area", f"{m['area_mm2']:.4f} mm² (SRAM {ar['sram'] * 1e6:.4f}, logic "
                              f"{ar['logic'] * 1e6:.4f}: ternary {ar['tint'] * 1e6:.4f}, Booth "
                              f"{ar['booth'] * 1e6:.4f}, nonlinear {ar['nonlinear'] * 1e6:.4f} "
                              f"cells)"))
        head.append(("efficiency", f"{m['tops_per_w']:.2f} TOPS/W (2 ops per MAC, on chip)"))
    else:
        r = est.resources
        u = r["utilization"]
        head.append(("resources", f"{r['luts']:,} LUT ({u['luts']:.1%}), {r['ffs']:,} FF "
                                  f"({u['ffs']:.1%}), {r['dsps']:,} DSP48E2 ({u['dsps']:.1%}), "
                                  f"{r['brams']:g} BRAM36 ({u['brams']:.1%})"))
        head.append(("fits the part", ("yes" if r["fits"] else "NO")
                     + f" (limiting: {r['limiting']})"))
    w = max(len(k) for k, _ in head)
    lines += [f"{k:<{w}}  {v}" for k, v in head]
    for ph in (est.decode, est.prefill):
        lines += ["", f"{ph.phase} ({ph.tokens} token{'s' if ph.tokens > 1 else ''}, context "
                      f"{ph.context}): per layer, compute vs memory (roofline)"]
        cols = ("layer/op", "×", "kernel", "compute cyc", "memory cyc", "bound", "MAC/byte",
                "energy µJ")
        rows = []
        for l in ph.layers:
            rows.append((l.name, str(l.repeat), "", _fmt_cycles(l.compute_cycles),
                         _fmt_cycles(l.memory_cycles), l.bound, "",
                         f"{1e6 * sum(o.core_energy_j + o.dram_energy_j for o in l.ops):,.1f}"))
            for o in l.ops:
                inten = "∞" if o.intensity == float("inf") else f"{o.intensity:.2f}"
                rows.append(("  " + o.name, "", o.kernel, _fmt_cycles(o.compute_cycles),
                             _fmt_cycles(o.memory_cycles), o.bound, inten,
                             f"{1e6 * (o.core_energy_j + o.dram_energy_j):,.1f}"))
        cw = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(cols)]
        lines.append("  ".join(c.ljust(cw[i]) for i, c in enumerate(cols)))
        lines += ["  ".join(r[i].ljust(cw[i]) for i in range(len(cols))) for r in rows]
    return "\n".join(lines)
