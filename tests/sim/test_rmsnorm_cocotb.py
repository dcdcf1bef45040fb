"""Second tier of the integer RMSNorm: per-vector ε under back-pressure, and the cycle check's
negative control."""

import numpy as np
import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner
from hwsim.sim.checker import one_cycle_late
from tests.sim._report_checks import assert_exact_with_stalls, assert_only_cycles_fail

pytestmark = pytest.mark.cocotb

KERNEL = get_kernel("rmsnorm")

#: lanes == n (one beat per vector), lanes == 1, n == lanes == 1
CORNERS = [(4, 4), (3, 1), (1, 1)]


@pytest.mark.parametrize("n, lanes", CORNERS)
def test_per_vector_eps_under_backpressure(tmp_path, n, lanes):
    """Several vectors per case, each with its own ε driven with its beats, back to back, with
    and without output stalls, at every parameter corner."""
    p = KERNEL.params(n=n, lanes=lanes)
    cases = [c for c in KERNEL.cases(p, seed=0)
             if c["name"].startswith("per_vector")]
    for i, c in enumerate(cases):
        c["name"] = f"{c['name']}_{i}"
        eps = np.asarray(c["arrays"]["eps"])
        assert eps.shape == (len(c["arrays"]["X"]),) and len(set(eps.tolist())) == eps.size
    report = runner.simulate(KERNEL, p, cases, tmp_path, sim="icarus")
    assert_exact_with_stalls(report)


def test_checker_catches_a_slower_rtl(tmp_path):
    """The RMSNorm testbench's cycle check can fail: the same RTL one cycle slower keeps every
    code and fails every timed case."""
    p = KERNEL.params(n=4, lanes=2)
    report = runner.simulate(one_cycle_late(KERNEL), p, KERNEL.cases(p, quick=True), tmp_path,
                             sim="icarus")
    timed = assert_only_cycles_fail(report)
    assert len(report.failures) == len(timed)
