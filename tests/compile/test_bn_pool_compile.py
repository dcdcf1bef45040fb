"""BatchNorm after a quantized convolution or linear layer, and average pooling, through
``hwsim compile``: small Brevitas CNNs in QONNX and QCDQ — the BatchNorm folded into the
convolution's per-channel weight scale and bias (a negative gain flips its channel's codes),
the pools rewritten as depthwise all-ones convolutions (or folded into the convolution that
reads them) — lowered within the proven bounds and compiled end to end on the existing
``conv-window`` / ``int8-mvu`` kernels: RTL == golden, cycles == the composed formula."""

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
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_shapes import InferShapes

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.lower import AveragePoolToConv, FoldBatchNorm, lower
from hwsim.errors import HwsimError
from quant.onnx import export_brevitas, run_qonnx

SHAPE = (1, 2, 6, 6)
GAMMA = [1.3, -0.8, 0.6, 1.1]  # channel 1: a negative gain


def _inp():
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)


def _conv(cin, cout, out=False):
    return qnn.QuantConv2d(cin, cout, 3, padding=1, bias=True,
                           weight_quant=Int8WeightPerTensorFloat,
                           output_quant=Int8ActPerTensorFloat if out else None)


def _relu():
    return qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)


class _BN(torch.nn.Module):
    """conv → BatchNorm2d → ReLU quantizer → conv (output quantizer)."""

    def __init__(self):
        super().__init__()
        self.inp, self.c1, self.bn = _inp(), _conv(2, 4), torch.nn.BatchNorm2d(4)
        self.r1, self.c2 = _relu(), _conv(4, 4, out=True)
        with torch.no_grad():
            self.bn.weight.copy_(torch.tensor(GAMMA))
            self.bn.bias.copy_(torch.tensor([0.2, 0.5, -0.1, 0.05]))
            self.bn.running_mean.copy_(torch.tensor([0.3, -0.4, 0.1, -0.2]))
            self.bn.running_var.copy_(torch.tensor([0.5, 2.0, 0.8, 1.5]))

    def forward(self, x):
        return self.c2(self.r1(self.bn(self.c1(self.inp(x)))))


class _Avg(torch.nn.Module):
    """conv → ReLU quantizer → AvgPool2d(2) → QuantIdentity → conv (output quantizer)."""

    def __init__(self):
        super().__init__()
        self.inp, self.c1, self.r1 = _inp(), _conv(2, 4), _relu()
        self.pool = torch.nn.AvgPool2d(2)
        self.q = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.c2 = _conv(4, 4, out=True)

    def forward(self, x):
        return self.c2(self.q(self.pool(self.r1(self.c1(self.inp(x))))))


class _Gap(torch.nn.Module):
    """conv → ReLU quantizer → AdaptiveAvgPool2d(1) → QuantIdentity as the output."""

    def __init__(self):
        super().__init__()
        self.inp, self.c1, self.r1 = _inp(), _conv(2, 4), _relu()
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.q = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)

    def forward(self, x):
        return self.q(self.pool(self.r1(self.c1(self.inp(x)))))


class _PoolConv(torch.nn.Module):
    """AvgPool2d(2) read directly by a conv (no quantizer between): folded into its kernel."""

    def __init__(self):
        super().__init__()
        self.inp, self.c1, self.r1 = _inp(), _conv(2, 4), _relu()
        self.pool, self.c2 = torch.nn.AvgPool2d(2), _conv(4, 4, out=True)

    def forward(self, x):
        return self.c2(self.pool(self.r1(self.c1(self.inp(x)))))


MODELS = {"bn": _BN, "avg": _Avg, "gap": _Gap, "poolconv": _PoolConv}


def _calibrated(cls):
    torch.manual_seed(0)
    model = cls()
    model.train()
    for m in model.modules():  # the BatchNorm keeps its set running statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(16, *SHAPE[1:]) * 2)
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bn_pool")
    out = {}
    for name, cls in MODELS.items():
        m = _calibrated(cls)
        out[name] = m
        for fmt in ("qonnx", "qcdq"):
            out[name, fmt] = export_brevitas(m, torch.randn(*SHAPE), folder / f"{name}_{fmt}.onnx",
                                             fmt)
    return out


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_lowering_within_the_bound(models, name, fmt):
    graph = frontend.load(models[name, fmt])
    assert frontend.unsupported(graph) == []
    x = np.random.default_rng(1).standard_normal(SHAPE).astype(np.float32) * 2
    inp = graph.graph.input[0].name
    low, rep = lower(graph, verify_inputs=[{inp: x}])
    ops = [n.op_type for n in low.graph.node]
    assert not {"Conv", "BatchNormalization", "AveragePool", "GlobalAveragePool"} & set(ops)
    assert ops.count("IntConv") == {"bn": 2, "avg": 3, "gap": 2, "poolconv": 2}[name]
    for step in rep.steps:
        assert all(step.max_lsb[t] <= b for t, b in step.bound_lsb.items())
    rewrite = rep.step("FoldBatchNorm" if name == "bn" else "AveragePoolToConv")
    assert rewrite.bound_lsb or name == "poolconv"
    ref = np.asarray(run_qonnx(graph.model, {inp: x})[0])
    out = low.graph.output[0].name
    y = execute_onnx(low, {inp: x})[out]
    dq = next(n for n in low.graph.node if n.op_type == "DequantizeLinear" and n.output[0] == out)
    scale = float(low.get_initializer(dq.input[1]))
    worst = max(b for s in rep.steps for b in s.bound_lsb.values())
    assert np.max(np.abs(y - ref)) / scale <= worst + 1e-6
    convs = [n for n in low.graph.node if n.op_type == "IntConv"]
    if name == "bn":  # the negative-gain channel's codes flipped, the others as trained
        codes = models[name].c1.quant_weight().int().detach().numpy()
        w = low.get_initializer(convs[0].input[1])
        sign = np.sign(GAMMA).astype(int).reshape(-1, 1, 1, 1)
        assert np.array_equal(w, codes * sign) and np.any(codes[1] != 0)
        rq = getCustomOp(low.find_consumer(convs[0].output[0]))
        assert rq.per_channel and len(set(rq.scales()[0].tolist())) == 4
    if name in ("avg", "gap"):  # the pool: depthwise, all codes 1
        pool = convs[1]
        attr = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
        assert attr["group"] == 4 and attr["kernel_size"] == {"avg": 2, "gap": 6}[name]
        assert np.all(low.get_initializer(pool.input[1]) == 1)
    if name == "poolconv":  # 3×3 after a 2×2 pool: a 6×6 kernel of 2×2 blocks, stride 2
        attr = {a.name: helper.get_attribute_value(a) for a in convs[1].attribute}
        assert (attr["kernel_size"], attr["stride"], attr["pad"]) == (6, 2, 2)
        codes = models[name].c2.quant_weight().int().detach().numpy()
        w = low.get_initializer(convs[1].input[1])
        assert np.array_equal(w, np.repeat(np.repeat(codes, 2, axis=2), 2, axis=3))


def _compile(capsys, *args):
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


_SLOW = pytest.mark.slow  # ~20 s each on a loaded machine: QONNX in the default tier


@pytest.mark.parametrize("name,fmt", [pytest.param("bn", "qonnx", marks=_SLOW),
                                      pytest.param("bn", "qcdq", marks=_SLOW),
                                      ("avg", "qonnx"), pytest.param("avg", "qcdq", marks=_SLOW),
                                      pytest.param("gap", "qonnx", marks=_SLOW),
                                      pytest.param("gap", "qcdq", marks=_SLOW),
                                      ("poolconv", "qcdq")])
def test_compile_end_to_end(models, tmp_path, capsys, name, fmt):
    rc, s, err = _compile(capsys, models[name, fmt], "--target", "xczu28dr", "-o",
                          tmp_path / "build", "--sim", "icarus")
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    bound = max(b for st in s["lowering"]["steps"] for b in st["bound_lsb"].values())
    assert s["max_error_lsb_vs_onnxruntime"] <= bound
    kernels = [k["kernel"] for k in s["kernels"]]
    assert kernels == ["conv-window", "int8-mvu"] * {"bn": 2, "avg": 3, "gap": 2,
                                                     "poolconv": 2}[name]


# ------------------------------------------------------------------------------------------
# Refusals, on hand-made graphs in the lowering's code form
def _graph(nodes, out_type, out_shape, inits):
    g = helper.make_graph(
        [helper.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]),
         helper.make_node("DequantizeLinear", ["q", "s", "z"], ["a"]), *nodes],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", out_type, out_shape)],
        [helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
         helper.make_tensor("z", TensorProto.INT8, [], [0]), *inits])
    return ModelWrapper(onnx.helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)])
                        ).transform(InferShapes())


def test_a_flip_of_code_minus_128_is_refused():
    codes = np.ones((2, 2, 1, 1), np.int8)
    codes[1, 0] = -128
    bn = [helper.make_tensor(n, TensorProto.FLOAT, [2], v) for n, v in
          (("gamma", [1.0, -1.0]), ("beta", [0.0, 0.0]), ("mean", [0.0, 0.0]),
           ("var", [1.0, 1.0]))]
    model = _graph(
        [helper.make_node("DequantizeLinear", ["wq", "s"], ["w"]),
         helper.make_node("Conv", ["a", "w"], ["c"], name="conv", kernel_shape=[1, 1]),
         helper.make_node("BatchNormalization", ["c", "gamma", "beta", "mean", "var"], ["b"],
                          name="bn"),
         helper.make_node("QuantizeLinear", ["b", "s", "z"], ["y"])],
        TensorProto.INT8, [1, 2, 4, 4],
        [helper.make_tensor("wq", TensorProto.INT8, [2, 2, 1, 1], codes.ravel().tolist()), *bn])
    with pytest.raises(HwsimError, match="channel 1 has a negative gain and a weight code −128"):
        model.transform(FoldBatchNorm())


def test_a_pool_without_a_quantizer_is_refused():
    model = _graph([helper.make_node("AveragePool", ["a"], ["y"], name="pool",
                                     kernel_shape=[2, 2], strides=[2, 2])],
                   TensorProto.FLOAT, [1, 2, 2, 2], [])
    with pytest.raises(HwsimError, match="put a quantizer"):
        model.transform(AveragePoolToConv())


def test_an_overlapping_pool_read_by_a_conv_is_refused():
    model = _graph([helper.make_node("AveragePool", ["a"], ["p"], name="pool",
                                     kernel_shape=[2, 2], strides=[1, 1]),
                    helper.make_node("DequantizeLinear", ["wq", "s"], ["w"]),
                    helper.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[1, 1]),
                    helper.make_node("QuantizeLinear", ["c", "s", "z"], ["y"])],
                   TensorProto.INT8, [1, 2, 3, 3],
                   [helper.make_tensor("wq", TensorProto.INT8, [2, 2, 1, 1], [1] * 4)])
    with pytest.raises(HwsimError, match="non-overlapping"):
        model.transform(AveragePoolToConv())
