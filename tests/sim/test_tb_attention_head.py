import pytest

from hwsim.kernels import get_kernel
from hwsim.sim.runner import simulate

KERNEL = get_kernel("attention-head")


@pytest.mark.cocotb
@pytest.mark.parametrize("sim, style", [("icarus", "dsp"),
                                        pytest.param("verilator", "booth", marks=pytest.mark.slow)])
def test_cocotb_bit_exact_and_cycles(tmp_path, sim, style):
    p = KERNEL.params(head_dim=8, max_len=6, lanes=4, exp_lanes=4, multiplier=style)
    cases = KERNEL.cases(p, seed=1)
    report = simulate(KERNEL, p, cases, tmp_path, sim=sim)
    assert report.passed, report.failures
    names = {c["name"] for c in report.cases}
    assert {"decode", "prefill_causal", "equal_scores", "dominant", "all_min", "all_max",
            "idle_backpressure"} <= names
    assert all(c["bit_exact"] for c in report.cases)
    assert all(c["cycles_match"] for c in report.cases if c["timed"])
    stalled = next(c for c in report.cases if c["name"] == "idle_backpressure")
    assert not stalled["timed"] and stalled["cycles"] > stalled["expected_cycles"]


@pytest.mark.cocotb
@pytest.mark.parametrize("sim, style", [("icarus", "booth"),
                                        pytest.param("verilator", "dsp", marks=pytest.mark.slow)])
def test_cocotb_rmsnorm(tmp_path, sim, style):
    kernel = get_kernel("rmsnorm")
    p = kernel.params(n=8, lanes=4, multiplier=style)
    report = simulate(kernel, p, kernel.cases(p, seed=2), tmp_path, sim=sim)
    assert report.passed, report.failures
    assert all(c["bit_exact"] for c in report.cases)
    assert all(c["cycles_match"] for c in report.cases if c["timed"])
