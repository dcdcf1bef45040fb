"""cocotb tier: emitted LIFArray Verilog on Icarus and Verilator, bit-exact and cycle-exact."""

import pytest

from hwsim.errors import ToolMissingError
from hwsim.kernels import get_kernel
from hwsim.sim.runner import check_simulator, simulate


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_lif_array_cocotb(tmp_path, sim):
    try:
        check_simulator(sim)
    except ToolMissingError as e:
        pytest.skip(str(e))
    kernel = get_kernel("lif-array")
    # Verilator's C++ build dominates its run: it gets the smaller array
    size = {"neurons": 8, "inputs": 64} if sim == "icarus" else {"neurons": 4, "inputs": 16}
    p = kernel.params(lanes=4, threshold=48, **size)
    report = simulate(kernel, p, kernel.cases(p, seed=1), tmp_path, sim=sim)
    assert report.passed, report.failures
    names = {c["name"] for c in report.cases}
    assert {"random", "dvs_events", "saturate_high", "saturate_low"} <= names
    for c in report.cases:
        assert c["bit_exact"], c
        if c["timed"]:
            assert c["cycles"] == c["expected_cycles"], c
    assert next(c for c in report.cases if c["name"] == "dvs_events")["spikes"] > 0
