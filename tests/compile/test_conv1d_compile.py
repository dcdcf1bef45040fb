"""1-D convolutions (QuantConv1d on NCL tensors, streamed as NLC) and rectangular 2-D kernels
through ``hwsim compile``: lowered to ``IntConv → Requant`` within the proven bound, planned as
conv-window → int8-mvu chains, and compiled end to end (RTL == golden, cycles == the composed
formula, error vs onnxruntime within the bound). Dilation and unequal pads stay refused."""

import json

import numpy as np
import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_shapes import InferShapes

from hwsim.cli import main
from hwsim.compile import backend, frontend
from hwsim.compile.lower import LowerConvolutions, lower
from hwsim.errors import HwsimError
from quant.onnx import export_brevitas, run_qonnx

I8, W8 = Int8ActPerTensorFloat, Int8WeightPerTensorFloat


class _Conv1d(torch.nn.Module):
    """QuantIdentity → Conv1d(2→4, k 3, pad 1) → ReLU [→ depthwise Conv1d(k 3, pad 1)] →
    Conv1d(4→4, k 3, stride 2)."""

    def __init__(self, depthwise=False):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=I8, return_quant_tensor=True)
        self.a = qnn.QuantConv1d(2, 4, 3, padding=1, weight_quant=W8)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.dw = qnn.QuantConv1d(4, 4, 3, padding=1, groups=4, weight_quant=W8,
                                  output_quant=I8, return_quant_tensor=True) if depthwise else None
        self.b = qnn.QuantConv1d(4, 4, 3, stride=2, weight_quant=W8, output_quant=I8)

    def forward(self, x):
        x = self.relu(self.a(self.inp(x)))
        return self.b(self.dw(x) if self.dw is not None else x)


class _Rect(torch.nn.Module):
    """QuantIdentity → Conv2d(2→4, (1, 3), pad (0, 1)) → ReLU → Conv2d(4→4, (2, 3),
    stride (1, 2))."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=I8, return_quant_tensor=True)
        self.a = qnn.QuantConv2d(2, 4, (1, 3), padding=(0, 1), weight_quant=W8)
        self.relu = qnn.QuantReLU(return_quant_tensor=True)
        self.b = qnn.QuantConv2d(4, 4, (2, 3), stride=(1, 2), weight_quant=W8, output_quant=I8)

    def forward(self, x):
        return self.b(self.relu(self.a(self.inp(x))))


MODELS = {"c1": (_Conv1d, (1, 2, 12)), "c1dw": (lambda: _Conv1d(True), (1, 2, 12)),
          "rect": (_Rect, (1, 2, 5, 7))}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("conv1d")
    out = {}
    for name, (cls, shape) in MODELS.items():
        torch.manual_seed(0)
        m = cls()
        m.train()
        with torch.no_grad():
            for _ in range(8):
                m(torch.randn(16, *shape[1:]) * 2)
        m.eval()
        for fmt in ("qonnx", "qcdq"):
            out[name, fmt] = export_brevitas(m, torch.randn(*shape),
                                             folder / f"{name}_{fmt}.onnx", fmt)
    return out


#: per model, each IntConv's (kernel_size, stride, pad, kernel_w, stride_w, pad_w, group)
WINDOWS = {"c1": [(1, 1, 0, 3, 1, 1, 1), (1, 1, 0, 3, 2, 0, 1)],
           "c1dw": [(1, 1, 0, 3, 1, 1, 1), (1, 1, 0, 3, 1, 1, 4), (1, 1, 0, 3, 2, 0, 1)],
           "rect": [(1, 1, 0, 3, 1, 1, 1), (2, 1, 0, 3, 2, 0, 1)]}


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_lowering_within_the_bound_and_planned_as_windows(models, name, fmt):
    graph = frontend.load(models[name, fmt])
    inp = graph.graph.input[0].name
    x = np.random.default_rng(3).standard_normal(MODELS[name][1]).astype(np.float32) * 2
    low, rep = lower(graph, verify_inputs=[{inp: x}])
    convs = [n for n in low.graph.node if n.op_type == "IntConv"]
    assert "Conv" not in [n.op_type for n in low.graph.node]
    names = ("kernel_size", "stride", "pad", "kernel_w", "stride_w", "pad_w", "group")
    assert [tuple(getCustomOp(n).get_nodeattr(a) for a in names) for n in convs] == WINDOWS[name]
    # the lowered graph's output codes against the original file, within the proven bounds
    ref = np.asarray(run_qonnx(graph.model, {inp: x})[0])
    out = low.graph.output[0].name
    y = execute_onnx(low, {inp: x})[out]
    dq = next(n for n in low.graph.node if n.op_type == "DequantizeLinear"
              and n.output[0] == out)
    worst = max(b for s in rep.steps for b in s.bound_lsb.values())
    assert np.max(np.abs(y - ref)) / float(low.get_initializer(dq.input[1])) <= worst + 1e-6
    design = backend.plan(low)
    want_perm = backend.NLC if name.startswith("c1") else backend.NHWC
    assert design.in_perm == design.out_perm == want_perm
    windows = [n for n in design.nodes if n.kernel == "conv-window"]
    assert len(windows) == len(convs)
    for node, win in zip(windows, WINDOWS[name], strict=True):
        p = node.params
        assert (p.kernel, p.stride, p.pad, p.kernel_w, p.stride_w, p.pad_w) == win[:6]
        assert p.height == 1 or not name.startswith("c1")  # 1-D: an image of height 1


def _compile(capsys, *args) -> tuple[int, dict | None, str]:
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


@pytest.mark.parametrize("name,fmt", [
    ("c1", "qonnx"), ("rect", "qcdq"),
    pytest.param("c1", "qcdq", marks=pytest.mark.slow),
    pytest.param("c1dw", "qcdq", marks=pytest.mark.slow),
    pytest.param("rect", "qonnx", marks=pytest.mark.slow)])
def test_compile_end_to_end(models, tmp_path, capsys, name, fmt):
    out = tmp_path / "build"
    rc, s, err = _compile(capsys, models[name, fmt], "--target", "xczu28dr", "-o", out,
                          "--sim", "icarus")
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    bound = max(b for st in s["lowering"]["steps"] for b in st["bound_lsb"].values())
    assert s["max_error_lsb_vs_onnxruntime"] <= bound
    assert [k["kernel"] for k in s["kernels"]] == \
        ["conv-window", "int8-mvu"] * len(WINDOWS[name])
    manifest = json.loads((out / "rtl" / "compiled_top.json").read_text())
    perm = [0, 2, 1] if name.startswith("c1") else [0, 2, 3, 1]
    assert manifest["in_perm"] == perm == manifest["out_perm"]


def _conv_graph(w_shape, x_shape, y_shape, **attrs) -> ModelWrapper:
    n_w = int(np.prod(w_shape))
    g = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["a"]),
         helper.make_node("DequantizeLinear", ["wq", "s"], ["w"]),
         helper.make_node("Conv", ["a", "w"], ["c"], name="conv", **attrs),
         helper.make_node("QuantizeLinear", ["c", "s", "z"], ["y"])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.INT8, y_shape)],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
         helper.make_tensor("z", TensorProto.INT8, [], [0]),
         helper.make_tensor("wq", TensorProto.INT8, w_shape, [1] * n_w)])
    model = ModelWrapper(onnx.helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]))
    return model.transform(InferShapes())


@pytest.mark.parametrize("w_shape, x_shape, y_shape, attrs, match", [
    ([4, 2, 3], [1, 2, 16], [1, 4, 12], dict(dilations=[2]), r"dilations \[2\]"),
    ([4, 2, 3, 3], [1, 2, 8, 8], [1, 4, 4, 4], dict(dilations=[2, 2]), "undilated"),
    ([4, 2, 3], [1, 2, 16], [1, 4, 15], dict(pads=[1, 0]), "same padding before and after"),
    ([4, 2, 1, 3], [1, 2, 4, 6], [1, 4, 4, 5], dict(pads=[0, 0, 0, 1]), r"pads \[0, 0, 0, 1\]"),
])
def test_dilation_and_unequal_pads_are_refused_in_one_line(w_shape, x_shape, y_shape, attrs,
                                                            match):
    model = _conv_graph(w_shape, x_shape, y_shape, **attrs)
    with pytest.raises(HwsimError, match=match) as e:
        model.transform(LowerConvolutions())
    assert "\n" not in str(e.value) and "'conv'" in str(e.value)
