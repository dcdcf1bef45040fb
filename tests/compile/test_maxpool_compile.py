"""Max pooling through ``hwsim compile``: a Brevitas CNN with ``MaxPool2d`` between two
quantized convolutions in QONNX and QCDQ — the pool lowered exactly to ``IntMaxPool`` on codes,
planned as a ``maxpool`` unit on the NHWC pixel stream between the convolutions' window units,
and compiled end to end: RTL == golden, cycles == the composed formula, 0 LSB from
onnxruntime. Unsupported ``MaxPool`` forms are refused with one line naming the node."""

import json

import numpy as np
import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from hwsim.cli import main
from hwsim.compile import backend, frontend
from hwsim.compile.lower import LowerMaxPool, QuantActivationsToCodes, WeightQuantToCodes, lower
from hwsim.errors import HwsimError
from hwsim.golden.common import maxpool as pool_spec
from quant.onnx import export_brevitas

SHAPE = (1, 4, 6, 6)


class _PoolCNN(torch.nn.Module):
    """int8 input → 3×3 conv → uint8 ReLU → MaxPool2d → 3×3 conv with an int8 output
    quantizer (the graph output: quantized conv codes)."""

    def __init__(self, pool):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.c1 = qnn.QuantConv2d(4, 4, 3, padding=1, bias=True,
                                  weight_quant=Int8WeightPerTensorFloat)
        self.r1 = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.pool = pool
        self.c2 = qnn.QuantConv2d(4, 4, 3, padding=1, bias=True,
                                  weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.c2(self.pool(self.r1(self.c1(self.inp(x)))))


def _calibrated(pool) -> torch.nn.Module:
    torch.manual_seed(0)
    model = _PoolCNN(pool)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, *SHAPE[1:]))
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pool")
    m = _calibrated(torch.nn.MaxPool2d(2))
    return {fmt: export_brevitas(m, torch.randn(*SHAPE), folder / f"pool_{fmt}.onnx", fmt)
            for fmt in ("qonnx", "qcdq")}


def _x(seed=1):
    return np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float32)


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_maxpool_is_supported_and_lowered_exactly_on_codes(models, fmt):
    graph = frontend.load(models[fmt])
    assert frontend.unsupported(graph) == []
    inp = graph.graph.input[0].name
    # the pooling step alone: the driver checks the graph outputs stay == (exact step)
    _, rep = lower(graph, steps=[QuantActivationsToCodes(), WeightQuantToCodes(),
                                 LowerMaxPool()], verify_inputs=[{inp: _x()}])
    assert rep.step("LowerMaxPool").exact and rep.step("LowerMaxPool").equal
    low, _ = lower(graph, verify_inputs=[{inp: _x()}])
    ops = [n.op_type for n in low.graph.node]
    assert ops.count("IntMaxPool") == 1 and "MaxPool" not in ops
    pool = next(n for n in low.graph.node if n.op_type == "IntMaxPool")
    ctx = execute_onnx(low, {inp: _x(2)}, return_full_exec_context=True)
    codes, pooled = ctx[pool.input[0]], ctx[pool.output[0]]
    assert codes.dtype == pooled.dtype == np.uint8 and pooled.shape == (1, 4, 3, 3)
    ref = torch.nn.functional.max_pool2d(torch.from_numpy(codes.astype(np.float32)), 2)
    assert np.array_equal(pooled, ref.numpy().astype(np.uint8))


def test_plan_puts_the_pool_between_the_window_units(models):
    graph = frontend.load(models["qonnx"])
    inp = graph.graph.input[0].name
    low, _ = lower(graph, verify_inputs=[{inp: _x()}])
    design = backend.plan(low)
    assert [n.kernel for n in design.nodes] == ["conv-window", "int8-mvu", "maxpool",
                                                "conv-window", "int8-mvu"]
    mvu, pool, window = design.nodes[1:4]
    assert pool.inputs[0][1] == mvu.output[1] and pool.output[1] == window.inputs[0][1]
    assert pool.output[2] == window.inputs[0][2]  # the same lanes: no converter
    p = pool.params
    assert (p.channels, p.height, p.width, p.kernel, p.stride, p.signed) == (4, 6, 6, 2, 2,
                                                                             False)
    assert pool.vectors == 9 and pool.depends == pool_spec.dependencies(p)
    assert pool.tail == pool_spec.tail_cycles(p) and pool.interval == p.kernel ** 2 \
        * p.pixel_beats
    assert design.in_perm == design.out_perm == backend.NHWC


def _compile(capsys, *args) -> tuple[int, dict | None, str]:
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


@pytest.mark.parametrize("fmt,sim", [pytest.param("qonnx", "icarus", marks=pytest.mark.slow),
                                     pytest.param("qcdq", "icarus", marks=pytest.mark.slow),
                                     pytest.param("qcdq", "verilator", marks=pytest.mark.slow)])
def test_compile_pool_cnn_end_to_end(models, tmp_path, capsys, fmt, sim):
    rc, s, err = _compile(capsys, models[fmt], "--target", "xczu28dr", "-o",
                          tmp_path / "build", "--sim", sim)
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    assert s["max_error_lsb_vs_onnxruntime"] == 0
    assert [k["kernel"] for k in s["kernels"]] == ["conv-window", "int8-mvu", "maxpool",
                                                   "conv-window", "int8-mvu"]


class _PoolOnly(torch.nn.Module):
    """An int8 input quantizer and a padded, overlapping pool (3×3, stride 2, pad 1) on an odd
    5×6 image: the graph output is the pooled codes (NHWC streams without a convolution)."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.pool = torch.nn.MaxPool2d(3, stride=2, padding=1)

    def forward(self, x):
        return self.pool(self.inp(x))


def test_compile_a_padded_pool_alone(tmp_path, capsys):
    torch.manual_seed(0)
    m = _PoolOnly()
    m.train()
    with torch.no_grad():
        m(torch.randn(8, 3, 5, 6))
    path = export_brevitas(m.eval(), torch.randn(1, 3, 5, 6), tmp_path / "p.onnx", "qonnx")
    rc, s, err = _compile(capsys, path, "--target", "xczu28dr", "-o", tmp_path / "build",
                          "--sim", "icarus")
    assert rc == 0, err
    assert s["rtl_equals_golden"] is True and s["cycles_match"] is True
    assert s["max_error_lsb_vs_onnxruntime"] == 0
    assert [k["kernel"] for k in s["kernels"]] == ["maxpool"]


# ------------------------------------------------------------------------------------------
def _pool_graph(pool_out=("y",), **attrs) -> ModelWrapper:
    g = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["a"]),
         helper.make_node("MaxPool", ["a"], list(pool_out), name="the_pool", **attrs)],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 6, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
         helper.make_tensor("z", TensorProto.INT8, [], [0])])
    model = ModelWrapper(onnx.helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]))
    return model.transform(InferShapes())


def test_a_supported_pool_graph_lowers_with_padding_and_stride():
    model = _pool_graph(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 6)).astype(np.float32)
    low, rep = lower(model, steps=[LowerMaxPool()], verify_inputs=[{"x": x}])
    assert rep.step("LowerMaxPool").equal
    assert [n.op_type for n in low.graph.node] == ["QuantizeLinear", "IntMaxPool",
                                                   "DequantizeLinear"]


@pytest.mark.parametrize("attrs, outputs, why", [
    (dict(kernel_shape=[2, 2], dilations=[2, 2]), ("y",), "dilation"),
    (dict(kernel_shape=[2, 2], strides=[2, 2], ceil_mode=1), ("y",), "ceil_mode"),
    (dict(kernel_shape=[2, 3]), ("y",), "square"),
    (dict(kernel_shape=[2, 2], strides=[1, 2]), ("y",), "equal strides"),
    (dict(kernel_shape=[2, 2], pads=[1, 0, 1, 0]), ("y",), "padding"),
    (dict(kernel_shape=[2, 2]), ("y", "idx"), "Indices"),
])
def test_unsupported_pools_are_refused_with_one_line_naming_the_node(attrs, outputs, why):
    model = _pool_graph(outputs, **attrs)
    with pytest.raises(HwsimError, match=why) as e:
        model.transform(LowerMaxPool())
    msg = str(e.value)
    assert "'the_pool'" in msg and "\n" not in msg


def test_a_pool_of_float_values_is_refused():
    g = helper.make_graph(
        [helper.make_node("MaxPool", ["x"], ["y"], name="float_pool", kernel_shape=[2, 2])],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)]))
    with pytest.raises(HwsimError, match=r"'float_pool'.*not a quantized tensor"):
        model.transform(InferShapes()).transform(LowerMaxPool())


def test_the_cli_refuses_a_ceil_mode_pool(tmp_path, capsys):
    path = export_brevitas(_calibrated(torch.nn.MaxPool2d(2, ceil_mode=True)),
                           torch.randn(*SHAPE), tmp_path / "ceil.onnx", "qonnx")
    rc = main(["compile", str(path), "--target", "xczu28dr", "-o", str(tmp_path / "b"),
               "--sim", "none"])
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert rc == 2 and "cannot lower MaxPool node" in err and "ceil_mode" in err
