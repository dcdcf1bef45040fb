import pytest

from fpga.yosys import synth_xilinx
from hwsim.kernels import get_kernel
from rtl.emit import emit

KERNEL = get_kernel("attention-head")


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.parametrize("style", ["dsp", "booth"])
def test_dsp48e2_only_in_the_dsp_style(tmp_path, style):
    p = KERNEL.params(head_dim=4, max_len=2, lanes=2, exp_lanes=1, multiplier=style)
    v = emit(KERNEL.component(p), KERNEL.top, tmp_path, KERNEL.manifest(p))
    res = synth_xilinx(v["verilog"], KERNEL.top, workdir=tmp_path)["resources"]
    assert res["unmapped_gates"] == 0 and res["luts"] > 0
    if style == "dsp":
        # the engine lanes, the score requantizer, the normalizer, the output requantizers
        assert res["dsp48e2"] >= 2 * p.lanes
    else:
        # radix-4 Booth lanes in LUTs and carry chains; no multiply left for a DSP48E2
        assert res["dsp48e2"] == 0 and res["carry"] > 0
