"""cocotb tier of the LO surrogate + top-K selector on Icarus and Verilator."""

import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("lo-topk")


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_bit_exact_and_cycles(tmp_path, sim):
    p = KERNEL.params(tokens=8, head_dim=4, keep=3)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, seed=1), tmp_path, sim=sim)
    assert report.passed, report.failures
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c
