"""Second tier of the attention head: per-query score scales under back-pressure, and the
cycle check's negative control."""

import numpy as np
import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner
from hwsim.sim.checker import one_cycle_late
from tests.sim._report_checks import assert_exact_with_stalls, assert_only_cycles_fail

pytestmark = pytest.mark.cocotb

KERNEL = get_kernel("attention-head")

#: lanes == head_dim (one beat per row), lanes == 1, max_len == 1 (a clear before every query)
CORNERS = [dict(head_dim=4, max_len=4, lanes=4, exp_lanes=2),
           dict(head_dim=3, max_len=3, lanes=1, exp_lanes=1),
           dict(head_dim=4, max_len=1, lanes=2, exp_lanes=1)]


@pytest.mark.parametrize("shape", CORNERS, ids=lambda d: "-".join(map(str, d.values())))
def test_per_query_scales_under_backpressure(tmp_path, shape):
    """Several queries per case, each with its own score scale driven with its beats, back to
    back, with and without idle input and output stalls, at every parameter corner."""
    p = KERNEL.params(**shape)
    cases = [c for c in KERNEL.cases(p, seed=0)
             if c["name"].startswith("per_query")]
    for i, c in enumerate(cases):
        c["name"] = f"{c['name']}_{i}"
        assert np.asarray(c["arrays"]["mult"]).shape == (4,)
    report = runner.simulate(KERNEL, p, cases, tmp_path, sim="icarus")
    assert_exact_with_stalls(report)


def test_checker_catches_a_slower_rtl(tmp_path):
    """The attention head's cycle check can fail: the same RTL one cycle slower keeps every
    code and fails every timed case."""
    p = KERNEL.params(head_dim=4, max_len=3, lanes=2, exp_lanes=1)
    report = runner.simulate(one_cycle_late(KERNEL), p, KERNEL.cases(p, quick=True), tmp_path,
                             sim="icarus")
    assert_only_cycles_fail(report)
