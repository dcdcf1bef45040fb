"""cocotb tier of the norm unit, its own cases: per-vector E under back-pressure at every
parameter corner, and the cycle check's negative control (the registry-wide test runs its
stimulus cases; tests/sim/test_bitnet_tiny_cocotb.py its real rows)."""

import numpy as np
import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner
from hwsim.sim.checker import one_cycle_late
from tests.sim._report_checks import assert_exact_with_stalls, assert_only_cycles_fail

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("norm-quant")


#: lanes == n (one beat per vector), lanes == 1, n == lanes == 1
CORNERS = [(4, 4), (3, 1), (1, 1)]


@pytest.mark.parametrize("n, lanes", CORNERS)
def test_per_vector_e_under_backpressure(tmp_path, n, lanes):
    """Several vectors per case, each with its own E and shift, back to back, with and without
    idle input and output stalls, at every parameter corner."""
    p = KERNEL.params(n=n, lanes=lanes, gamma_frac=14, e_width=72)
    cases = [c for c in KERNEL.cases(p, seed=1) if c["name"].startswith("per_vector")]
    assert all(np.asarray(c["arrays"]["e"]).ndim == 2 for c in cases)
    report = runner.simulate(KERNEL, p, cases, tmp_path, sim="icarus")
    assert_exact_with_stalls(report)


def test_checker_catches_a_slower_rtl(tmp_path):
    """The norm unit's cycle check can fail: the same RTL one cycle slower keeps every code
    and fails every timed case."""
    p = KERNEL.params(n=4, lanes=2, gamma_frac=14, e_width=72)
    report = runner.simulate(one_cycle_late(KERNEL), p, KERNEL.cases(p, quick=True), tmp_path,
                             sim="icarus")
    assert_only_cycles_fail(report)
