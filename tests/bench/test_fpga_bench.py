"""The FPGA bench's estimator hook and argument parsing (the builds are tested in tests/fpga)."""

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


def test_estimator_prediction_is_the_real_resource_model():
    """The side-by-side column comes from hwsim.estimate's calibrated model, not the bench."""
    from hwsim.estimate.fpga import tint_tile_resources
    from hwsim.estimate.tables import load_tables

    est = bench.estimator_prediction(KERNEL, PARAMS, get_part("xczu28dr"))
    want = tint_tile_resources(PARAMS, load_tables("fpga_usplus"))
    assert est["available"] is True
    assert (est["luts"], est["ffs"], est["dsp48e2"], est["bram36"]) == \
        (want["luts"], want["ffs"], want["dsps"], want["bram36"])


def test_estimator_says_when_it_has_no_model():
    est = bench.estimator_prediction(KERNEL, PARAMS, get_part("lfe5u-85f"))
    assert est["available"] is False and "UltraScale+" in est["reason"]
    lo = get_kernel("lo-topk")
    est = bench.estimator_prediction(lo, lo.params(), get_part("xczu28dr"))
    assert est == {"available": False, "reason": "no resource model for lo-topk"}
    assert bench._est(est, "luts") == "n/a"


def test_param_overrides():
    assert bench._parse_overrides(["lanes=8", "rows=16"]) == {"lanes": "8", "rows": "16"}
    p = bench._params(KERNEL, {"lanes": "8", "rows": "16", "not_a_param": "3"})
    assert (p.lanes, p.rows, p.cols) == (8, 16, 256)
    with pytest.raises(HwsimError, match=r"--param 'lanes' is not NAME=VALUE"):
        bench._parse_overrides(["lanes"])
    with pytest.raises(HwsimError, match=r"--param lanes='x': not a int"):
        bench._params(KERNEL, {"lanes": "x"})
