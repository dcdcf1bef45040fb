"""cocotb tier of the decode-step attention block on Icarus and Verilator."""

import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("decode-step")


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_bit_exact_and_cycles(tmp_path, sim):
    p = KERNEL.params(hidden=16, heads=2, kv_heads=1, head_dim=4, tokens=6, keep=2, lanes=4,
                      exp_lanes=2)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, seed=2, quick=True), tmp_path, sim=sim)
    assert report.passed, report.failures
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c
