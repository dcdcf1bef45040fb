"""Estimator figures: speed of a whole-model estimate and of a sweep; RTL calibration."""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

DESCRIPTION = ("estimator speed (bitnet-3b on vitallm and xczu28dr, a 100-point sweep with "
               "CSV/JSON/PNG), every published silicon point (hwsim/estimate/silicon) beside its "
               "estimate; with --calibration, the FPGA resource model (ternary MVU, int8 "
               "MVU, absmax barrier, Booth and nonlinear cores) refitted on yosys and checked on held-out "
               "configurations, and estimated vs Amaranth-measured cycles")


def add_arguments(p) -> None:
    p.add_argument("--repeat", type=int, default=5, help="timed repetitions of one estimate")
    p.add_argument("--calibration", action="store_true",
                   help="also synthesize the calibration configurations with yosys (minutes)")


def _time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def booth_engine(lanes: int):
    """The Booth core's calibration harness: ``lanes`` int8 × int8 radix-4 Booth products
    (:func:`rtl.common.booth.multiply`, style ``"booth"``) of registered operands, their adder
    tree and a 32-bit accumulator (``clear`` restarts it) — the dot-product engine of the
    attention head's QKᵀ / A·V, without its memories and control."""
    from amaranth.hdl import Module, Mux, Signal, signed
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from rtl.common.arith import adder_tree
    from rtl.common.booth import multiply

    class BoothEngine(wiring.Component):
        def __init__(self):
            super().__init__({"a": In(8 * lanes), "b": In(8 * lanes), "clear": In(1),
                              "acc": Out(signed(32))})

        def elaborate(self, platform):
            m = Module()
            a, b = Signal(8 * lanes), Signal(8 * lanes)
            m.d.sync += [a.eq(self.a), b.eq(self.b)]
            products = [multiply(a[8 * i:8 * i + 8].as_signed(), b[8 * i:8 * i + 8].as_signed(),
                                 "booth") for i in range(lanes)]
            tree = Signal(signed(16 + lanes.bit_length()))
            m.d.sync += tree.eq(adder_tree(products))
            m.d.sync += self.acc.eq(Mux(self.clear, 0, self.acc + tree))
            return m

    return BoothEngine()


def _lane_synthesis(tmp: str) -> dict:
    """yosys resources of the Booth engine and the RMSNorm unit at every calibration lane count."""
    from fpga.yosys import synth_xilinx
    from hwsim.estimate.fpga import (
        BOOTH_CALIBRATION_CONFIGS,
        BOOTH_VALIDATION_CONFIGS,
        NONLINEAR_CALIBRATION_CONFIGS,
        NONLINEAR_N,
        NONLINEAR_VALIDATION_CONFIGS,
    )
    from hwsim.kernels import get_kernel
    from rtl.emit import to_verilog

    norm = get_kernel("rmsnorm")
    out = {"booth": {}, "nonlinear": {}}
    designs = [("booth", n, booth_engine(n), "booth_engine")
               for n in BOOTH_CALIBRATION_CONFIGS + BOOTH_VALIDATION_CONFIGS]
    designs += [("nonlinear", n, norm.component(norm.params(n=NONLINEAR_N, lanes=n)), norm.top)
                for n in NONLINEAR_CALIBRATION_CONFIGS + NONLINEAR_VALIDATION_CONFIGS]
    for core, lanes, component, top in designs:
        wd = Path(tmp) / f"{core}_{lanes}"
        wd.mkdir(parents=True)
        (wd / f"{top}.v").write_text(to_verilog(component, top))
        out[core][lanes] = synth_xilinx(wd / f"{top}.v", top, workdir=wd)["resources"]
    return out


def int8_mvu_synthesis(cfg: tuple, workdir: Path) -> tuple:
    """``(params, yosys resources)`` of the RTL ``Int8MVU`` at a calibration configuration
    ``(lanes, rows, cols, mult_bits, bias)`` (:data:`hwsim.estimate.fpga.INT8_MVU_CALIBRATION_CONFIGS`)."""
    from fpga.yosys import synth_xilinx
    from hwsim.estimate.fpga import int8_mvu_params
    from hwsim.kernels import get_kernel
    from rtl.emit import emit

    kernel = get_kernel("int8-mvu")
    p = int8_mvu_params(cfg)
    v = emit(kernel.component(p), kernel.top, workdir, kernel.manifest(p))
    return p, synth_xilinx(v["verilog"], kernel.top, workdir=workdir)["resources"]


def _int8_mvu_synthesis(tmp: str) -> dict:
    from hwsim.estimate.fpga import INT8_MVU_CALIBRATION_CONFIGS, INT8_MVU_VALIDATION_CONFIGS

    return {cfg: int8_mvu_synthesis(cfg, Path(tmp) / "_".join(map(str, cfg)))
            for cfg in INT8_MVU_CALIBRATION_CONFIGS + INT8_MVU_VALIDATION_CONFIGS}


def _calibration() -> dict:
    import numpy as np

    from fpga.yosys import synth_xilinx
    from hwsim.estimate import load_arch, load_tables
    from hwsim.estimate.fpga import (
        BARRIER_CALIBRATION_CONFIGS,
        BARRIER_VALIDATION_CONFIGS,
        BOOTH_CALIBRATION_CONFIGS,
        CALIBRATION_CONFIGS,
        INT8_MVU_CALIBRATION_CONFIGS,
        NONLINEAR_CALIBRATION_CONFIGS,
        VALIDATION_CONFIGS,
        barrier_resources,
        fit_barrier_coefficients,
        fit_int8_mvu_coefficients,
        fit_lane_coefficients,
        fit_tint_coefficients,
        int8_mvu_resources,
        lane_resources,
        tint_tile_resources,
    )
    from hwsim.estimate.kernels import cost
    from hwsim.golden.common.lanes import pack_lanes
    from hwsim.golden.vitallm import ternary_mvu as tmvu
    from hwsim.kernels import get_kernel
    from hwsim.sim.amaranth_bench import Sink, Source, run_streams
    from rtl.emit import emit
    from rtl.vitallm.ternary_mvu import TernaryMVU

    kernel = get_kernel("ternary-mvu")
    tables = load_tables("fpga_usplus")
    synth = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in CALIBRATION_CONFIGS + VALIDATION_CONFIGS:
            p = kernel.params(lanes=cfg[0], rows=cfg[1], cols=cfg[2])
            wd = Path(tmp) / "_".join(map(str, cfg))
            v = emit(kernel.component(p), kernel.top, wd, kernel.manifest(p))
            synth[cfg] = (p, synth_xilinx(v["verilog"], kernel.top, workdir=wd)["resources"])
    fitted = fit_tint_coefficients([synth[c] for c in CALIBRATION_CONFIGS])
    barrier = get_kernel("absmax-barrier")
    bsynth = {}
    with tempfile.TemporaryDirectory() as tmp:
        for cfg in BARRIER_CALIBRATION_CONFIGS + BARRIER_VALIDATION_CONFIGS:
            p = barrier.params(length=cfg[0], in_width=cfg[1], mul_style="dsp")
            wd = Path(tmp) / "_".join(map(str, cfg))
            v = emit(barrier.component(p), barrier.top, wd, barrier.manifest(p))
            bsynth[cfg] = (p, synth_xilinx(v["verilog"], barrier.top, workdir=wd)["resources"])
    fitted.update(fit_barrier_coefficients([bsynth[c] for c in BARRIER_CALIBRATION_CONFIGS]))
    with tempfile.TemporaryDirectory() as tmp:
        msynth = _int8_mvu_synthesis(tmp)
    fitted.update(fit_int8_mvu_coefficients([msynth[c] for c in INT8_MVU_CALIBRATION_CONFIGS]))
    with tempfile.TemporaryDirectory() as tmp:
        lsynth = _lane_synthesis(tmp)
    fit_sets = {"booth": BOOTH_CALIBRATION_CONFIGS, "nonlinear": NONLINEAR_CALIBRATION_CONFIGS}
    for core, configs in fit_sets.items():
        fitted.update(fit_lane_coefficients(core, [(n, lsynth[core][n]) for n in configs]))
    rows = []
    for cfg, (p, got) in synth.items():
        est = tint_tile_resources(p, tables)
        rows.append({"config": cfg, "set": "fit" if cfg in CALIBRATION_CONFIGS else "held-out",
                     "yosys_luts": got["luts"], "model_luts": est["luts"],
                     "lut_error_pct": 100 * (est["luts"] - got["luts"]) / got["luts"],
                     "yosys_ffs": got["ffs"], "model_ffs": est["ffs"],
                     "yosys_dsp": got["dsp48e2"], "model_dsp": est["dsps"],
                     "yosys_bram36": got["bram36"], "model_bram36": est["bram36"]})
    for cfg, (p, got) in bsynth.items():
        est = barrier_resources(p, tables)
        rows.append({"config": ("barrier", *cfg),
                     "set": "fit" if cfg in BARRIER_CALIBRATION_CONFIGS else "held-out",
                     "yosys_luts": got["luts"], "model_luts": est["luts"],
                     "lut_error_pct": 100 * (est["luts"] - got["luts"]) / got["luts"],
                     "yosys_ffs": got["ffs"], "model_ffs": est["ffs"],
                     "yosys_dsp": got["dsp48e2"], "model_dsp": est["dsps"],
                     "yosys_bram36": got["bram36"], "model_bram36": est["bram36"]})
    for cfg, (p, got) in msynth.items():
        est = int8_mvu_resources(p, tables)
        rows.append({"config": ("int8-mvu", *cfg),
                     "set": "fit" if cfg in INT8_MVU_CALIBRATION_CONFIGS else "held-out",
                     "yosys_luts": got["luts"], "model_luts": est["luts"],
                     "lut_error_pct": 100 * (est["luts"] - got["luts"]) / got["luts"],
                     "yosys_ffs": got["ffs"], "model_ffs": est["ffs"],
                     "yosys_dsp": got["dsp48e2"], "model_dsp": est["dsps"],
                     "yosys_bram36": got["bram36"], "model_bram36": est["bram36"]})
    for core, points in lsynth.items():
        for lanes, got in points.items():
            est = {k: round(v) for k, v in lane_resources(core, lanes, tables).items()}
            rows.append({"config": (core, lanes),
                         "set": "fit" if lanes in fit_sets[core] else "held-out",
                         "yosys_luts": got["luts"], "model_luts": est["lut"],
                         "lut_error_pct": 100 * (est["lut"] - got["luts"]) / got["luts"],
                         "yosys_ffs": got["ffs"], "model_ffs": est["ff"],
                         "yosys_dsp": got["dsp48e2"], "model_dsp": est["dsp"],
                         "yosys_bram36": got["bram36"], "model_bram36": 0})
    cycles = []
    arch = load_arch("vitallm")
    for lanes, r, c, vec in ((4, 3, 8, 2), (2, 5, 6, 3), (8, 4, 32, 2)):
        p = tmvu.TernaryMvuParams(lanes=lanes, rows=r, cols=c)
        rng = np.random.default_rng(0)
        W, X = rng.integers(-1, 2, (r, c)), rng.integers(-128, 128, (vec, c))
        dut = TernaryMVU(p)
        w = Source(dut.w, tmvu.weight_words(W, lanes))
        x = Source(dut.x, [pack_lanes(v[k * lanes:(k + 1) * lanes], 8) for v in X
                           for k in range(c // lanes)])
        y = Sink(dut.y, r * vec)
        run_streams(dut, [w, x], [y], settle=[(dut.mult, 1), (dut.shift, 8)])
        est = cost("ternary_mvu", {"rows": r, "cols": c}, vec,
                   arch.with_values({"tint.tiles": 1, "tint.lanes": lanes}))
        cycles.append({"config": (lanes, r, c, vec), "measured": y.cycles[-1] - x.cycles[0] + 1,
                       "estimated": est.cycles})
    return {"refit_coefficients": fitted, "resources": rows, "cycles": cycles}


def run(args) -> dict:
    from hwsim.estimate import estimate
    from hwsim.estimate.sweep import run_sweep, write_sweep
    from hwsim.estimate.validate import known_points, validation_table

    asic = _time(lambda: estimate("bitnet-3b", "vitallm"), args.repeat)
    fpga = _time(lambda: estimate("bitnet-3b", "xczu28dr"), args.repeat)
    lanes = "lanes=4,8,12,16,20,24,28,32,40,48"
    sram = "sram_kb=30,60,90,120,150,180,210,240,270,300"
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_sweep("bitnet-3b", "vitallm", [lanes, sram])
        t1 = time.perf_counter()
        write_sweep(result, Path(tmp) / "sweep")
        t2 = time.perf_counter()
    out = {"estimate_bitnet3b_vitallm_s": asic, "estimate_bitnet3b_xczu28dr_s": fpga,
           "sweep_points": len(result["points"]), "sweep_estimate_s": t1 - t0,
           "sweep_total_s": t2 - t0, "sweep_write_s": t2 - t1,
           "validation": [r for p in known_points() for r in validation_table(p)]}
    if args.calibration:
        from hwsim.estimate.asic_calibration import kernel_rows, unit_rows

        out["calibration"] = _calibration()
        out["calibration"]["asic_units"] = unit_rows()
        out["calibration"]["asic_area"] = kernel_rows(fmax=True)
    return out


def table(r: dict) -> str:
    rows = [
        ("bitnet-3b on vitallm, one estimate (median)", f"{r['estimate_bitnet3b_vitallm_s']:.3f} s"),
        ("bitnet-3b on xczu28dr, one estimate (median)",
         f"{r['estimate_bitnet3b_xczu28dr_s']:.3f} s"),
        (f"{r['sweep_points']}-point sweep, estimates", f"{r['sweep_estimate_s']:.2f} s"),
        (f"{r['sweep_points']}-point sweep, with CSV/JSON/PNG", f"{r['sweep_total_s']:.2f} s"),
    ]
    w = max(len(k) for k, _ in rows)
    lines = [f"{k:<{w}}  {v}" for k, v in rows]
    if r.get("validation"):
        from hwsim.estimate.validate import format_validation

        lines += ["", "published silicon vs estimate (hwsim estimate MODEL --target T --validate)"]
        for point in dict.fromkeys(x["point"] for x in r["validation"]):
            lines += ["", point,
                      format_validation([x for x in r["validation"] if x["point"] == point])]
    cal = r.get("calibration")
    if cal:
        lines += ["", "resources: model vs yosys synth_xilinx (-family xcup); ternary-mvu "
                      "(lanes, rows, cols), int8-mvu ('int8-mvu', lanes, rows, cols, mult_bits, bias), "
                      "absmax barrier ('barrier', length, in_width), "
                      "Booth engine ('booth', lanes), RMSNorm ('nonlinear', lanes)",
                  "configuration        set       LUT yosys/model (err)   FF yosys/model   "
                  "DSP   BRAM36 yosys/model"]
        for x in cal["resources"]:
            lines.append(f"{x['config']!s:<20} {x['set']:<9} {x['yosys_luts']:>5}/{x['model_luts']:<5}"
                         f" ({x['lut_error_pct']:+5.1f} %)   {x['yosys_ffs']:>4}/{x['model_ffs']:<4}"
                         f"        {x['yosys_dsp']}/{x['model_dsp']}   "
                         f"{x['yosys_bram36']:g}/{x['model_bram36']:g}")
        lines.append("refit coefficients: " + ", ".join(
            f"{k}={v:.3f}" for k, v in cal["refit_coefficients"].items()))
        lines += ["", "ternary-mvu cycles: estimated vs measured (Amaranth simulator)"]
        lines += [f"(lanes, rows, cols, vectors)={c['config']}: {c['estimated']} / {c['measured']}"
                  for c in cal["cycles"]]
        if cal.get("asic_units"):
            lines += ["", "ASIC units: asic_horowitz45 area vs the NanGate45 cell flow (µm², 45 nm)"]
            lines += [f"{u['unit']:<6} table {u['table_um2']:9.3f}  netlist {u['netlist_um2']:9.3f}"
                      f"  {'==' if u['equal'] else 'DIFFERENT'}" for u in cal["asic_units"]]
        if cal.get("asic_area"):
            lines += ["", "ASIC cell area: estimator inventory vs the kernel's netlist (µm², 45 nm, "
                          "memories apart)",
                      f"{'kernel':<12} {'configuration':<54} {'netlist':>9} {'estimate':>9} "
                      f"{'ratio':>6} {'FF rtl/est':>11} {'depth':>5} {'ECP5 MHz':>8}  model"]
            for x in cal["asic_area"]:
                verdict = "" if "within" not in x else ("  (±20 %: yes)" if x["within"]
                                                         else "  (±20 %: NO)")
                lines.append(f"{x['kernel']:<12} {x['config']:<54} {x['area_um2_rtl']:9.0f} "
                             f"{x['area_um2_est']:9.0f} {x['ratio']:6.2f} "
                             f"{x['ffs_rtl']:>5}/{x['ffs_est']:<5} {x['logic_depth_rtl']:>5} "
                             f"{_mhz(x.get('fmax_mhz_ecp5')):>8}  {x['model']}{verdict}")
    return "\n".join(lines)


def _mhz(v) -> str:
    return "—" if v is None else f"{v:.1f}"
