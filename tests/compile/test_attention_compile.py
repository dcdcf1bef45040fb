"""Softmax attention through the compiler: a Brevitas 2-head self-attention block (QuantLinear
q/k/v projections, scaled scores, softmax, quantized probabilities, A·V, output projection,
a residual add), exported to QONNX and QCDQ, lowers to one ``IntAttention`` (kernel
``attention-head``) whose deviation stays within the bound the step proves."""


import json
import math

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import (
    Int8ActPerTensorFloat,
    Int8WeightPerTensorFloat,
)
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.dialect import DOMAIN
from hwsim.compile.examples import ProbQuant as _Prob
from hwsim.compile.lower import lower
from hwsim.golden.common.attention_head import attention_head
from quant.onnx import export_brevitas, run_onnxruntime, run_qonnx
from quant.qtype import INT8, requantize

T, D, HEADS = 4, 16, 2


class _SelfAttention(torch.nn.Module):
    """``y = Q(x + O(Q(merge(softmax(q kᵀ/√d) v))))`` with ``q, k, v = Q(L(x))`` split into
    two heads (``reshape(T, H, d).transpose``); ``residual=False`` drops the add."""

    def __init__(self, residual: bool = True, causal: bool = False):
        super().__init__()
        self.residual, self.causal = residual, causal
        self.dh = D // HEADS
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)

        def lin():
            return qnn.QuantLinear(D, D, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                   output_quant=Int8ActPerTensorFloat)

        self.q, self.k, self.v, self.o = lin(), lin(), lin(), lin()
        self.qp = qnn.QuantIdentity(act_quant=_Prob)
        self.qo = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.out = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        self.register_buffer("mask", torch.triu(torch.full((T, T), -1e9), 1))

    def forward(self, x):
        x = self.inp(x)

        def split(z):
            return z.reshape(T, HEADS, self.dh).transpose(0, 1)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        s = q @ k.transpose(-1, -2) / self.dh ** 0.5
        if self.causal:
            s = s + self.mask
        a = self.qp(torch.softmax(s, dim=-1))
        y = self.o(self.qo((a @ v).transpose(0, 1).reshape(T, D)))
        return self.out(x + y) if self.residual else y


def _calibrated(**kw):
    torch.manual_seed(0)
    model = _SelfAttention(**kw)
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(T, D))
    return model.eval()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("attn")
    out = {}
    for name, kw in (("block", {}), ("causal", {"causal": True, "residual": False})):
        m = _calibrated(**kw)
        for fmt in ("qonnx", "qcdq"):
            out[name, fmt] = export_brevitas(m, torch.randn(T, D), folder / f"{name}_{fmt}.onnx",
                                             fmt)
    return out


def _sample(seed=1):
    return np.random.default_rng(seed).standard_normal((T, D)).astype(np.float32)


@pytest.mark.parametrize("name,fmt", [("block", "qonnx"), ("block", "qcdq"),
                                      ("causal", "qcdq")])
def test_attention_lowers_to_one_node_within_its_bound(exports, name, fmt):
    g = frontend.load(exports[name, fmt])
    inp = g.graph.input[0].name
    xs = [_sample(s) for s in (1, 2, 3)]
    low, rep = lower(g, verify_inputs=[{inp: x} for x in xs])
    att = [n for n in low.graph.node if n.op_type == "IntAttention"]
    assert len(att) == 1 and att[0].domain == DOMAIN
    op = getCustomOp(att[0])
    assert op.get_nodeattr("kernel") == "attention-head" and op.get_nodeattr("heads") == HEADS
    assert op.get_nodeattr("causal") == (name == "causal")
    assert op.get_nodeattr("prob_frac") == 8  # the file's 1/256 probabilities
    assert not {"MatMul", "Softmax", "Reshape", "Transpose"} & {n.op_type for n in low.graph.node}
    step = rep.step("LowerAttention")
    assert set(step.max_lsb) == set(step.bound_lsb) and att[0].output[0] in step.bound_lsb
    for t, dev in step.max_lsb.items():
        assert dev <= step.bound_lsb[t]
    # against onnxruntime running the file: within the bounds of all approximate steps
    dq = next(n for n in low.graph.node if n.op_type == "DequantizeLinear"
              and n.output[0] == low.graph.output[0].name)
    bound = sum(s.bound_lsb.get(dq.input[0], 0) for s in rep.steps)
    assert bound > 0
    scale = float(np.asarray(low.get_initializer(dq.input[1])).ravel()[0])
    run = run_onnxruntime if fmt == "qcdq" else run_qonnx
    for x in xs:
        ref = run(exports[name, fmt], {frontend_input(exports[name, fmt]): x})[0]
        got = run_qonnx(low.model, {inp: x})[0]
        err = np.max(np.abs(got - ref)) / scale
        assert err <= bound + 1e-3, (err, bound)


def frontend_input(path) -> str:
    import onnx
    m = onnx.load(str(path))
    inits = {i.name for i in m.graph.initializer}
    return next(i.name for i in m.graph.input if i.name not in inits)


def test_int_attention_executes_the_kernel_golden_per_head(exports):
    g = frontend.load(exports["block", "qcdq"])
    low, _ = lower(g, verify_inputs=[{g.graph.input[0].name: _sample()}])
    node = next(n for n in low.graph.node if n.op_type == "IntAttention")
    op = getCustomOp(node)
    rng = np.random.default_rng(5)
    q, k, v = (rng.integers(-128, 128, (T, D)).astype(np.int8) for _ in range(3))
    ctx = dict(zip(node.input, (q, k, v), strict=True))
    op.execute_node(ctx, low.graph)
    p = op.params((T, D))
    dh = D // HEADS
    for h in range(HEADS):
        c = slice(h * dh, (h + 1) * dh)
        o, amax = attention_head(q[:, c], k[:, c], v[:, c], op.get_nodeattr("score_mult"),
                                 op.get_nodeattr("score_shift"), p)
        want = requantize(o.astype(np.int64) * amax[:, None], op.get_nodeattr("out_mult"),
                          op.get_nodeattr("out_shift"), INT8)
        assert np.array_equal(ctx[node.output[0]][:, c], want)
    assert not op.verify_node()


def test_score_format_holds_the_calibration_scores(exports):
    g = frontend.load(exports["block", "qonnx"])
    inp = g.graph.input[0].name
    small, _ = lower(g, verify_inputs=[{inp: _sample() * 0.1}])
    big, _ = lower(g, verify_inputs=[{inp: _sample() * 8}])
    frac = [getCustomOp(next(n for n in m.graph.node if n.op_type == "IntAttention"))
            .get_nodeattr("score_frac") for m in (small, big)]
    assert frac[0] > frac[1]


def _compile(capsys, *args):
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


@pytest.mark.parametrize("fmt,sim", [  # the encoder block around it compiles in the default tier
    pytest.param("qonnx", "icarus", marks=pytest.mark.slow),
    pytest.param("qcdq", "verilator", marks=pytest.mark.slow)])
def test_attention_block_compiles_end_to_end(exports, tmp_path, capsys, fmt, sim):
    rc, s, err = _compile(capsys, exports["block", fmt], "--target", "xczu28dr", "-o",
                          tmp_path / "b", "--sim", sim)
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True
    assert {k["kernel"] for k in s["kernels"]} == {"int8-mvu", "attention-head", "eltwise"}
    step = next(x for x in s["lowering"]["steps"] if x["name"] == "LowerAttention")
    bound = max(step["bound_lsb"].values())
    assert 0 < s["max_error_lsb_vs_onnxruntime"] <= bound + 1
    assert math.isfinite(s["latency_us"])
