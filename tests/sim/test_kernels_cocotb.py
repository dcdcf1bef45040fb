"""Every registered kernel on Icarus and on Verilator: the cocotb tier, from the registry.

One case per kernel × its :attr:`~hwsim.kernels.Kernel.test_params` × simulator: the kernel's
Verilog is emitted, its cocotb testbench runs the kernel's stimulus cases, and every output code
must ``==`` the golden code and every timed case's cycles ``==`` the cycle formula (the
testbench's checker, :func:`hwsim.sim.checker.check_plan`). A few kernels add checks of their
own on the report (:data:`REPORT_CHECKS`); their other edge cases live in their own files.

The default tier runs every kernel on Icarus (:data:`ICARUS_SLOW` aside) and the kernels with a
quick C++ build on Verilator (:data:`VERILATOR_DEFAULT`); the rest is ``slow``.
"""

import pytest

from hwsim.kernels import KERNELS
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb

SIMS = ("icarus", "verilator")

#: the Verilator cases of the default tier (kernel, test-parameter index): quick C++ builds; the
#: other Verilator builds (tens of seconds to minutes of C++ compile each) are slow
VERILATOR_DEFAULT = {("ternary-mvu", 0)}
#: the Icarus cases of the slow tier: emitting the whole SwiftChannel pipeline's Verilog takes
#: minutes; the second conv engine set repeats the first one's cost; ffn-in's SiLU form and
#: ffn-out's and attn-out's without SubLN (their fast tier runs in tests/rtl/);
#: the whole decode step repeats its parts' (decoder-layer, lm-head), checked in Amaranth's
#: simulator by default
ICARUS_SLOW = {("swiftchannel-pipeline", 0), ("swiftchannel-conv", 1), ("ffn-in", 1),
               ("ffn-out", 1), ("attn-out", 1), ("decode-model", 0)}


def _slow(name: str, index: int, sim: str) -> bool:
    if sim == "verilator":
        return (name, index) not in VERILATOR_DEFAULT
    return (name, index) in ICARUS_SLOW


def _cases():
    for name, kernel in KERNELS.items():
        for i in range(len(kernel.test_params)):
            for sim in SIMS:
                yield pytest.param(name, i, sim, id=f"{name}-{i}-{sim}",
                                   marks=[pytest.mark.slow] if _slow(name, i, sim) else [])


def _names(report) -> set[str]:
    return {c["name"] for c in report.cases}


def _ternary_mvu(report) -> None:
    assert {"random", "all_minus_one", "all_plus_one", "idle_backpressure"} <= _names(report)


def _lif_array(report) -> None:
    assert {"random", "dvs_events", "saturate_high", "saturate_low"} <= _names(report)
    assert next(c for c in report.cases if c["name"] == "dvs_events")["spikes"] > 0


def _qkv_frontend(report) -> None:
    # the next token's first beat was taken while the previous token's codes went out
    assert any(f[t + 1] < lo[t] for c in report.cases if "token_first_x" in c
               for f, lo in [(c["token_first_x"], c["token_last_out"])]
               for t in range(len(lo) - 1))


def _eltwise(report) -> None:
    # a and b taken in pairs; each y beat exactly the pipeline depth after its pair (timed)
    from hwsim.golden.common.eltwise import PIPELINE_DEPTH

    assert all(c["a_equals_b_cycles"] for c in report.cases)
    assert all(set(c["latencies"]) == {PIPELINE_DEPTH} for c in report.cases if c["timed"])


#: kernel → extra check on its report (beyond codes == golden, cycles == formula)
REPORT_CHECKS = {"ternary-mvu": _ternary_mvu, "lif-array": _lif_array,
                 "qkv-frontend": _qkv_frontend, "eltwise": _eltwise}


def test_kernels_list_their_test_params():
    """Every registered kernel brings at least one small parameter set that elaborates."""
    for name, kernel in KERNELS.items():
        assert kernel.test_params, name
        for kw in kernel.test_params:
            kernel.params(**kw)


@pytest.mark.parametrize("name, index, sim", list(_cases()))
def test_kernel_bit_exact_and_cycles(tmp_path, name, index, sim):
    kernel = KERNELS[name]
    p = kernel.params(**kernel.test_params[index])
    cases = kernel.cases(p, seed=index)
    report = runner.simulate(kernel, p, cases, tmp_path, sim=sim)
    assert report.passed, report.failures
    assert [c["name"] for c in report.cases] == [c["name"] for c in cases]
    assert any(c["timed"] for c in report.cases)
    for c in report.cases:
        assert c["bit_exact"], c["name"]
        if c["timed"]:
            assert c["cycles"] == c["expected_cycles"], c["name"]
        else:
            assert c["cycles"] >= c["expected_cycles"], c["name"]
    if name in REPORT_CHECKS:
        REPORT_CHECKS[name](report)
