"""The cycle check of every kernel's cocotb testbench can fail: each kernel's own RTL made one
cycle slower (:func:`hwsim.sim.checker.one_cycle_late`: one more register on every output
stream) keeps every code and is rejected on every timed case. ``ternary-mvu``, ``rmsnorm``,
``norm-quant`` and ``attention-head`` run theirs in the default suite (their own test files);
the rest are slow. Each runs at its kernel's first test parameters."""

import pytest

from hwsim.kernels import KERNELS, get_kernel
from hwsim.sim import runner
from hwsim.sim.checker import one_cycle_late

pytestmark = [pytest.mark.cocotb, pytest.mark.slow]

#: the kernels whose own test files run this check in the default suite
OWN_FILES = {"ternary-mvu", "rmsnorm", "norm-quant", "attention-head"}
#: the composed designs, left out: their parts (attn-layer, ffn-in, ffn-out; conv, gate) are here
COMPOSED = {"decoder-layer", "swiftchannel-pipeline", "decode-model"}


@pytest.mark.parametrize("name", sorted(set(KERNELS) - OWN_FILES - COMPOSED))
def test_cycle_check_rejects_one_cycle_late_rtl(tmp_path, name):
    kernel = get_kernel(name)
    p = kernel.params(**kernel.test_params[0])
    report = runner.simulate(one_cycle_late(kernel), p, kernel.cases(p, quick=True), tmp_path,
                             sim="icarus")
    assert not report.passed
    assert all(c["bit_exact"] for c in report.cases), [c["name"] for c in report.cases]
    timed = [c for c in report.cases if c["timed"]]
    assert timed and not any(c.get("cycles_match", c["cycles"] == c["expected_cycles"])
                             for c in timed)
