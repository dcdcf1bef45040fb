"""Every registered kernel in Amaranth's simulator, through its own cocotb testbench.

One case per kernel × its :attr:`~hwsim.kernels.Kernel.test_params`: the kernel's testbench
(``hwsim/sim/tb_*.py``) runs on the Amaranth component itself
(:func:`hwsim.sim.amaranth_tb.simulate_amaranth`), with the same stimulus and checker as on
Icarus and Verilator: every code ``==`` golden, every timed case's cycles ``==`` formula.
"""

import pytest

from hwsim.kernels import KERNELS, get_kernel
from hwsim.sim.amaranth_tb import simulate_amaranth
from hwsim.sim.checker import one_cycle_late
from tests.sim._report_checks import assert_only_cycles_fail


def _cases():
    for name, kernel in KERNELS.items():
        for i in range(len(kernel.test_params)):
            yield pytest.param(name, i, id=f"{name}-{i}")


@pytest.mark.parametrize("name, index", list(_cases()))
def test_kernel_bit_exact_and_cycles(tmp_path, name, index):
    kernel = KERNELS[name]
    p = kernel.params(**kernel.test_params[index])
    cases = kernel.cases(p, seed=index)
    report = simulate_amaranth(kernel, p, cases, tmp_path)
    assert report.passed, report.failures
    assert [c["name"] for c in report.cases] == [c["name"] for c in cases]
    for c in report.cases:
        assert c["bit_exact"], c["name"]
        if c["timed"]:
            assert c["cycles"] == c["expected_cycles"], c["name"]
        else:
            assert c["cycles"] >= c["expected_cycles"], c["name"]


def test_checker_catches_a_slower_rtl(tmp_path):
    """In Amaranth's simulator too the cycle check can fail: the ternary MVU one cycle slower
    keeps every code and fails every timed case."""
    kernel = get_kernel("ternary-mvu")
    p = kernel.params(lanes=2, rows=2, cols=4)
    report = simulate_amaranth(one_cycle_late(kernel), p, kernel.cases(p, quick=True), tmp_path)
    assert_only_cycles_fail(report)
