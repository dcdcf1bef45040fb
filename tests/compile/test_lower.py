"""Lowering a Brevitas MLP exported to QONNX to the hwsim dialect, verified after every step."""

import numpy as np
import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFloat,
    ShiftedUint8ActPerTensorFloat,
)
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

from hwsim.compile.dialect import DOMAIN
from hwsim.compile.examples import MLP as _MLP
from hwsim.compile.lower import QuantActivationsToCodes, lower
from hwsim.errors import HwsimError
from hwsim.kernels import KERNELS
from quant.brevitas_quantizers import TernaryAbsmeanWeight
from quant.onnx import export_brevitas, run_qonnx


def _export(path, hidden=None):
    torch.manual_seed(0)
    model = _MLP(hidden)
    model.train()
    with torch.no_grad():  # calibrate the activation scales
        for _ in range(8):
            model(torch.randn(64, 16) * 2)
    model.eval()
    export_brevitas(model, torch.randn(4, 16), path, "qonnx")
    return path


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    return _export(tmp_path_factory.mktemp("mlp") / "mlp.onnx")


def _samples(model_path, n=6, seed=1):
    name = onnx.load(model_path).graph.input[0].name
    rng = np.random.default_rng(seed)
    return [{name: (rng.standard_normal((4, 16)) * 2).astype(np.float32)} for _ in range(n)]


def test_lowered_mlp_is_a_runnable_dialect_graph_with_the_same_codes(mlp, tmp_path):
    inputs = _samples(mlp)
    lowered, report = lower(mlp, verify_inputs=inputs)

    ops = [(n.domain, n.op_type) for n in lowered.graph.node]
    assert ops == [("", "QuantizeLinear")] + [(DOMAIN, "IntMatMul"), (DOMAIN, "Requant")] * 3 \
        + [("", "DequantizeLinear")]
    path = tmp_path / "lowered.onnx"
    onnx.save(lowered.model, path)
    # the full check passes too: onnx's shape inference skips the custom domain's nodes
    onnx.checker.check_model(onnx.load(path), full_check=True)

    assert [(s.name, s.exact) for s in report.steps] == [
        ("QuantActivationsToCodes", True), ("WeightQuantToCodes", True),
        ("FoldBatchNorm", False), ("AveragePoolToConv", False), ("LowerMaxPool", True),
        ("SinkHeadMoves", True), ("FoldProjectionScales", False),
        ("HoistCodeReshapes", True), ("LowerConcat", True), ("DropRequantize", True),
        ("LowerRotary", False), ("SinkRotaryMoves", True), ("HoistFlatten", True),
        ("LowerLif", True), ("LowerLayerNorm", False),
        ("LowerRmsNorm", False), ("LowerThresholdActivations", False),
        ("LowerFloatHead", False), ("LowerLinearLayers", False),
        ("LowerConvolutions", False), ("OrderFlatten", True), ("TableRequantizers", True),
        ("LowerPointwise", True), ("LowerSquare", True), ("LowerElementwise", False),
        ("LowerWindowAttention", False), ("LowerAttention", False), ("LowerIntegerOnnx", True),
        ("DropCodeReshapes", True)]
    assert all(s.equal for s in report.steps if s.exact)
    assert report.steps[-1].bound_lsb == {}  # no element-wise op in an MLP
    approx = report.step("LowerLinearLayers")
    assert set(approx.max_lsb) == set(approx.bound_lsb) and len(approx.max_lsb) == 3
    # measured deviation within the per-node bound LowerLinearLayers proves (floor(ε) + 1:
    # 1 LSB where a layer's inputs are exact, propagated through |W| column sums after)
    assert all(approx.max_lsb[t] <= approx.bound_lsb[t] for t in approx.max_lsb)
    print("lowering deviation (LSB):", approx.max_lsb, "bounds:", approx.bound_lsb)

    # the saved file, run in qonnx, gives the original QONNX execution's output codes within
    # the final node's proven bound; the report measured exactly this deviation
    final = lowered.graph.node[-1]
    out_scale = lowered.get_initializer(final.input[1])
    for x in inputs:
        (want,) = run_qonnx(mlp, x)
        (got,) = run_qonnx(path, x)
        dev = np.max(np.abs(np.round(want / out_scale) - np.round(got / out_scale)))
        assert dev <= approx.max_lsb[final.input[0]] <= approx.bound_lsb[final.input[0]]


class _ScaleOutput(Transformation):
    """A step that claims to be exact but doubles the output scale."""

    exact = True

    def apply(self, model):
        final = model.graph.node[-1]
        model.set_initializer(final.input[1], model.get_initializer(final.input[1]) * 2)
        return model, False


def test_a_step_that_changes_the_outputs_is_caught(mlp):
    with pytest.raises(HwsimError, match="_ScaleOutput changed the graph outputs"):
        lower(mlp, steps=[QuantActivationsToCodes(), _ScaleOutput()])  # default input


def test_an_unsupported_pattern_names_the_node(tmp_path):
    # (a one-tensor float function such as a sigmoid there lowers to a threshold table)
    path = _export(tmp_path / "softmax.onnx", hidden=torch.nn.Softmax(dim=-1))
    with pytest.raises(HwsimError, match=r"Softmax node '[^']+'"):
        lower(path, verify_inputs=_samples(path, n=1))


class _Ternary(torch.nn.Module):
    """int8 input → ternary (absmean) linear layer without bias → int8 output."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.lin = qnn.QuantLinear(16, 8, bias=False, weight_quant=TernaryAbsmeanWeight,
                                   output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.lin(self.inp(x))


def test_a_ternary_layer_lowers_to_the_ternary_mvu_kernel(tmp_path):
    torch.manual_seed(0)
    model = _Ternary()
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(64, 16) * 2)
    model.eval()
    path = export_brevitas(model, torch.randn(4, 16), tmp_path / "ternary.onnx", "qonnx")
    lowered, report = lower(path, verify_inputs=_samples(path, n=2))
    (mvu,) = [n for n in lowered.graph.node if n.domain == DOMAIN and "MatMul" in n.op_type]
    assert mvu.op_type == "TernaryMatMul"
    assert getCustomOp(mvu).get_nodeattr("kernel") in KERNELS
    step = report.step("LowerLinearLayers")
    assert all(step.max_lsb[t] <= step.bound_lsb[t] == 1 for t in step.max_lsb)


class _Asymmetric(torch.nn.Module):
    """Shifted uint8 activations (zero points ≠ 0) around a linear layer with bias."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat,
                                     return_quant_tensor=True)
        self.lin = qnn.QuantLinear(16, 8, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                   output_quant=ShiftedUint8ActPerTensorFloat)

    def forward(self, x):
        return self.lin(self.inp(x))


def test_zero_points_fold_into_bias_and_requant(tmp_path):
    torch.manual_seed(0)
    model = _Asymmetric()
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(64, 16) * 2 + 1)
    model.eval()
    path = export_brevitas(model, torch.randn(4, 16), tmp_path / "asym.onnx", "qonnx")
    lowered, report = lower(path, verify_inputs=_samples(path, n=3))
    (requant,) = [n for n in lowered.graph.node if n.op_type == "Requant"]
    assert getCustomOp(requant).get_nodeattr("zero_point") != 0
    assert all(s.equal for s in report.steps if s.exact)
    step = report.step("LowerLinearLayers")
    assert all(step.max_lsb[t] <= step.bound_lsb[t] for t in step.max_lsb)
