"""The compiler's front end (:mod:`hwsim.compile.frontend`): small torch and Brevitas models no
flow knows, exported to QONNX and QCDQ, load into one clean form whose ops are all supported;
decomposed GELU and RMSNorm are fused and the fused graph computes what the export computes;
an unsupported op or a malformed file is one error line."""

from __future__ import annotations

from collections import Counter

import brevitas.nn as qnn
import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from hwsim.compile import frontend
from hwsim.errors import HwsimError
from quant.onnx import (
    export_brevitas,
    export_tolerance,
    export_torch,
    run_onnxruntime,
    run_qonnx,
)

# A fused op (Gelu, LayerNormalization, RMSNormalization) evaluates the same float32 function
# as the exported decomposition, only in another order (a few ulp per operation, ~1e-7
# relative); 1e-5 of the output peak leaves a wide margin for that and is still far below what a
# wrong epsilon, gamma or axis changes.
FLOAT_TOL = 1e-5


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: int8 weights and activations, 2-head softmax
    attention, LayerNorm, GELU MLP, residuals."""

    def __init__(self, d: int = 8, heads: int = 2):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.qin = qnn.QuantIdentity()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (qnn.QuantLinear(d, d, bias=True) for _ in range(4))
        self.qs = qnn.QuantIdentity()
        self.fc1 = qnn.QuantLinear(d, 2 * d, bias=True)
        self.act = nn.GELU()
        self.qa = qnn.QuantIdentity()
        self.fc2 = qnn.QuantLinear(2 * d, d, bias=True)

    def forward(self, x):
        x = self.qin(x)
        b, t, d = x.shape
        y = self.ln1(x)

        def split(z):
            return z.reshape(b, t, self.heads, self.dh).transpose(1, 2)

        q, k, v = split(self.q(y)), split(self.k(y)), split(self.v(y))
        att = self.qs(torch.softmax(q @ k.transpose(-1, -2) / self.dh ** 0.5, dim=-1))
        x = x + self.o((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(self.qa(self.act(self.fc1(self.ln2(x)))))


class GatedCNN(nn.Module):
    """Conv 3×3, depthwise 3×3 and 1×1 convs, ReLU, a sigmoid attention gate, PixelShuffle."""

    def __init__(self, c: int = 4):
        super().__init__()
        self.qin = qnn.QuantIdentity()
        self.conv = qnn.QuantConv2d(1, c, 3, padding=1)
        self.relu = qnn.QuantReLU()
        self.dw = qnn.QuantConv2d(c, c, 3, padding=1, groups=c)
        self.gate = qnn.QuantConv2d(c, c, 1)
        self.qg = qnn.QuantIdentity()
        self.pw = qnn.QuantConv2d(c, 4, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x):
        y = self.relu(self.conv(self.qin(x)))
        y = self.dw(y)
        y = self.qg(y * torch.sigmoid(self.gate(y)))
        return self.shuffle(self.pw(y))


def _export(module, example, path, fmt):
    torch.manual_seed(0)
    export_brevitas(module.eval(), example, path, fmt)
    return path


def _ops(model) -> Counter:
    return Counter(n.op_type for n in model.graph.node)


def _data_input(path) -> str:
    """The graph input that is not an initializer (Brevitas's QCDQ export lists both)."""
    m = onnx.load(str(path))
    inits = {i.name for i in m.graph.initializer}
    return next(i.name for i in m.graph.input if i.name not in inits)


def _run_original(path, fmt, x):
    run = run_qonnx if fmt == "qonnx" else run_onnxruntime
    return run(path, {_data_input(path): x})[0]


def _run_loaded(model, x):
    return run_qonnx(model.model, {model.graph.input[0].name: x})[0]


@pytest.fixture(scope="module", params=["qonnx", "qcdq"])
def frontend_encoder(request, tmp_path_factory):
    torch.manual_seed(0)
    block = EncoderBlock()
    path = tmp_path_factory.mktemp("enc") / f"block_{request.param}.onnx"
    return request.param, _export(block, torch.randn(1, 4, 8), path, request.param)


@pytest.fixture(scope="module", params=["qonnx", "qcdq"])
def frontend_cnn(request, tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cnn") / f"cnn_{request.param}.onnx"
    return request.param, _export(GatedCNN(), torch.randn(1, 1, 6, 6), path, request.param)


def test_encoder_block_is_supported_and_runs_as_exported(frontend_encoder):
    fmt, path = frontend_encoder
    model = frontend.load(path)
    assert frontend.unsupported(model) == []
    frontend.check_supported(model)
    ops = _ops(model)
    assert ops["Gelu"] == 1 and ops["LayerNormalization"] == 2 and ops["Softmax"] == 1
    assert not {"Erf", "Sqrt", "ReduceMean", "QuantizeLinear", "DequantizeLinear"} & set(ops)
    assert ops["Quant"] >= 8
    found = Counter(p["pattern"] for p in frontend.patterns(model))
    assert found == {"gelu_erf": 1, "layernorm": 2, "softmax_attention": 1}
    x = np.random.default_rng(0).standard_normal((1, 4, 8)).astype(np.float32)
    want, got = _run_original(path, fmt, x), _run_loaded(model, x)
    # same float function as the export up to evaluation order: the export's own tolerance
    assert np.max(np.abs(got - want)) <= export_tolerance(fmt, np.max(np.abs(want)))


def test_summary_names_ops_and_patterns(frontend_encoder):
    model = frontend.load(frontend_encoder[1])
    rows = frontend.summary(model)
    assert [r["name"] for r in rows] == [n.name for n in model.graph.node]
    assert all(r["supported"] for r in rows)
    by_op = {r["op_type"]: r for r in rows}
    assert by_op["Gelu"]["pattern"] == "gelu_erf"
    assert by_op["Softmax"]["pattern"] == "softmax_attention"
    assert by_op["LayerNormalization"]["pattern"] == "layernorm"
    assert by_op["Quant"]["pattern"] is None


def test_gated_cnn_with_pixel_shuffle_is_supported(frontend_cnn):
    fmt, path = frontend_cnn
    model = frontend.load(path)
    assert frontend.unsupported(model) == []
    ops = _ops(model)
    assert ops["Conv"] == 4 and ops["Sigmoid"] == 1 and ops["DepthToSpace"] == 1
    x = np.random.default_rng(1).standard_normal((1, 1, 6, 6)).astype(np.float32)
    want, got = _run_original(path, fmt, x), _run_loaded(model, x)
    assert np.max(np.abs(got - want)) <= export_tolerance(fmt, np.max(np.abs(want)))


class RMSNormDiv(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.g = nn.Parameter(torch.linspace(0.5, 1.5, d))

    def forward(self, x):
        return x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.g


class RMSNormRsqrt(nn.Module):
    def __init__(self, d=8):
        super().__init__()
        self.g = nn.Parameter(torch.linspace(-1.0, 1.0, d))

    def forward(self, x):
        return self.g * (x * torch.rsqrt((x * x).mean(-1, keepdim=True) + 1e-5))


class GeluErfReordered(nn.Module):
    def forward(self, x):
        return 0.5 * x * (1.0 + torch.erf(x * 0.7071067811865476)) + x


class RotateHalfRope(nn.Module):
    """RoPE as Llama-style models write it: ``x * cos + rotate_half(x) * sin``."""

    def __init__(self, t: int = 3, d: int = 8):
        super().__init__()
        ang = torch.arange(t)[:, None] * 100.0 ** (-torch.arange(0, d, 2) / d)[None, :]
        ang = torch.cat([ang, ang], dim=-1)
        self.register_buffer("cos", ang.cos())
        self.register_buffer("sin", ang.sin())

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=-1)
        return x * self.cos + torch.cat([-x2, x1], dim=-1) * self.sin


class ReluSquared(nn.Module):
    def forward(self, x):
        r = torch.relu(x)
        return r * r


class ReluPow(nn.Module):
    """ReLU² as the BitNet exports write it (``Pow(r, 2)``, which qonnx's cleanup keeps)."""

    def forward(self, x):
        return torch.relu(x).pow(2)


class ReluCube(nn.Module):
    def forward(self, x):
        return torch.relu(x).pow(3)


@pytest.mark.parametrize(("module", "op", "pattern"), [
    (RMSNormDiv(), "RMSNormalization", "rmsnorm"),
    (RMSNormRsqrt(), "RMSNormalization", "rmsnorm"),
    (nn.LayerNorm(8), "LayerNormalization", "layernorm"),
    (nn.GELU(), "Gelu", "gelu_erf"),
    (GeluErfReordered(), "Gelu", "gelu_erf"),
    (RotateHalfRope(), "RotaryEmbedding", "rotary"),
], ids=["rms-div", "rms-rsqrt", "layernorm", "gelu", "gelu-reordered", "rope"])
def test_decomposed_op_is_fused_and_computes_the_same(tmp_path, module, op, pattern):
    path = tmp_path / "m.onnx"
    export_torch(module.eval(), (torch.randn(2, 3, 8),), path, ["x"], ["y"])
    model = frontend.load(path)
    ops = _ops(model)
    assert ops[op] == 1
    assert not {"Erf", "Sqrt", "Pow", "ReduceMean", "Reciprocal", "Neg", "Slice"} & set(ops)
    assert frontend.unsupported(model) == []
    assert [p["pattern"] for p in frontend.patterns(model)] == [pattern]
    x = 3 * np.random.default_rng(2).standard_normal((2, 3, 8)).astype(np.float32)
    want = run_onnxruntime(path, {"x": x})[0]
    got = run_onnxruntime(model.model, {model.graph.input[0].name: x})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=FLOAT_TOL * max(np.abs(want).max(), 1))


def test_relu_squared_is_annotated(tmp_path):
    path = tmp_path / "m.onnx"
    export_torch(ReluSquared(), (torch.randn(2, 8),), path, ["x"], ["y"])
    model = frontend.load(path)
    assert _ops(model) == {"Relu": 1, "Mul": 1}
    assert frontend.patterns(model) == [{"pattern": "relu_squared", "nodes": ["/Relu", "/Mul"]}]
    assert {r["pattern"] for r in frontend.summary(model)} == {"relu_squared"}


def test_relu_squared_written_pow_is_annotated_and_a_cube_is_not(tmp_path):
    path = tmp_path / "m.onnx"
    export_torch(ReluPow(), (torch.randn(2, 8),), path, ["x"], ["y"])
    model = frontend.load(path)
    assert _ops(model) == {"Relu": 1, "Pow": 1}
    assert frontend.patterns(model) == [{"pattern": "relu_squared", "nodes": ["/Relu", "/Pow"]}]
    assert frontend.unsupported(model) == []
    export_torch(ReluCube(), (torch.randn(2, 8),), path, ["x"], ["y"])
    model = frontend.load(path)
    assert frontend.patterns(model) == [] and frontend.unsupported(model) == [("Pow", "/Pow")]


class CausalAttention(nn.Module):
    """Single-head causal attention on a (T, d) input, the mask a constant ``masked_fill``."""

    def __init__(self, t: int = 4):
        super().__init__()
        self.register_buffer("mask", torch.triu(torch.ones(t, t, dtype=torch.bool), 1))

    def forward(self, x):
        s = (x @ x.transpose(-1, -2) / 2.0).masked_fill(self.mask, float("-inf"))
        return torch.softmax(s, dim=-1) @ x


def test_causal_attention_is_annotated_and_its_mask_supported(tmp_path):
    path = tmp_path / "m.onnx"
    export_torch(CausalAttention().eval(), (torch.randn(4, 8),), path, ["x"], ["y"])
    model = frontend.load(path)
    assert "Where" in _ops(model)
    assert frontend.unsupported(model) == []
    (att,) = frontend.patterns(model)
    assert att["pattern"] == "softmax_attention"
    op_of = {n.name: n.op_type for n in model.graph.node}
    assert [op_of[n] for n in att["nodes"]] == ["MatMul", "Div", "Where", "Softmax", "MatMul"]


def _graph(nodes, inits=()):
    vi = helper.make_tensor_value_info
    g = helper.make_graph(nodes, "g", [vi("x", TensorProto.FLOAT, [2, 4])],
                          [vi("y", TensorProto.FLOAT, [2, 4])], list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])


def test_fused_standard_ops_at_opset_23_load_as_they_are():
    vi = helper.make_tensor_value_info
    g = helper.make_graph(
        [helper.make_node("RMSNormalization", ["x", "g"], ["n"], axis=-1, epsilon=1e-6),
         helper.make_node("Gelu", ["n"], ["y"])], "g",
        [vi("x", TensorProto.FLOAT, [2, 4])], [vi("y", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor("g", TensorProto.FLOAT, [4], [1.0, 2.0, 3.0, 4.0])])
    model = frontend.load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)]))
    assert _ops(model) == {"RMSNormalization": 1, "Gelu": 1}
    assert frontend.unsupported(model) == [] and frontend.patterns(model) == []


def test_unsupported_op_is_one_line_naming_it(tmp_path):
    model = _graph([helper.make_node("Relu", ["x"], ["a"]),
                    helper.make_node("Cos", ["a"], ["b"], name="/head/Cos"),
                    helper.make_node("Sin", ["b"], ["y"])])
    path = tmp_path / "bad.onnx"
    onnx.save(model, str(path))
    loaded = frontend.load(path)
    # the file's node names where it has them, else OpType_i
    assert frontend.unsupported(loaded) == [("Cos", "/head/Cos"), ("Sin", "Sin_0")]
    with pytest.raises(HwsimError) as err:
        frontend.check_supported(loaded)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == "unsupported ONNX op Cos at node '/head/Cos' (and 1 more unsupported node(s))"


def test_division_by_a_tensor_lone_erf_and_where_are_unsupported():
    cond = helper.make_tensor("c", TensorProto.BOOL, [2, 4], [True, False] * 4)
    model = frontend.load(_graph([helper.make_node("Erf", ["x"], ["e"]),
                                  helper.make_node("Div", ["x", "e"], ["d"]),
                                  helper.make_node("Where", ["c", "d", "x"], ["y"])], [cond]))
    assert frontend.unsupported(model) == [("Erf", "Erf_0"), ("Div", "Div_0"),
                                           ("Where", "Where_0")]
    scaled = frontend.load(_graph([helper.make_node("Div", ["x", "c"], ["y"])],
                                  [helper.make_tensor("c", TensorProto.FLOAT, [], [2.0])]))
    assert frontend.unsupported(scaled) == []


class LinearNorm(nn.Module):
    """``nn.Linear`` on a 2-D input (a ``Gemm``) into a LayerNorm with ``eps = 1e-5``."""

    def __init__(self):
        super().__init__()
        self.fc, self.norm = nn.Linear(4, 8), nn.LayerNorm(8)

    def forward(self, x):
        return self.norm(self.fc(x))


def test_gemm_stays_and_layernorm_keeps_its_epsilon(tmp_path):
    path = tmp_path / "m.onnx"
    export_torch(LinearNorm().eval(), (torch.randn(2, 4),), path, ["x"], ["y"])
    model = frontend.load(path)
    assert _ops(model) == {"Gemm": 1, "LayerNormalization": 1}
    (norm,) = model.get_nodes_by_op_type("LayerNormalization")
    eps = next(a.f for a in norm.attribute if a.name == "epsilon")
    assert eps == pytest.approx(1e-5)
    x = np.random.default_rng(3).standard_normal((2, 4)).astype(np.float32) * 1e-3
    want = run_onnxruntime(path, {"x": x})[0]
    np.testing.assert_allclose(_run_loaded(model, x), want, rtol=0,
                               atol=FLOAT_TOL * max(np.abs(want).max(), 1))


def test_malformed_file_is_one_line(tmp_path):
    path = tmp_path / "broken.onnx"
    path.write_bytes(b"\x08\x07not an onnx model\xff\xff")
    with pytest.raises(HwsimError) as err:
        frontend.load(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(HwsimError, match="is not a file"):
        frontend.load(tmp_path / "missing.onnx")


@pytest.fixture(scope="module")
def frontend_bitnet_layer(tmp_path_factory):
    """Decoder layer 0 of an untrained BitNet-tiny, exported by its flow in both formats."""
    from models.bitnet.config import get_config
    from models.bitnet.export import export_bitnet
    from models.bitnet.model import BitNetModel

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("bitnet")
    export_bitnet(BitNetModel(get_config("tiny")), out, seq=8)
    return out


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_bitnet_layer_is_supported_and_runs_as_exported(frontend_bitnet_layer, fmt):
    path = frontend_bitnet_layer / f"layer0.{fmt}.onnx"
    model = frontend.load(path)
    assert frontend.unsupported(model) == []
    assert Counter(p["pattern"] for p in frontend.patterns(model)) == {
        "rmsnorm": 4, "absmax_quant": 4, "rotary": 2, "kv_repeat": 2, "relu_squared": 1,
        "softmax_attention": 1}
    x = np.random.default_rng(4).standard_normal((1, 8, 128)).astype(np.float32)
    want, got = _run_original(path, fmt, x), _run_loaded(model, x)
    assert np.max(np.abs(got - want)) <= export_tolerance(fmt, np.max(np.abs(want)))


def test_snn_step_lif_neurons_are_annotated_and_supported(tmp_path):
    from models.snn.classifier import QuantSnnClassifier
    from models.snn.export import export_onnx

    torch.manual_seed(0)
    path = export_onnx(QuantSnnClassifier(), tmp_path / "snn.onnx")
    model = frontend.load(path)
    assert frontend.unsupported(model) == []
    assert Counter(p["pattern"] for p in frontend.patterns(model)) == {"lif": 3}
    rng = np.random.default_rng(5)
    shapes = [model.get_tensor_shape(i.name) for i in model.graph.input]
    inputs = [rng.integers(-900, 900, (2, *s[1:])).astype(np.float32) for s in shapes]
    inputs[0] = (rng.random(inputs[0].shape) < 0.3).astype(np.float32)
    want = run_onnxruntime(path, dict(zip(["frame", "v0", "v1", "v2"], inputs, strict=True)))
    # onnxruntime: qonnx's executor needs static shapes and this graph has a dynamic batch
    got = run_onnxruntime(model.model, {i.name: x for i, x in zip(model.graph.input, inputs,
                                                                   strict=True)})
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(g, w)  # integer-valued float graph: exact
