"""cocotb tier of the weight-streamed ternary projection, its own cases: a decode-sized
projection against the weight-traffic bound at several DRAM bandwidths and latencies, the
checker rejecting a slower RTL, and the memory model rejecting a burst across 4 KiB (the
registry-wide test runs the stimulus cases on both simulators)."""

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import weight_stream as ws
from hwsim.kernels import get_kernel
from hwsim.kernels.ternary_mvu import scale_for
from hwsim.sim import runner
from hwsim.sim.checker import one_cycle_late
from rtl.vitallm.weight_stream import TernaryStream
from tests.sim._report_checks import assert_only_cycles_fail

pytestmark = pytest.mark.cocotb

KERNEL = get_kernel("ternary-stream")


@pytest.mark.slow
def test_decode_projection_is_near_the_weight_traffic_bound(tmp_path):
    """512 × 512 ternary (64 KiB packed, 4096 beats of 16 bytes = 64 lanes): codes == golden,
    cycles == formula and within 1.10 × bytes / bytes_per_cycle at 16, 8, 4 B/cycle and
    latencies 0, 20, 100 (1.0088 … 1.0259 × at 16 B/cycle, 1.0020 … 1.0063 × at 4)."""
    p = KERNEL.params(rows=512, cols=512, data_bytes=16, burst_beats=16)
    rng = np.random.default_rng(5)
    cases = []
    for bpc in (16, 8, 4):
        for lat in (0, 20, 100):
            W, X = rng.integers(-1, 2, (512, 512)), rng.integers(-128, 128, (1, 512))
            cases.append({"name": f"bw{bpc}_lat{lat}", "arrays": {
                "W": W, "X": X, **dict(zip(("mult", "shift"), scale_for(X @ W.T, 16),
                                           strict=True)),
                "bpc": bpc, "latency": lat, "outstanding": 0}})
    report = runner.simulate(KERNEL, p, cases, tmp_path, sim="icarus")
    assert report.passed, report.failures
    for c in report.cases:
        assert c["timed"] and c["cycles"] == c["expected_cycles"], c["name"]
        ratio = c["cycles"] / c["weight_stream_bound_cycles"]
        assert 1.0 < ratio < 1.04, (c["name"], ratio)
        print(f"{c['name']}: {c['cycles']} cycles, bound {c['weight_stream_bound_cycles']:.0f}, "
              f"{ratio:.4f}x")


@pytest.mark.parametrize("kw", [dict(rows=16, cols=4, data_bytes=4, burst_beats=2),
                                dict(rows=12, cols=32, data_bytes=8, burst_beats=3, base_addr=0x40)])
def test_cocotbext_axi_ram_gives_the_same_codes_and_cycles(tmp_path, kw):
    """An independent AXI4 subordinate (cocotbext-axi's ``AxiRamRead``, one beat per cycle,
    one cycle late): codes == golden and cycles == the formula at latency 1, bandwidth D."""
    p = KERNEL.params(**kw)
    rng = np.random.default_rng(9)
    cases = []
    for name, n in (("one", 1), ("two", 2)):
        W, X = rng.integers(-1, 2, (p.rows, p.cols)), rng.integers(-128, 128, (n, p.cols))
        M, S = scale_for(X @ W.T, 16)
        cases.append({"name": name, "arrays": {"W": W, "X": X, "mult": M, "shift": S,
                                               "bpc": p.data_bytes, "latency": 1,
                                               "outstanding": 0, "axiram": 1}})
    cases.append({**cases[1], "name": "stalls", "idle": 0.3, "stall": 0.4})
    report = runner.simulate(KERNEL, p, cases, tmp_path, sim="icarus")
    assert report.passed, report.failures
    assert [c["cycles"] == c["expected_cycles"] for c in report.cases] == [True, True, False]
    assert all(c["bit_exact"] for c in report.cases)


def test_checker_catches_a_slower_rtl(tmp_path):
    p = KERNEL.params(**KERNEL.test_params[0])
    report = runner.simulate(one_cycle_late(KERNEL), p, KERNEL.cases(p, quick=True), tmp_path,
                             sim="icarus")
    assert_only_cycles_fail(report)


class CrossingStream(TernaryStream):
    """A deliberately wrong manager: every burst address moved 8 bytes below a 4 KiB page."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = TernaryStream(self.params)
        for name in ("x", "y"):
            a, b = getattr(self, name), getattr(inner, name)
            wiring.connect(m, wiring.flipped(a), b) if name == "x" else \
                wiring.connect(m, b, wiring.flipped(a))
        m.d.comb += [inner.mult.eq(self.mult), inner.shift.eq(self.shift),
                     self.busy.eq(inner.busy)]
        ours, theirs = self.m_axi, inner.m_axi
        for name, member in ours.signature.members.items():
            if name == "araddr":
                m.d.comb += ours.araddr.eq(theirs.araddr + 4096 - 8)
            elif member.flow is wiring.Out:
                m.d.comb += getattr(ours, name).eq(getattr(theirs, name))
            else:
                m.d.comb += getattr(theirs, name).eq(getattr(ours, name))
        return m


def test_memory_model_rejects_a_burst_across_4k(tmp_path):
    broken = dataclasses.replace(
        KERNEL, component_path="tests.sim.test_ternary_stream_cocotb:CrossingStream")
    p = KERNEL.params(**KERNEL.test_params[0])   # 4-beat bursts of 4 bytes
    with pytest.raises(HwsimError, match="produced no result"):
        runner.simulate(broken, p, KERNEL.cases(p, quick=True)[:1], tmp_path, sim="icarus")
    log = (tmp_path / "icarus" / "test.log").read_text()
    assert "AXI AR burst at 0xff8 (4 beats): crosses a 4 KiB boundary" in log


def test_bad_dram_is_refused_before_simulating():
    with pytest.raises(HwsimError, match="bytes_per_cycle must be at least 1, not 0"):
        ws.DramTiming(0, 10)
