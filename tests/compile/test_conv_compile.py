"""Quantized convolutions through ``hwsim compile``: a small Brevitas CNN with a sigmoid
attention gate (no seed flow knows it) in QONNX and QCDQ — lowered to ``IntConv → Requant``
within the proven bound, and compiled end to end (conv-window → int8-mvu, lut-act, eltwise):
RTL == golden, cycles == the composed formula."""


import json

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFloat,
    ShiftedUint8ActPerTensorFloat,
)

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.examples import GatedCNN as _GatedCNN
from hwsim.compile.lower import LowerConvolutions, lower
from quant.onnx import export_brevitas, run_qonnx


class _Depthwise(torch.nn.Module):
    """A shifted-uint8 input (zero point ≠ 0: padding reads it), a depthwise 3×3 and a
    pointwise 1×1 convolution."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=ShiftedUint8ActPerTensorFloat)
        self.dw = qnn.QuantConv2d(4, 4, 3, padding=1, groups=4, bias=True,
                                  weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)
        self.pw = qnn.QuantConv2d(4, 6, 1, bias=False, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.pw(self.dw(self.inp(x)))


def _calibrated(cls, shape):
    torch.manual_seed(0)
    model = cls()
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(16, *shape[1:]) * 2)
    return model.eval()


SHAPES = {"cnn": (1, 3, 8, 8), "dw": (1, 4, 6, 6)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cnn")
    out = {}
    for name, cls in (("cnn", _GatedCNN), ("dw", _Depthwise)):
        m = _calibrated(cls, SHAPES[name])
        for fmt in ("qonnx", "qcdq"):
            out[name, fmt] = export_brevitas(m, torch.randn(*SHAPES[name]),
                                             folder / f"{name}_{fmt}.onnx", fmt)
    return out


@pytest.mark.parametrize("name", ["cnn", "dw"])
@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_lowering_convolutions_within_the_bound(models, name, fmt):
    graph = frontend.load(models[name, fmt])
    x = np.random.default_rng(1).standard_normal(SHAPES[name]).astype(np.float32) * 2
    inp = graph.graph.input[0].name
    low, rep = lower(graph, verify_inputs=[{inp: x}])
    ops = [n.op_type for n in low.graph.node]
    assert ops.count("IntConv") == {"cnn": 3, "dw": 2}[name] and "Conv" not in ops
    step = rep.step("LowerConvolutions")
    assert step.bound_lsb and all(step.max_lsb[t] <= b for t, b in step.bound_lsb.items())
    # the lowered graph's output codes against the original file, within the final bounds
    ref = np.asarray(run_qonnx(graph.model, {inp: x})[0])
    out = low.graph.output[0].name
    from qonnx.core.onnx_exec import execute_onnx
    y = execute_onnx(low, {inp: x})[out]
    dq = next(n for n in low.graph.node if n.op_type == "DequantizeLinear"
              and n.output[0] == out)
    scale = float(low.get_initializer(dq.input[1]))
    worst = max(b for s in rep.steps for b in s.bound_lsb.values())
    assert np.max(np.abs(y - ref)) / scale <= worst + 1e-6
    if name == "dw":  # the padding code is the shifted input's zero point
        conv = next(n for n in low.graph.node if n.op_type == "IntConv")
        pad_code = next(a.i for a in conv.attribute if a.name == "pad_code")
        assert pad_code != 0


def test_a_grouped_convolution_is_refused():
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["a"]),
         helper.make_node("DequantizeLinear", ["wq", "s"], ["w"]),
         helper.make_node("Conv", ["a", "w"], ["c"], name="grouped", group=2,
                          kernel_shape=[1, 1]),
         helper.make_node("QuantizeLinear", ["c", "s", "z"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [1, 4, 2, 2])],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
         helper.make_tensor("z", TensorProto.INT8, [], [0]),
         helper.make_tensor("wq", TensorProto.INT8, [4, 2, 1, 1], [1] * 8)])
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_shapes import InferShapes

    from hwsim.errors import HwsimError
    model = ModelWrapper(onnx.helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]))
    with pytest.raises(HwsimError, match="group 2"):
        model.transform(InferShapes()).transform(LowerConvolutions())


def _compile(capsys, *args) -> tuple[int, dict | None, str]:
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


@pytest.mark.parametrize("name,fmt,sim", [("cnn", "qonnx", "icarus"), ("cnn", "qcdq", "icarus"),
                                          ("dw", "qcdq", "icarus"),
                                          pytest.param("dw", "qonnx", "verilator",
                                                       marks=pytest.mark.slow)])
def test_compile_cnn_end_to_end(models, tmp_path, capsys, name, fmt, sim):
    out = tmp_path / "build"
    rc, s, err = _compile(capsys, models[name, fmt], "--target", "xczu28dr", "-o", out,
                          "--sim", sim)
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    # the lowering's largest proven bound holds against onnxruntime on the original file
    bound = max(b for st in s["lowering"]["steps"] for b in st["bound_lsb"].values())
    assert s["max_error_lsb_vs_onnxruntime"] <= bound
    kernels = [k["kernel"] for k in s["kernels"]]
    assert kernels == {"cnn": ["conv-window", "int8-mvu", "int8-mvu", "lut-act", "eltwise",
                               "conv-window", "int8-mvu"],
                       "dw": ["conv-window", "int8-mvu", "int8-mvu"]}[name]
    assert s["fits"] is True and s["luts"] > 0 and s["brams"] >= 0
    manifest = json.loads((out / "rtl" / "compiled_top.json").read_text())
    assert manifest["in_perm"] == [0, 2, 3, 1] == manifest["out_perm"]
    # the streamed output, put back in NCHW order, is the golden graph's output
    sample = np.load(out / "lower" / "sample.npz")
    assert sample["Y"].shape == tuple(np.asarray(sample["y"]).shape[i] for i in (0, 2, 3, 1))


def test_plan_streams_nhwc_and_chains_window_and_mvu(models):
    from qonnx.core.onnx_exec import execute_onnx

    from hwsim.compile import backend
    graph = frontend.load(models["cnn", "qonnx"])
    inp = graph.graph.input[0].name
    x = np.random.default_rng(2).standard_normal(SHAPES["cnn"]).astype(np.float32)
    low, _ = lower(graph, verify_inputs=[{inp: x}])
    design = backend.plan(low)
    assert design.in_perm == design.out_perm == backend.NHWC
    assert (design.in_vector, design.out_vector) == (3, 4)
    window, mvu = design.nodes[:2]
    assert (window.kernel, mvu.kernel) == ("conv-window", "int8-mvu")
    assert window.output[1] == mvu.inputs[0][1] and window.output[2] == mvu.inputs[0][2]
    assert (mvu.params.rows, mvu.params.cols) == (8, 27) and window.vectors == 64
    ctx = execute_onnx(low, {inp: x}, return_full_exec_context=True)
    y = ctx[design.output]
    streamed = design.to_stream(y, "out")
    assert streamed.shape == (1, 4, 4, 4) and np.array_equal(design.from_stream(streamed), y)
    sched = backend.schedule(design)
    # the first output pixel of the stride-2 layer needs input rows 0 and 1 of its window
    # unit: far less than the whole image, so its latency is a fraction of the cycles
    assert sched["vectors"] == 64 and sched["latency"] < sched["cycles"] / 4
