"""Chains of one-tensor functions between two quantizers — arithmetic with a constant too
(``σ(x) − 0.5``, ``x / √d``, ``ReLU(x)·3 + 1``) — become one exact ``LutAct`` and compile to
RTL equal to the golden graph."""

import json

import numpy as np
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.lower import lower
from quant.onnx import export_brevitas


class _Chains(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp, self.q1, self.q2, self.q3 = (
            qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat) for _ in range(4))
        self.lin = qnn.QuantLinear(8, 8, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                   output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        g = self.q1(torch.sigmoid(self.inp(x)) - 0.5)          # the SwiftChannel gate's form
        h = self.q2(torch.relu(g) * 3.0 + 1.0)
        return self.lin(self.q3(h / 8 ** 0.5))


def _model(tmp_path, fmt):
    torch.manual_seed(0)
    m = _Chains()
    m.train()
    with torch.no_grad():
        for _ in range(8):
            m(torch.randn(32, 8) * 3)
    return export_brevitas(m.eval(), torch.randn(2, 8), tmp_path / f"chains_{fmt}.onnx", fmt)


def test_chains_lower_to_exact_tables(tmp_path):
    for fmt in ("qonnx", "qcdq"):
        g = frontend.load(_model(tmp_path, fmt))
        assert frontend.unsupported(g) == []
        x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32) * 3
        lowered, report = lower(g, verify_inputs=[{g.graph.input[0].name: x}])
        luts = [n for n in lowered.graph.node if n.op_type == "LutAct"]
        assert len(luts) == 3, [n.op_type for n in lowered.graph.node]
        assert report.step("LowerPointwise").equal  # exact: the tables are the graph's nodes


def test_chains_compile_to_rtl_equal_to_golden(tmp_path, capsys):
    path = _model(tmp_path, "qcdq")
    assert main(["compile", str(path), "--target", "xczu28dr", "-o", str(tmp_path / "b"),
                 "--sim", "icarus", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["rtl_equals_golden"] is True and s["cycles_match"] is True
    assert [k["kernel"] for k in s["kernels"]] == ["lut-act"] * 3 + ["int8-mvu"]
