"""The FPGA bench's estimator hook and argument parsing (the builds are tested in tests/fpga)."""

import sys
import types

import pytest

from fpga.parts import get_part
from hwsim.bench import BENCHES
from hwsim.bench import fpga as bench
from hwsim.errors import HwsimError
from hwsim.kernels import get_kernel

KERNEL = get_kernel("ternary-mvu")
PARAMS = KERNEL.params(lanes=4, rows=8, cols=16)


def test_registered():
    assert BENCHES["fpga"] == "fpga"


def test_estimator_missing_module_is_reported_not_invented(monkeypatch):
    monkeypatch.setitem(sys.modules, "hwsim.estimate", None)  # import → ModuleNotFoundError
    est = bench.estimator_prediction(KERNEL, PARAMS, get_part("xczu28dr"))
    assert est == {"available": False, "reason": "hwsim.estimate is not importable"}


def test_estimator_without_hook(monkeypatch):
    monkeypatch.setitem(sys.modules, "hwsim.estimate", types.ModuleType("hwsim.estimate"))
    est = bench.estimator_prediction(KERNEL, PARAMS, get_part("xczu28dr"))
    assert est["available"] is False and "fpga_resources" in est["reason"]


def test_estimator_hook_is_called_with_kernel_params_and_part(monkeypatch):
    mod = types.ModuleType("hwsim.estimate")
    calls = []

    def fpga_resources(kernel, params, part):
        calls.append((kernel, params, part))
        return {"luts": 1234, "fmax_mhz": 250.5}

    mod.fpga_resources = fpga_resources
    monkeypatch.setitem(sys.modules, "hwsim.estimate", mod)
    est = bench.estimator_prediction(KERNEL, PARAMS, get_part("lfe5u-85f"))
    assert calls == [("ternary-mvu", PARAMS, "LFE5U-85F-6BG381C")]
    assert est == {"available": True, "luts": 1234, "fmax_mhz": 250.5}
    assert bench._est(est, "luts") == "1,234" and bench._est(est, "bram") == "n/a"
    assert bench._est(est, "fmax_mhz") == "250.5"


def test_param_overrides():
    assert bench._parse_overrides(["lanes=8", "rows=16"]) == {"lanes": "8", "rows": "16"}
    p = bench._params(KERNEL, {"lanes": "8", "rows": "16", "not_a_param": "3"})
    assert (p.lanes, p.rows, p.cols) == (8, 16, 256)
    with pytest.raises(HwsimError, match=r"--param 'lanes' is not NAME=VALUE"):
        bench._parse_overrides(["lanes"])
    with pytest.raises(HwsimError, match=r"--param lanes='x': not a int"):
        bench._params(KERNEL, {"lanes": "x"})
