"""cocotb tier of the ternary MVU, its own cases: the checker rejects a wrong and a slower
RTL, waveforms, the simulator check, and per-vector scales under back-pressure at every
parameter corner (the registry-wide test runs its stimulus cases on both simulators)."""

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from hwsim.errors import HwsimError, ToolMissingError
from hwsim.kernels import get_kernel
from hwsim.sim import runner
from hwsim.sim.checker import one_cycle_late
from rtl.vitallm.ternary_mvu import TernaryMVU

pytestmark = pytest.mark.cocotb

KERNEL = get_kernel("ternary-mvu")


class OffByOneMVU(TernaryMVU):
    """A deliberately wrong unit: flips the LSB of every output code."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = TernaryMVU(self.params)
        for name in ("w", "x"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(inner, name))
        m.d.comb += [inner.mult.eq(self.mult), inner.shift.eq(self.shift),
                     self.busy.eq(inner.busy),
                     self.y.valid.eq(inner.y.valid), inner.y.ready.eq(self.y.ready),
                     self.y.payload.eq(inner.y.payload ^ 1)]
        return m


def test_checker_catches_a_wrong_rtl(tmp_path):
    """The testbench can fail: a unit that is off by one LSB is reported, case by case."""
    broken = dataclasses.replace(
        KERNEL, component_path="tests.sim.test_ternary_mvu_cocotb:OffByOneMVU")
    p = KERNEL.params(lanes=2, rows=2, cols=4)
    report = runner.simulate(broken, p, KERNEL.cases(p, quick=True), tmp_path, sim="icarus")
    assert not report.passed
    assert not any(c["bit_exact"] for c in report.cases)
    assert "outputs differ at" in report.failures[0]


def test_checker_catches_a_slower_rtl(tmp_path):
    """The cycle check can fail: the same RTL one cycle slower (one more register on ``y``)
    gives every code right and is rejected on every timed case, and only there."""
    late = one_cycle_late(KERNEL)
    p = KERNEL.params(lanes=2, rows=2, cols=4)
    cases = KERNEL.cases(p, quick=True)
    report = runner.simulate(late, p, cases, tmp_path, sim="icarus")
    assert not report.passed
    assert all(c["bit_exact"] for c in report.cases)
    timed = [c for c in report.cases if c["timed"]]
    assert timed and all(c["cycles"] == c["expected_cycles"] + 1 for c in timed)
    assert report.failures == [f"{c['name']}: {c['cycles']} cycles, formula says "
                               f"{c['expected_cycles']}" for c in timed]


def test_waves(tmp_path):
    p = KERNEL.params(lanes=2, rows=2, cols=4)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, quick=True), tmp_path, sim="icarus",
                             waves=True)
    assert report.passed and report.waves is not None and report.waves.stat().st_size > 0


def test_missing_simulator(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(runner.sys, "executable", "/nonexistent/python")
    with pytest.raises(ToolMissingError, match="simulator icarus needs `iverilog`"):
        runner.check_simulator("icarus")
    with pytest.raises(HwsimError, match="unknown simulator 'modelsim'"):
        runner.check_simulator("modelsim")


#: lanes == cols (one chunk per row), lanes == 1 (three chunks), rows == 1; the deep pipeline
#: at one chunk per row (a row leaves every cycle) and at one lane
CORNERS = [(4, 2, 4, "short"), (1, 3, 3, "short"), (4, 1, 4, "short"), (4, 2, 4, "deep"),
           (1, 3, 3, "deep")]


@pytest.mark.parametrize("lanes, rows, cols, pipeline", CORNERS)
def test_per_vector_scales_under_backpressure(tmp_path, lanes, rows, cols, pipeline):
    """Back-to-back vectors with their own M/S, the output stalled, at every parameter corner:
    the plan holds several vectors per case, each with its own M/S, driven with its beats."""
    p = KERNEL.params(lanes=lanes, rows=rows, cols=cols, pipeline=pipeline)
    # every per-vector case of seeds 0-2, and the 90 %-stall case of seeds 3-11: with one row,
    # a stall must catch a vector's row in the pipeline with the output register full, which
    # random stalls do in about a third of these cases
    cases = [c for seed in range(12) for c in KERNEL.cases(p, seed=seed)
             if c["name"].startswith("per_vector")
             and (seed < 3 or c["name"] == "per_vector_stall90")]
    for i, c in enumerate(cases):
        c["name"] = f"{c['name']}_{i}"
        assert np.asarray(c["arrays"]["mult"]).shape == (np.atleast_2d(c["arrays"]["X"]).shape[0],)
    report = runner.simulate(KERNEL, p, cases, tmp_path, sim="icarus")
    assert report.passed, report.failures
    assert any(c["timed"] for c in report.cases) and any(not c["timed"] for c in report.cases)
    for c in report.cases:
        assert c["bit_exact"], c
        if c["timed"]:
            assert c["cycles"] == c["expected_cycles"], c
        else:
            assert c["cycles"] >= c["expected_cycles"], c
