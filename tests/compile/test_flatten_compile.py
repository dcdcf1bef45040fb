"""Classifier tails through ``hwsim compile``: conv features flattened into a ``QuantLinear``
(the flatten streams in NHWC order, the weight rows follow: 0 LSB from onnxruntime) and a
last ``QuantLinear`` with no output quantizer (int32 accumulators leave the design, the
host multiplies by ``s_a · s_w``: within the bias rounding, 0.5 LSB, plus float32 rounding),
in QONNX and QCDQ, simulated on Icarus."""

import json

import numpy as np
import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from quant.onnx import export_brevitas


class _CNN(torch.nn.Module):
    def __init__(self, outq: bool):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(1, 4, 3, padding=1, bias=True,
                                    weight_quant=Int8WeightPerTensorFloat)
        self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.fc = qnn.QuantLinear(4 * 6 * 6, 5, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat if outq else None)

    def forward(self, x):
        return self.fc(torch.flatten(self.relu(self.conv(self.inp(x))), 1))


class _MLPHead(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(16, 8, bias=True, weight_quant=Int8WeightPerTensorFloat)
        self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(8, 4, bias=True, weight_quant=Int8WeightPerTensorFloat)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.inp(x))))


class _SigmoidHead(_MLPHead):
    """A float output after something other than a linear layer: refused."""

    def forward(self, x):
        return torch.sigmoid(self.relu(self.fc1(self.inp(x))).value)


def _export(cls, shape, path, fmt, *args):
    torch.manual_seed(0)
    m = cls(*args)
    m.train()
    with torch.no_grad():
        for _ in range(4):
            m(torch.randn(8, *shape[1:]))
    return export_brevitas(m.eval(), torch.randn(*shape), path, fmt)


def _compile(capsys, model, out) -> tuple[int, dict | None, str]:
    rc = main(["compile", str(model), "--target", "xczu28dr", "-o", str(out), "--sim", "icarus",
               "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


def _check(s):
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0


def _head(out):
    """The lowered graph and its head: ``IntMatMul → Requant(int32) → DequantizeLinear``."""
    low = ModelWrapper(str(out / "lowered.onnx"))
    dq = next(n for n in low.graph.node if n.output[0] == low.graph.output[0].name)
    rq = low.find_producer(dq.input[0])
    return low, low.find_producer(rq.input[0]), rq, dq


def _head_bound(out) -> float:
    """0.5 LSB (the bias in accumulator units) plus the float32 rounding of the original
    ``k``-term layer (``(k + 6) · 2**-24`` of its largest output, in LSB)."""
    low, mm, _, dq = _head(out)
    k = low.get_initializer(mm.input[1]).shape[0]
    scale = float(np.asarray(low.get_initializer(dq.input[1])).ravel()[0])
    y = np.load(out / "lower" / "sample.npz")["ref"]
    return 0.5 + (k + 6) * 2.0 ** -24 * float(np.max(np.abs(y))) / scale


@pytest.mark.parametrize("fmt", ["qonnx", pytest.param("qcdq", marks=pytest.mark.slow)])
def test_cnn_flatten_linear_exact(tmp_path, capsys, fmt):
    model = _export(_CNN, (1, 1, 6, 6), tmp_path / f"cnn.{fmt}.onnx", fmt, True)
    rc, s, err = _compile(capsys, model, tmp_path / "b")
    assert rc == 0, err
    _check(s)
    assert s["max_error_lsb_vs_onnxruntime"] == 0
    low = ModelWrapper(str(tmp_path / "b" / "lowered.onnx"))
    flat = [n for n in low.graph.node if n.op_type == "StreamFlatten"]
    assert len(flat) == 1 and list(getCustomOp(flat[0]).get_nodeattr("perm")) == [0, 2, 3, 1]
    onnx.checker.check_model(low.model, full_check=True)


@pytest.mark.parametrize("fmt", [pytest.param("qonnx", marks=pytest.mark.slow),
                                 pytest.param("qcdq", marks=pytest.mark.slow)])
def test_cnn_float_head(tmp_path, capsys, fmt):
    model = _export(_CNN, (1, 1, 6, 6), tmp_path / f"cnn_noq.{fmt}.onnx", fmt, False)
    out = tmp_path / "b"
    rc, s, err = _compile(capsys, model, out)
    assert rc == 0, err
    _check(s)
    assert 0 < s["max_error_lsb_vs_onnxruntime"] <= _head_bound(out)
    _, mm, rq, dq = _head(out)
    assert (mm.op_type, rq.op_type, dq.op_type) == ("IntMatMul", "Requant", "DequantizeLinear")
    rq = getCustomOp(rq)
    assert rq.get_nodeattr("width") == 32 and rq.factors() == 1.0  # the accumulators as they are
    assert {k["kernel"] for k in s["kernels"]} == {"conv-window", "int8-mvu"}


@pytest.mark.parametrize("fmt", ["qonnx", pytest.param("qcdq", marks=pytest.mark.slow)])
def test_mlp_float_head(tmp_path, capsys, fmt):
    model = _export(_MLPHead, (1, 16), tmp_path / f"mlp.{fmt}.onnx", fmt)
    out = tmp_path / "b"
    rc, s, err = _compile(capsys, model, out)
    assert rc == 0, err
    _check(s)
    assert 0 < s["max_error_lsb_vs_onnxruntime"] <= _head_bound(out)


def test_float_output_after_other_op_one_line(tmp_path, capsys):
    model = _export(_SigmoidHead, (1, 16), tmp_path / "sig.onnx", "qonnx")
    rc, s, err = _compile(capsys, model, tmp_path / "b")
    assert rc == 2 and s is None
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Sigmoid" in lines[0], err
    assert not (tmp_path / "b").exists()
