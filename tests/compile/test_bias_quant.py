"""Quantized biases (Brevitas ``Int32Bias``: a ``Quant`` of the bias at scale ``s_a · s_w``,
32 bits) fold into the float bias the linear step takes, exactly; the compiled MLP's RTL equals
its golden graph in QONNX and QCDQ."""

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Int32Bias, Uint8ActPerTensorFloat

from hwsim.compile import frontend
from hwsim.compile.lower import lower
from quant.onnx import export_brevitas
from tests.compile.test_compile_cli import _compile


class _BiasMLP(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.l1 = qnn.QuantLinear(8, 6, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  bias_quant=Int32Bias, return_quant_tensor=True)
        self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.l2 = qnn.QuantLinear(6, 3, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  bias_quant=Int32Bias, output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.l2(self.r1(self.l1(self.inp(x))))


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    m = _BiasMLP()
    with torch.no_grad():
        for lin in (m.l1, m.l2):
            lin.bias.uniform_(-0.5, 0.5)  # biases that matter next to the products
    m.train()
    with torch.no_grad():
        for _ in range(8):
            m(torch.randn(64, 8) * 2)
    m.eval()
    folder = tmp_path_factory.mktemp("bias")
    return {fmt: export_brevitas(m, torch.randn(2, 8), folder / f"bias_{fmt}.onnx", fmt)
            for fmt in ("qonnx", "qcdq")}


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_bias_quantizers_fold_into_integer_biases(exported, fmt):
    graph = frontend.load(exported[fmt])
    x = np.random.default_rng(3).standard_normal((2, 8)).astype(np.float32) * 2
    lowered, report = lower(graph, verify_inputs=[{graph.graph.input[0].name: x}])
    mm = [n for n in lowered.graph.node if n.op_type == "IntMatMul"]
    assert len(mm) == 2 and all(len(n.input) == 3 for n in mm)  # each with its bias
    for n in mm:  # Int32Bias codes are accumulator units: the folded bias is exact
        assert np.any(lowered.get_initializer(n.input[2]) != 0)
    step = report.step("LowerLinearLayers")
    assert all(step.max_lsb[t] <= b for t, b in step.bound_lsb.items())


@pytest.mark.cocotb
@pytest.mark.parametrize("fmt", ["qonnx", pytest.param("qcdq", marks=pytest.mark.slow)])
def test_bias_quantized_mlp_compiles_rtl_equal_to_golden(exported, tmp_path, capsys, fmt):
    rc, s, err = _compile(capsys, exported[fmt], "--target", "xczu28dr", "-o", tmp_path / "o",
                          "--sim", "icarus")
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["max_error_lsb_vs_onnxruntime"] <= 1
