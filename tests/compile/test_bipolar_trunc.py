"""QONNX's other quantizers: ``BipolarQuant`` weights compile (binary weights on the ternary
MVU); a ``BipolarQuant`` activation and a ``Trunc`` are refused with one line, exit 2, and
nothing written."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import (
    Int8ActPerTensorFloat,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
)

from hwsim.cli import main
from quant.onnx import export_brevitas


class _BinaryWeights(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.lin = qnn.QuantLinear(16, 8, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst,
                                   output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.lin(self.inp(x))


class _BinaryActs(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.lin = qnn.QuantLinear(16, 8, bias=False,
                                   weight_quant=SignedBinaryWeightPerTensorConst,
                                   return_quant_tensor=True)
        self.sign = qnn.QuantIdentity(act_quant=SignedBinaryActPerTensorConst)

    def forward(self, x):
        return self.sign(self.lin(self.inp(x)))


def _trunc_graph(path):
    """``Quant(x)`` (int8) → ``Trunc`` (8 → 6 bits, scale × 4): what a truncating average
    pool writes after its sum, on its own."""
    from onnx import TensorProto, helper

    dom = "qonnx.custom_op.general"
    inits = [helper.make_tensor(n, TensorProto.FLOAT, [], [v]) for n, v in
             (("s", 0.05), ("z", 0.0), ("bw", 8.0), ("s_out", 0.2), ("bw_out", 6.0))]
    nodes = [helper.make_node("Quant", ["x", "s", "z", "bw"], ["q"], domain=dom, name="quant",
                              signed=1, narrow=0, rounding_mode="ROUND"),
             helper.make_node("Trunc", ["q", "s", "z", "bw", "s_out", "bw_out"], ["y"],
                              domain=dom, name="truncate", rounding_mode="FLOOR")]
    graph = helper.make_graph(nodes, "trunc", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 8])], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, [1, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                      helper.make_opsetid(dom, 1)]), path)
    return path


def _calibrated(model, shape):
    torch.manual_seed(0)
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(64, *shape) * 2)
    return model.eval()


def _compile(capsys, path, out, sim="icarus"):
    rc = main(["compile", str(path), "--target", "xczu28dr", "-o", str(out), "--sim", sim,
               "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 else None), cap.err


def test_binary_weights_compile_onto_the_ternary_mvu(tmp_path, capsys):
    model = _calibrated(_BinaryWeights(), (16,))
    path = export_brevitas(model, torch.randn(2, 16), tmp_path / "binary.onnx", "qonnx")
    assert "BipolarQuant" in {n.op_type for n in onnx.load(path).graph.node}
    rc, res, err = _compile(capsys, path, tmp_path / "build")
    assert rc == 0, err
    assert res["unsupported"] == []
    assert [k["kernel"] for k in res["kernels"]] == ["ternary-mvu"]
    assert res["rtl_equals_golden"] is True and res["cycles_match"] is True
    # codes ±1 × the weight scale: the same products as qonnx's BipolarQuant; the requantizer
    # is the only approximation
    assert res["max_error_lsb_vs_onnxruntime"] <= 1


@pytest.mark.parametrize("case, op", [("binary-acts", "BipolarQuant"), ("trunc", "Trunc")])
def test_what_is_not_lowered_is_refused_in_one_line(tmp_path, capsys, case, op):
    if case == "binary-acts":
        path = export_brevitas(_calibrated(_BinaryActs(), (16,)), torch.randn(2, 16),
                               tmp_path / f"{case}.onnx", "qonnx")
    else:
        path = _trunc_graph(tmp_path / "trunc.onnx")
    assert op in {n.op_type for n in onnx.load(path).graph.node}
    out = tmp_path / "build"
    rc, _, err = _compile(capsys, path, out)
    assert rc == 2
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and op in lines[0], err
    assert not out.exists()
