"""cocotb tier of the decode-step attention phase on Icarus and Verilator."""

import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("decode-attention")


# default suite: this block runs on Icarus inside tests/sim/test_decode_step_cocotb.py
@pytest.mark.slow
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_bit_exact_and_cycles(tmp_path, sim):
    p = KERNEL.params(heads=2, kv_heads=1, head_dim=8, tokens=8, keep=3, lanes=4, exp_lanes=2)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, seed=1), tmp_path, sim=sim)
    assert report.passed, report.failures
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c
