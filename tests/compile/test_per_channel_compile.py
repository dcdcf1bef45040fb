"""``hwsim compile`` on a Brevitas MLP with per-channel weight scales
(``Int8WeightPerChannelFloat``, what most QAT models use), exported to QONNX and QCDQ: each
output row gets its own ``M · 2**-S`` (a per-channel ``Requant``, the ``int8-mvu`` kernel's
per-row scale memory); RTL == golden on Icarus and Verilator, cycles == the composed formula,
the deviation from onnxruntime within the lowering's proven bound."""

import json

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerChannelFloat,
    Uint8ActPerTensorFloat,
)
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.lower import lower
from quant.onnx import export_brevitas


class _PerChannelMLP(torch.nn.Module):
    """16 → 24 → 8, per-channel int8 weights with biases, uint8 ReLU codes between."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.l1 = qnn.QuantLinear(16, 24, bias=True, weight_quant=Int8WeightPerChannelFloat,
                                  return_quant_tensor=True)
        self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.l2 = qnn.QuantLinear(24, 8, bias=True, weight_quant=Int8WeightPerChannelFloat,
                                  output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.l2(self.r1(self.l1(self.inp(x))))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("per_channel")
    torch.manual_seed(0)
    model = _PerChannelMLP()
    with torch.no_grad():  # rows of very different magnitude: the per-row scales differ
        model.l1.weight.mul_(torch.logspace(-1, 1, 24).unsqueeze(1))
        model.train()
        for _ in range(8):
            model(torch.randn(64, 16) * 2)
    model.eval()
    return {fmt: export_brevitas(model, torch.randn(2, 16), folder / f"mlp_{fmt}.onnx", fmt)
            for fmt in ("qonnx", "qcdq")}


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_lowering_gives_per_channel_requants_within_the_bound(files, fmt):
    graph = frontend.load(files[fmt])
    x = np.random.default_rng(1).standard_normal((2, 16)).astype(np.float32) * 2
    lowered, report = lower(graph, verify_inputs=[{graph.graph.input[0].name: x}])
    requants = [getCustomOp(n) for n in lowered.graph.node if n.op_type == "Requant"]
    assert [rq.per_channel for rq in requants] == [True, True]
    m, s = requants[0].scales()
    assert m.shape == (24,) and len(set(zip(m.tolist(), s.tolist(), strict=True))) > 1
    # each column's M·2**-S is its own s_a · s_w[j] / s_y to 24 bits
    real = np.array(requants[0].get_nodeattr("real_scales"))
    assert np.all(np.abs(requants[0].factors() / real - 1) < 2.0 ** -23)
    step = report.step("LowerLinearLayers")
    assert step.bound_lsb and all(step.max_lsb[t] <= step.bound_lsb[t] for t in step.bound_lsb)


@pytest.mark.parametrize("fmt,sim", [("qonnx", "icarus"), ("qcdq", "icarus"),
                                     pytest.param("qcdq", "verilator", marks=pytest.mark.slow)])
def test_compile_end_to_end(files, tmp_path, capsys, fmt, sim):
    graph = frontend.load(files[fmt])
    out = tmp_path / "build"
    rc = main(["compile", str(files[fmt]), "--target", "xczu28dr", "-o", str(out),
               "--sim", sim, "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    assert [k["kernel"] for k in s["kernels"]] == ["int8-mvu", "int8-mvu"]
    assert all(k["params"]["per_row_scale"] is True for k in s["kernels"])
    assert s["fits"] is True and s["brams"] >= 0 and s["luts"] > 0
    # the deviation from onnxruntime on the original file, within the lowering's bound for
    # the output codes on the compile's own sample
    sample = np.load(out / "lower" / "sample.npz")
    _, report = lower(graph, verify_inputs=[{graph.graph.input[0].name: sample["x"]}])
    bound = report.step("LowerLinearLayers").bound_lsb
    out_codes = [t for t in bound if t.startswith(graph.graph.output[0].name)]
    assert len(out_codes) == 1
    assert 0 <= s["max_error_lsb_vs_onnxruntime"] <= bound[out_codes[0]]
