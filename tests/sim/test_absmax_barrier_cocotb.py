"""cocotb tier of the absmax barrier on Icarus and Verilator."""

import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("absmax-barrier")


@pytest.mark.parametrize("sim, mul_style", [("icarus", "shift_add"), ("verilator", "dsp")])
def test_bit_exact_and_cycles(tmp_path, sim, mul_style):
    p = KERNEL.params(length=6, in_width=14, mul_style=mul_style)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, seed=4), tmp_path, sim=sim)
    assert report.passed, report.failures
    assert len(report.cases) == 7
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c
