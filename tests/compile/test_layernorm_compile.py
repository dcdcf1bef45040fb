"""LayerNorm through the compiler: Brevitas models with ``torch.nn.LayerNorm`` between
quantizers (alone, and inside a residual block) exported to QONNX and QCDQ, lowered to one
``IntLayerNorm`` each (within the bound the step states), compiled end to end on Icarus and
Verilator: RTL == golden, cycles == the composed formula."""

import json

import numpy as np
import onnx
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from hwsim.compile import backend, frontend
from hwsim.compile.dialect import DOMAIN
from hwsim.compile.lower import lower
from hwsim.golden.common import layernorm_int as ln_spec
from quant.onnx import export_brevitas


class _LnBlock(torch.nn.Module):
    """``Q(LN(Q(L(Q(x)))))`` followed by a second linear layer."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.l1 = qnn.QuantLinear(16, 16, bias=True, weight_quant=Int8WeightPerTensorFloat)
        self.q1 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.ln = torch.nn.LayerNorm(16)
        self.q2 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.l2 = qnn.QuantLinear(16, 8, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.l2(self.q2(self.ln(self.q1(self.l1(self.inp(x))))))


class _LnResidual(torch.nn.Module):
    """``h = Q(L(Q(x)))``, ``y = Q(Q(LN(h)) + h)``: the skip ``h`` feeds the norm and the add."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.l1 = qnn.QuantLinear(16, 16, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                  output_quant=Int8ActPerTensorFloat)
        self.ln = torch.nn.LayerNorm(16)
        self.q2 = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        h = self.l1(self.inp(x))
        return self.out(self.q2(self.ln(h)) + h)


def _calibrated(cls):
    torch.manual_seed(0)
    model = cls()
    with torch.no_grad():  # non-trivial γ, β
        model.ln.weight.uniform_(0.5, 1.5)
        model.ln.bias.uniform_(-0.3, 0.3)
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(64, 16) * 2)
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ln")
    out = {}
    for name, cls in (("block", _LnBlock), ("residual", _LnResidual)):
        m = _calibrated(cls)
        for fmt in ("qonnx", "qcdq"):
            out[name, fmt] = export_brevitas(m, torch.randn(3, 16), folder / f"{name}_{fmt}.onnx",
                                             fmt)
    return out


@pytest.mark.parametrize("name,fmt", [("block", "qonnx"), ("residual", "qcdq")])
def test_lowered_within_bound(models, name, fmt):
    graph = frontend.load(models[name, fmt])
    x = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32) * 2
    feeds = [{graph.graph.input[0].name: x * k} for k in (1.0, 0.3, 3.0)]
    lowered, report = lower(graph, verify_inputs=feeds)
    lns = [n for n in lowered.graph.node if n.op_type == "IntLayerNorm"]
    assert len(lns) == 1 and lns[0].domain == DOMAIN
    step = report.step("LowerLayerNorm")
    (tensor,) = step.bound_lsb
    assert tensor == lns[0].output[0]
    assert 1 <= step.bound_lsb[tensor] <= 2 and step.max_lsb[tensor] <= step.bound_lsb[tensor]
    assert not any(n.op_type == "LayerNormalization" for n in lowered.graph.node)
    onnx.checker.check_model(lowered.model, full_check=True)
    # the dialect node runs the golden function
    op = getCustomOp(lns[0])
    ctx = execute_onnx(lowered, feeds[0], return_full_exec_context=True)
    assert np.array_equal(ctx[lns[0].output[0]],
                          ln_spec.layernorm_int(ctx[lns[0].input[0]], op.params()))
    # the back end: one layernorm node, double-buffered, timed by the golden formulas
    design = backend.plan(lowered)
    (node,) = [n for n in design.nodes if n.kernel == "layernorm"]
    assert node.tail == ln_spec.tail_cycles(node.params)
    assert node.interval == ln_spec.latency_cycles(node.params)
    assert node.fifo_depth["x"] >= node.params.n


def test_lowering_leaves_other_axes():
    """A LayerNormalization over a non-last axis is not lowered (the lowering names it)."""
    from hwsim.compile.lower import LowerLayerNorm
    nodes = [helper.make_node("DequantizeLinear", ["c", "s", "z"], ["d"], name="dq"),
             helper.make_node("LayerNormalization", ["d", "g", "b"], ["n"], axis=0, name="ln"),
             helper.make_node("QuantizeLinear", ["n", "s", "z"], ["y"], name="q")]
    inits = [onnx.numpy_helper.from_array(np.float32(0.1), "s"),
             onnx.numpy_helper.from_array(np.int8(0), "z"),
             onnx.numpy_helper.from_array(np.ones((2, 4), np.float32), "g"),
             onnx.numpy_helper.from_array(np.zeros((2, 4), np.float32), "b")]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("c", onnx.TensorProto.INT8,
                                                                      [2, 4])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.INT8, [2, 4])],
                          inits)
    model = ModelWrapper(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    step = LowerLayerNorm()
    out = model.transform(step)
    assert [n.op_type for n in out.graph.node].count("LayerNormalization") == 1
    assert step.bounds == {}


def _compile(capsys, *args):
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


@pytest.mark.parametrize("name,fmt,sim", [("block", "qcdq", "icarus"),
                                          # the Verilator C++ build dominates: slow tier
                                          pytest.param("residual", "qonnx", "verilator",
                                                       marks=pytest.mark.slow)])
def test_compile_end_to_end(models, tmp_path, capsys, name, fmt, sim):
    out = tmp_path / "build"
    rc, s, err = _compile(capsys, models[name, fmt], "--target", "xczu28dr", "-o", out,
                          "--sim", sim)
    if rc == 2 and "simulator" in err:
        pytest.skip(err.strip())
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    assert "layernorm" in {k["kernel"] for k in s["kernels"]}
    steps = {st["name"]: st for st in s["lowering"]["steps"]}
    ln_bound = max(steps["LowerLayerNorm"]["bound_lsb"].values())
    lowered = ModelWrapper(str(out / "lowered.onnx"))
    if name == "block":  # a linear layer reads the norm: its bound carries through W
        rq = next(n for n in lowered.graph.node if n.op_type == "Requant"
                  and lowered.find_producer(lowered.find_producer(n.input[0]).input[0]).op_type
                  == "IntLayerNorm")
        mm = lowered.find_producer(rq.input[0])
        w = lowered.get_initializer(mm.input[1]).astype(np.int64)
        r = getCustomOp(rq)
        f = r.get_nodeattr("multiplier") * 2.0 ** -r.get_nodeattr("shift")
        bound = ln_bound * f * float(np.max(np.sum(np.abs(w), axis=0))) + 1
    else:  # the add reads the norm's codes times its factor
        add = next(n for n in lowered.graph.node if n.op_type == "IntEltwise")
        f = max(getCustomOp(add).get_nodeattr("real_factors"))
        bound = ln_bound * f + 1
    assert s["max_error_lsb_vs_onnxruntime"] <= bound
    assert s["fits"] is True and s["luts"] > 0
