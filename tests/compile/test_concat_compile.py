"""``Concat`` of quantized branches: lowered exactly to ``IntConcat`` (each input with another
quantizer rescaled by a ``LutAct`` table) and compiled end to end — RTL == golden on Icarus,
cycles == the composed formula, no deviation from onnxruntime beyond the lowering's bound."""

import json

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat
from qonnx.core.modelwrapper import ModelWrapper

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.backend import plan, schedule
from hwsim.compile.lower import lower
from hwsim.errors import HwsimError
from quant.onnx import export_brevitas

I8, W8 = Int8ActPerTensorFloat, Int8WeightPerTensorFloat


def _linear(i, o):
    return qnn.QuantLinear(i, o, bias=True, weight_quant=W8, output_quant=I8)


class _TwoBranch(torch.nn.Module):
    """Two linear branches on one input, each with its own output quantizer (different
    scales) → cat → QuantIdentity → linear."""

    def __init__(self):
        super().__init__()
        self.i = qnn.QuantIdentity(act_quant=I8, return_quant_tensor=True)
        self.a, self.b, self.o = _linear(8, 4), _linear(8, 3), _linear(7, 3)
        self.q = qnn.QuantIdentity(act_quant=I8, return_quant_tensor=True)

    def forward(self, x):
        x = self.i(x)
        return self.o(self.q(torch.cat([self.a(x), self.b(x)], -1)))


class _DenseFork(torch.nn.Module):
    """DenseNet style: the input feeds a branch and, directly, the concatenation (as its second
    part: its codes wait in the FIFO while the branch computes) → QuantIdentity → linear."""

    def __init__(self):
        super().__init__()
        self.i = qnn.QuantIdentity(act_quant=I8, return_quant_tensor=True)
        self.a, self.o = _linear(8, 4), _linear(12, 3)
        self.q = qnn.QuantIdentity(act_quant=I8, return_quant_tensor=True)

    def forward(self, x):
        x = self.i(x)
        return self.o(self.q(torch.cat([self.a(x), x], -1)))


class _ConvBranches(torch.nn.Module):
    """Two 3×3 convolutions on one NCHW input → cat along the channels (axis 1: a pixel's
    channel vector in the NHWC stream) → QuantIdentity → 1×1 convolution."""

    def __init__(self):
        super().__init__()
        self.i = qnn.QuantIdentity(act_quant=I8, return_quant_tensor=True)
        self.a = qnn.QuantConv2d(2, 3, 3, padding=1, weight_quant=W8, output_quant=I8)
        self.b = qnn.QuantConv2d(2, 2, 3, padding=1, weight_quant=W8, output_quant=I8)
        self.q = qnn.QuantIdentity(act_quant=I8, return_quant_tensor=True)
        self.o = qnn.QuantConv2d(5, 2, 1, weight_quant=W8, output_quant=I8)

    def forward(self, x):
        x = self.i(x)
        return self.o(self.q(torch.cat([self.a(x), self.b(x)], 1)))


SHAPES = {"branches": (1, 8), "fork": (1, 8), "conv": (1, 2, 4, 4)}


def _calibrated(cls, shape):
    torch.manual_seed(0)
    model = cls()
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(16, *shape[1:]))
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cat")
    out = {}
    for name, cls in (("branches", _TwoBranch), ("fork", _DenseFork), ("conv", _ConvBranches)):
        m = _calibrated(cls, SHAPES[name])
        for fmt in ("qonnx", "qcdq"):
            out[name, fmt] = export_brevitas(m, torch.randn(*SHAPES[name]),
                                             folder / f"{name}_{fmt}.onnx", fmt)
    return out


def _ops(model):
    return [n.op_type for n in model.graph.node]


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_lowered_branches_rescale_then_concat(models, fmt):
    model, report = lower(frontend.load(models["branches", fmt]))
    assert report.step("LowerConcat").exact and report.step("LowerConcat").equal
    ops = _ops(model)
    assert ops.count("IntConcat") == 1 and "Concat" not in ops
    assert ops.count("LutAct") == 2  # both branches' scales differ from the quantizer's
    cat = next(n for n in model.graph.node if n.op_type == "IntConcat")
    assert model.get_tensor_shape(cat.output[0]) == [1, 7]


def test_fork_plan_and_schedule(models):
    """The direct input is rescaled too (its quantizer is not the cat's); the concat node
    reads a branch as ``a`` and the rescaled input as ``b``; ``a`` is skewed by ``len_b``."""
    model, _ = lower(frontend.load(models["fork", "qonnx"]))
    design = plan(model)
    node = next(n for n in design.nodes if n.kernel == "concat")
    assert (node.params.len_a, node.params.len_b) == (4, 8)
    assert node.skew == {"a": 8} and node.interval == 12 and node.out_len == 12
    assert all(d >= n for d, n in zip(node.fifo_depth.values(), (4, 8), strict=True))
    assert schedule(design)["cycles"] > 0


def test_channel_concat_between_convolutions(models):
    """``cat(dim=1)`` of NCHW conv outputs joins each pixel's channels: the back end builds it
    on the NHWC stream (FIFOs of a whole image)."""
    model, _ = lower(frontend.load(models["conv", "qonnx"]))
    cat = next(n for n in model.graph.node if n.op_type == "IntConcat")
    assert model.get_tensor_shape(cat.output[0]) == [1, 5, 4, 4]
    design = plan(model)
    node = next(n for n in design.nodes if n.kernel == "concat")
    assert (node.params.len_a, node.params.len_b, node.vectors) == (3, 2, 16)
    assert node.fifo_depth == {"a": 16 * 3 + 4, "b": 16 * 2 + 4}


def test_direct_concat_of_one_quantizer():
    """``cat([x, x])`` on one quantizer's output with no quantizer after it: the codes are
    joined directly (no table) and dequantized once."""
    from onnx import TensorProto, helper, numpy_helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(3, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["c"], name="q"),
             helper.make_node("DequantizeLinear", ["c", "s", "z"], ["d"], name="dq"),
             helper.make_node("Concat", ["d", "d"], ["y"], axis=-1, name="cat")]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                          opset_imports=[helper.make_opsetid("", 13)])
    lowered, report = lower(ModelWrapper(m))
    assert report.step("LowerConcat").equal
    assert _ops(lowered) == ["QuantizeLinear", "IntConcat", "DequantizeLinear"]


def test_concat_off_the_vector_axis_is_one_line():
    """A concat along an axis that is not the streamed vectors' is refused by the back end
    with one line naming the node."""
    from onnx import TensorProto, helper, numpy_helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])
    inits = [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
             numpy_helper.from_array(np.array(0, np.int8), "z")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["c"], name="q"),
             helper.make_node("DequantizeLinear", ["c", "s", "z"], ["d"], name="dq"),
             helper.make_node("Concat", ["d", "d"], ["y"], axis=0, name="cat")]
    m = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                          opset_imports=[helper.make_opsetid("", 13)])
    lowered, _ = lower(ModelWrapper(m))
    with pytest.raises(HwsimError, match=r"'cat/int'.*not axis 0"):
        plan(lowered)


def _compile(capsys, *args) -> tuple[int, dict | None, str]:
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


@pytest.mark.parametrize("name,fmt", [
    pytest.param("branches", "qonnx", marks=pytest.mark.slow),
    pytest.param("branches", "qcdq", marks=pytest.mark.slow),
    ("fork", "qonnx"),
    pytest.param("fork", "qcdq", marks=pytest.mark.slow),
    ("conv", "qonnx")])
def test_compile_end_to_end(models, tmp_path, capsys, name, fmt):
    rc, s, err = _compile(capsys, models[name, fmt], "--target", "xczu28dr", "-o",
                          tmp_path / "build", "--sim", "icarus")
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    bound = max((b for st in s["lowering"]["steps"] for b in st["bound_lsb"].values()),
                default=0)
    assert s["max_error_lsb_vs_onnxruntime"] <= bound
    kernels = [k["kernel"] for k in s["kernels"]]
    assert kernels.count("concat") == 1 and kernels.count("lut-act") == 2
