"""Rotary position embeddings through ``hwsim compile``: a Brevitas module that splits int8
codes into heads, rotates them (rotate-half RoPE, the decomposed form an opset-13 export
writes) and quantizes the result lowers to ``IntRotary`` (kernel ``rope``) within its proven
bound; the head split and merge around it leave the graph; the compiled design's RTL equals the
golden graph on Icarus with cycles == the schedule; forms the kernel does not run are refused
with one line naming the node."""

import json

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat
from onnx import helper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.bitnet_block import _rotate_half, rope_tables
from hwsim.compile.lower import lower
from hwsim.errors import HwsimError
from hwsim.golden.common import rope as rope_spec
from quant.onnx import export_brevitas

T, H, HD = 4, 2, 8


class Rotate(torch.nn.Module):
    """int8 (T, H·hd) → heads (H, T, hd) → RoPE → int8 → tokens → an int8 linear layer."""

    def __init__(self):
        super().__init__()
        self.a = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.b = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.lin = qnn.QuantLinear(H * HD, 8, bias=False, output_quant=Int8ActPerTensorFloat)
        cos, sin = rope_tables(HD, T)
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, x):
        z = self.a(x).reshape(T, H, HD).transpose(0, 1)
        z = self.b(z * self.cos + _rotate_half(z) * self.sin)
        return self.lin(z.transpose(0, 1).reshape(T, H * HD))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    torch.manual_seed(0)
    m = Rotate()
    m.train()
    with torch.no_grad():
        for _ in range(8):
            m(torch.randn(T, H * HD))
    m.eval()
    folder = tmp_path_factory.mktemp("rope")
    return {fmt: export_brevitas(m, torch.randn(T, H * HD), folder / f"rope_{fmt}.onnx", fmt)
            for fmt in ("qonnx", "qcdq")}


def _feeds(graph):
    x = np.random.default_rng(1).standard_normal((T, H * HD)).astype(np.float32)
    return [{graph.graph.input[0].name: x * k} for k in (1.0, 0.3, 2.0)]


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_rotary_lowers_within_its_bound(files, fmt):
    graph = frontend.load(files[fmt])
    assert [n.op_type for n in graph.graph.node].count("RotaryEmbedding") == 1
    lowered, report = lower(graph, verify_inputs=_feeds(graph))
    assert [n.op_type for n in lowered.graph.node] == [
        "QuantizeLinear", "IntRotary", "IntMatMul", "Requant", "DequantizeLinear"]
    step = report.step("LowerRotary")
    (out,) = step.bound_lsb
    assert step.bound_lsb[out] == 1 and step.max_lsb[out] <= 1
    assert report.step("SinkRotaryMoves").equal
    (node,) = [n for n in lowered.graph.node if n.op_type == "IntRotary"]
    op = getCustomOp(node)
    assert (op.get_nodeattr("heads"), op.get_nodeattr("head_dim")) == (H, HD)
    # the tables are the file's RoPE tables in Q1.14
    cos, _ = rope_tables(HD, T)
    assert np.array_equal(np.reshape(op.get_nodeattr("cos"), (T, HD // 2)),
                          np.round(cos.numpy()[:, : HD // 2].astype(np.float64) * 2 ** 14))
    # the dialect node runs the kernel's golden function on the token-major codes
    ctx = execute_onnx(lowered, _feeds(graph)[0], return_full_exec_context=True)
    assert np.array_equal(ctx[node.output[0]], rope_spec.rope(ctx[node.input[0]], op.params()))


@pytest.mark.parametrize("fmt", ["qonnx", pytest.param("qcdq", marks=pytest.mark.slow)])
def test_rotary_compiles_end_to_end(files, tmp_path, capsys, fmt):
    rc = main(["compile", str(files[fmt]), "--target", "xczu28dr", "-o", str(tmp_path / "b"),
               "--sim", "icarus", "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True
    assert [k["kernel"] for k in s["kernels"]] == ["rope", "int8-mvu"]
    steps = s["lowering"]["steps"]
    assert s["max_error_lsb_vs_onnxruntime"] <= sum(max(st["bound_lsb"].values(), default=0)
                                                    for st in steps)


def test_interleaved_rotary_is_refused(files):
    graph = frontend.load(files["qonnx"])
    (node,) = [n for n in graph.graph.node if n.op_type == "RotaryEmbedding"]
    node.attribute.append(helper.make_attribute("interleaved", 1))
    with pytest.raises(HwsimError, match="the interleaved form is not lowered") as e:
        lower(graph, verify_inputs=_feeds(graph))
    assert node.name in str(e.value) and "\n" not in str(e.value)
