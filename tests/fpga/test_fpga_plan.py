"""Build plans per target: files, part names, pins and clock constraints (no tools run)."""

import re

import pytest

from fpga.build import make_plan
from fpga.platforms import TARGETS, get_target
from hwsim.errors import HwsimError
from hwsim.kernels import KERNELS, get_kernel

SMALL = {"lanes": 4, "rows": 8, "cols": 16}


def _plan(target, kernel="ternary-mvu"):
    k = get_kernel(kernel)
    return make_plan(k, k.params(**SMALL), target)[1].files


@pytest.mark.parametrize("target, part, clk_pin, period", [
    ("zcu111", "xczu28dr-ffvg1517-2-e", "AL17", 8.0),
    ("rfsoc4x2", "xczu48dr-ffvg1517-2-e", "AM15", 10.0),
    ("xczu49dr", "xczu49dr-ffvf1760-2-e", "G12", 10.0),
])
def test_rfsoc_plan_is_complete_and_names_the_part(target, part, clk_pin, period):
    files = _plan(target)
    assert {"top.v", "top.xdc", "top.tcl", "build_top.sh"} <= set(files)
    tcl, xdc = files["top.tcl"], files["top.xdc"]
    assert f"create_project -force -name top -part {part}\n" in tcl
    assert re.search(r"synth_design -top top\b", tcl)
    assert tcl.index("synth_design") < tcl.index("place_design") < tcl.index("route_design") \
        < tcl.index("write_bitstream")
    assert f"set_property LOC {clk_pin} [get_ports \"clk" in xdc
    assert re.search(rf"create_clock -name \S+ -period {period} ", xdc)
    assert len(re.findall(r'set_property LOC \w+ \[get_ports "leds_0__io', xdc)) >= 6
    # the board top wraps the kernel (its source named in the Verilog's src attributes)
    assert "module top(" in files["top.v"] and "module \\top.accel" in files["top.v"]
    assert "rtl/common/mvu.py" in files["top.v"]
    assert get_target(target).part.name == part


def test_ecp5_plan_has_lpf_clock_and_stat_step():
    files = _plan("ecp5-ulx3s-85f")
    assert 'LOCATE COMP "clk25_0__io" SITE "G2";' in files["top.lpf"]
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in files["top.lpf"]
    assert "synth_ecp5" in files["top.ys"] and "stat -json" in files["top.ys"]


#: kernels whose default design takes minutes to plan (the composed SwiftChannel student: 692 s
#: at 4 blocks, 412 s at 1 block on a loaded 2-core machine, nearly all of it in Amaranth's
#: netlist builder, `check_comb_cycles`): the default suite plans them with these overrides,
#: the slow tier at their defaults
QUICK = {"swiftchannel-pipeline": {"blocks": 1}}
#: planned in the slow tier only: the whole decode step repeats its parts' plans
#: (decoder-layer, lm-head), about 30 s
SLOW_PLAN = {"decode-model"}


@pytest.mark.parametrize(("name", "at_default"), [
    *(pytest.param(n, n not in QUICK, marks=[pytest.mark.slow] if n in SLOW_PLAN else [])
      for n in sorted(KERNELS)),
    *(pytest.param(n, True, marks=pytest.mark.slow, id=f"{n}-default") for n in sorted(QUICK))])
def test_every_registered_kernel_gets_a_plan(name, at_default):
    kernel = KERNELS[name]
    params = {cp.name: cp.default for cp in kernel.cli_params}
    if not at_default:
        params.update(QUICK.get(name, {}))
    files = make_plan(kernel, kernel.params(**params), "zcu111")[1].files
    assert "module top(" in files["top.v"], name


def test_targets_cover_the_issue():
    assert {"zcu111", "rfsoc4x2", "xczu49dr", "ecp5-ulx3s-85f"} <= set(TARGETS)


def test_unknown_target():
    with pytest.raises(HwsimError, match=r"unknown FPGA target 'zcu102'; known: zcu111"):
        get_target("zcu102")
