"""LowerPointwise: unary activations between two quantizers become LutAct nodes (lut-act
kernel), exactly; nodes outside the pattern are left alone and then named."""

import re

import numpy as np
import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Uint8ActPerTensorFloat
from onnx import TensorProto, helper, numpy_helper
from qonnx.custom_op.registry import getCustomOp

from hwsim.compile import frontend
from hwsim.compile.dialect import DOMAIN
from hwsim.compile.lower import STEPS, LowerPointwise, lower
from hwsim.errors import HwsimError
from hwsim.golden.common import lut_act as g
from hwsim.kernels import KERNELS
from quant.onnx import export_brevitas, run_qonnx


class _Acts(torch.nn.Module):
    """int8 input → linear layer (int8 out) → QuantSigmoid (uint8) → tanh → int8 → GELU →
    int8 → SiLU → int8 → QuantReLU (uint8): five standalone activations between quantizers."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.lin = qnn.QuantLinear(16, 8, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                   output_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.sig = qnn.QuantSigmoid(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=False)
        self.q1 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
        self.q2 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=False)
        self.q3 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.relu = qnn.QuantReLU(act_quant=Uint8ActPerTensorFloat)

    def forward(self, x):
        h = self.q1(torch.tanh(self.sig(self.lin(self.inp(x)))))
        h = self.q2(torch.nn.functional.gelu(h))
        return self.relu(self.q3(torch.nn.functional.silu(h)))


@pytest.fixture(scope="module")
def acts(tmp_path_factory):
    torch.manual_seed(0)
    model = _Acts()
    model.train()
    with torch.no_grad():  # calibrate the activation scales
        for _ in range(8):
            model(torch.randn(64, 16) * 2)
    model.eval()
    folder = tmp_path_factory.mktemp("acts")
    return {fmt: export_brevitas(model, torch.randn(4, 16), folder / f"acts_{fmt}.onnx", fmt)
            for fmt in ("qonnx", "qcdq")}


def _samples(graph, n=4, seed=1):
    """Inputs named as ``graph`` (a loaded graph, or a file) names its input: the front end
    renames it, and qonnx would run an input it is not given on zeros."""
    name = (graph if hasattr(graph, "graph") else onnx.load(graph)).graph.input[0].name
    rng = np.random.default_rng(seed)
    return [{name: (rng.standard_normal((4, 16)) * s).astype(np.float32)}
            for s in np.linspace(0.5, 6, n)]  # up to saturation


@pytest.mark.parametrize("fmt", ["qonnx", "qcdq"])
def test_activations_become_exact_lut_act_nodes(acts, fmt, tmp_path):
    graph = frontend.load(acts[fmt])
    inputs = _samples(graph)
    lowered, report = lower(graph, verify_inputs=inputs)

    luts = [n for n in lowered.graph.node if n.op_type == "LutAct"]
    assert all(n.domain == DOMAIN for n in luts)
    assert [getCustomOp(n).get_nodeattr("function") for n in luts] == \
        ["Sigmoid", "Tanh", "Gelu", "Silu", "Relu"]
    kernels = {getCustomOp(n).get_nodeattr("kernel") for n in luts}
    assert kernels == {"lut-act"} and "lut-act" in KERNELS
    ops = [(n.domain, n.op_type) for n in lowered.graph.node]
    assert ops == [("", "QuantizeLinear"), (DOMAIN, "IntMatMul"), (DOMAIN, "Requant")] \
        + [(DOMAIN, "LutAct")] * 5 + [("", "DequantizeLinear")]
    assert report.step("LowerPointwise").exact
    assert all(s.equal for s in report.steps if s.exact)

    # exact, checked here again on the saved files: the graph before the step == after it
    before, _ = lower(graph, steps=[s() for s in STEPS if s.__name__ != "LowerPointwise"],
                      verify_inputs=inputs[:1])
    onnx.save(before.model, tmp_path / "before.onnx")
    onnx.save(lowered.model, tmp_path / "after.onnx")
    onnx.checker.check_model(onnx.load(tmp_path / "after.onnx"), full_check=True)
    for x in _samples(graph, n=6, seed=7):
        (want,) = run_qonnx(tmp_path / "before.onnx", x)
        (got,) = run_qonnx(tmp_path / "after.onnx", x)
        assert np.array_equal(want, got)

    # each table is its function between the two quantizers (float64 reference, ≤ 1 LSB:
    # the graph computes in float32)
    names = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Gelu": "gelu", "Silu": "silu",
             "Relu": "relu"}
    for lut in luts:
        op = getCustomOp(lut)
        dq_in = next(n for n in before.graph.node if n.op_type == "DequantizeLinear"
                     and n.input[0] == lut.input[0])
        q_out = before.find_producer(lut.output[0])
        if q_out.op_type == "Clip":
            q_out = before.find_producer(q_out.input[0])
        s_in, z_in = (before.get_initializer(i) for i in dq_in.input[1:3])
        s_out, z_out = (before.get_initializer(i) for i in q_out.input[1:3])
        ref = g.table_for(names[op.get_nodeattr("function")], float(s_in), int(z_in),
                          float(s_out), int(z_out), z_in.dtype == np.int8, z_out.dtype == np.int8)
        table = np.array(op.get_nodeattr("table"))
        assert np.max(np.abs(table - np.array(ref))) <= 1, lut.name
        assert op.params().table == tuple(table.tolist())  # a valid lut-act kernel table


# ------------------------------------------------------------------------------------------
# Hand-built graphs: what the step leaves alone
def _graph(code_type, quantize_output=True, per_channel=False):
    """x → QuantizeLinear(code_type) → DequantizeLinear → Sigmoid [→ QuantizeLinear(uint8) →
    DequantizeLinear] → y, on (2, 4)."""
    np_code = helper.tensor_dtype_to_np_dtype(code_type)
    scale = np.array([0.05, 0.04, 0.03, 0.02], np.float32) if per_channel \
        else np.array(0.05, np.float32)
    inits = [numpy_helper.from_array(scale, "s_in"),
             numpy_helper.from_array(np.zeros(scale.shape, np_code), "z_in"),
             numpy_helper.from_array(np.array(1 / 256, np.float32), "s_out"),
             numpy_helper.from_array(np.array(0, np.uint8), "z_out")]
    axis = {"axis": 1} if per_channel else {}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s_in", "z_in"], ["c"], name="q_in", **axis),
             helper.make_node("DequantizeLinear", ["c", "s_in", "z_in"], ["d"], name="dq_in",
                              **axis),
             helper.make_node("Sigmoid", ["d"], ["f" if quantize_output else "y"], name="sig")]
    if quantize_output:
        nodes += [helper.make_node("QuantizeLinear", ["f", "s_out", "z_out"], ["c2"], name="q"),
                  helper.make_node("DequantizeLinear", ["c2", "s_out", "z_out"], ["y"],
                                   name="dq")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                         [2, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
                              initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def _x():
    return [{"x": np.linspace(-8, 8, 8, dtype=np.float32).reshape(2, 4)}]


def test_the_hand_built_8_bit_graph_is_taken():
    """The control for the cases below: with int8 codes the same graph becomes a LutAct."""
    lowered, report = lower(_graph(TensorProto.INT8), verify_inputs=_x())
    assert [n.op_type for n in lowered.graph.node] == ["QuantizeLinear", "LutAct",
                                                       "DequantizeLinear"]
    assert report.step("LowerPointwise").equal


@pytest.mark.parametrize("kw", [dict(code_type=TensorProto.INT16),
                                dict(code_type=TensorProto.INT8, quantize_output=False),
                                dict(code_type=TensorProto.INT8, per_channel=True)],
                         ids=["16-bit-input", "float-output", "per-channel-scale"])
def test_a_node_outside_the_pattern_is_left_alone_then_named(kw):
    model = _graph(**kw)
    lowered, report = lower(model, steps=[LowerPointwise()], verify_inputs=_x())
    assert [n.op_type for n in lowered.graph.node] == [n.op_type for n in model.graph.node]
    assert report.steps[0].equal
    with pytest.raises(HwsimError, match=r"cannot lower Sigmoid node 'sig'"):
        lower(model, verify_inputs=_x())


def test_a_dequantized_input_read_elsewhere_keeps_its_dequantize():
    """The input's DequantizeLinear also feeds a graph output: it stays, the rest is taken."""
    model = _graph(TensorProto.UINT8)
    model.graph.output.append(helper.make_tensor_value_info("d", TensorProto.FLOAT, [2, 4]))
    lowered, _ = lower(model, verify_inputs=_x())
    assert sorted(n.op_type for n in lowered.graph.node) == \
        ["DequantizeLinear", "DequantizeLinear", "LutAct", "QuantizeLinear"]


@pytest.mark.parametrize("attrs, match", [
    (dict(table=list(range(255))), "256 output codes"),
    (dict(table=[200] * 256), "outside"),
    (dict(table=[100] * 256, out_width=4), "outside the .* code range"),
    (dict(table=[0] * 256, in_width=4), "in_width must be 8")])
def test_lut_act_verify_node_checks_the_table(attrs, match):
    node = helper.make_node("LutAct", ["x"], ["y"], domain=DOMAIN, name="lut",
                            **{"in_signed": 1, "out_signed": 1, **attrs})
    problems = getCustomOp(node).verify_node()
    assert problems and any(re.search(match, p) for p in problems), problems
    good = helper.make_node("LutAct", ["x"], ["y"], domain=DOMAIN, name="lut",
                            table=list(range(-128, 128)))
    assert getCustomOp(good).verify_node() == []
