"""Causal and grouped-query (GQA) attention through the compiler: a Brevitas decoder-style
attention (q, k, v QuantLinear projections of one quantized input, ``H`` query heads reading
``KV`` key / value heads repeated by ``repeat_interleave``, a causal mask, quantized
probabilities, an int8 context) lowers to one ``IntAttention`` (``causal`` = 1, ``kv_heads`` =
KV) and compiles to RTL that equals the golden graph with the composed cycle count."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat
from onnx import helper
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from hwsim.compile import backend, frontend
from hwsim.compile.examples import ProbQuant
from hwsim.compile.lower import lower
from hwsim.estimate.design import estimate_design
from hwsim.golden.common.attention_head import action_counts
from quant.onnx import export_brevitas, run_onnxruntime, run_qonnx

HEADS, KV, DH = 4, 2, 8


class _Attention(torch.nn.Module):
    """``y = Q(merge(softmax(mask(q kᵀ/√d)) v))`` on ``(1, T, dm)`` with ``q = Q(Lq(x))`` of
    ``heads`` heads and ``k, v`` of ``kv`` heads, repeated ``heads/kv`` times each
    (``repeat_interleave``, as models/bitnet/model.py); ``mask``: ``"fill"`` writes
    ``masked_fill(future, -inf)`` (an ONNX ``Where``), ``"add"`` adds a ``-1e9`` upper
    triangle."""

    def __init__(self, T=5, dm=16, heads=HEADS, kv=KV, mask="fill"):
        super().__init__()
        self.T, self.heads, self.kv, self.mask_kind = T, heads, kv, mask
        self.inp = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)

        def lin(o):
            return qnn.QuantLinear(dm, o, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                   output_quant=Int8ActPerTensorFloat)

        self.q, self.k, self.v = lin(heads * DH), lin(kv * DH), lin(kv * DH)
        self.qp = qnn.QuantIdentity(act_quant=ProbQuant)
        self.qo = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)
        pos = torch.arange(T)
        self.register_buffer("future", pos[None, :] > pos[:, None])
        self.register_buffer("additive", torch.triu(torch.full((T, T), -1e9), 1))

    def forward(self, x):
        T, rep = self.T, self.heads // self.kv
        x = self.inp(x)
        q = self.q(x).view(1, T, self.heads, DH).transpose(1, 2)
        k = self.k(x).view(1, T, self.kv, DH).transpose(1, 2)
        v = self.v(x).view(1, T, self.kv, DH).transpose(1, 2)
        if rep > 1:
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        s = (q @ k.transpose(-2, -1)) / math.sqrt(DH)
        if self.mask_kind == "fill":
            s = s.masked_fill(self.future, float("-inf"))
        else:
            s = s + self.additive
        a = self.qp(torch.softmax(s, dim=-1))
        return self.qo((a @ v).transpose(1, 2).reshape(1, T, self.heads * DH))


def _export(folder, name, fmt, **kw):
    torch.manual_seed(0)
    model = _Attention(**kw)
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(1, model.T, model.q.in_features))
    model.eval()
    return export_brevitas(model, torch.randn(1, model.T, model.q.in_features),
                           folder / f"{name}_{fmt}.onnx", fmt)


@pytest.fixture(scope="module")
def gqa(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gqa")
    return {fmt: _export(folder, "gqa", fmt) for fmt in ("qonnx", "qcdq")}


def _inputs(path, seeds=(1, 2, 3)):
    g = frontend.load(path)
    name = g.graph.input[0].name
    shape = g.get_tensor_shape(name)
    return g, name, [np.random.default_rng(s).standard_normal(shape).astype(np.float32)
                     for s in seeds]


@pytest.mark.parametrize("fmt", ["qonnx", pytest.param("qcdq", marks=pytest.mark.slow)])
def test_gqa_causal_lowers_to_one_node_within_its_bound(gqa, fmt):
    g, inp, xs = _inputs(gqa[fmt])
    pats = {p["pattern"] for p in json.loads(g.get_metadata_prop("hwsim.patterns"))}
    assert {"kv_repeat", "softmax_attention"} <= pats
    low, rep = lower(g, verify_inputs=[{inp: x} for x in xs])
    att = [n for n in low.graph.node if n.op_type == "IntAttention"]
    assert len(att) == 1
    op = getCustomOp(att[0])
    assert (op.get_nodeattr("heads"), op.get_nodeattr("kv_heads"),
            op.get_nodeattr("causal")) == (HEADS, KV, 1)
    assert low.get_tensor_shape(att[0].input[1])[-1] == KV * DH  # the un-repeated k codes
    assert not {"Tile", "Unsqueeze", "Where", "MatMul"} & {n.op_type for n in low.graph.node}
    step = rep.step("LowerAttention")
    out = att[0].output[0]
    assert step.max_lsb[out] <= step.bound_lsb[out]
    dq = next(n for n in low.graph.node if n.op_type == "DequantizeLinear"
              and n.output[0] == low.graph.output[0].name)
    scale = float(np.asarray(low.get_initializer(dq.input[1])).ravel()[0])
    bound = sum(s.bound_lsb.get(out, 0) for s in rep.steps)
    import onnx
    file_in = next(i.name for i in onnx.load(str(gqa[fmt])).graph.input)
    run = run_onnxruntime if fmt == "qcdq" else run_qonnx
    for x in xs:
        ref = run(gqa[fmt], {file_in: x})[0]
        err = np.max(np.abs(run_qonnx(low.model, {inp: x})[0] - ref)) / scale
        assert err <= bound + 1e-3, (err, bound)


def test_additive_mask_without_grouping_lowers_causal(tmp_path):
    path = _export(tmp_path, "mha", "qonnx", heads=4, kv=4, mask="add")
    g, inp, xs = _inputs(path, (1,))
    low, _ = lower(g, verify_inputs=[{inp: xs[0]}])
    op = getCustomOp(next(n for n in low.graph.node if n.op_type == "IntAttention"))
    assert (op.get_nodeattr("causal"), op.get_nodeattr("kv_heads")) == (1, 0)


def _gqa_node(kv_heads, T=4):
    rng = np.random.default_rng(7)
    # scores ≈ q·k / 5000 (4 fractional bits), output 1/(127·2**8): context in v's units
    attrs = dict(heads=HEADS, score_mult=13422, score_shift=22, score_frac=4, prob_frac=8,
                 out_mult=33026, out_shift=30, causal=1)
    if kv_heads:
        attrs["kv_heads"] = kv_heads
    node = helper.make_node("IntAttention", ["q", "k", "v"], ["y"],
                            domain="hwsim.compile.dialect", name="att",
                            kernel="attention-head", **attrs)
    return getCustomOp(node), rng


def test_gqa_golden_reads_kv_head_h_div_rep_and_follows_the_float_reference():
    T = 5
    op, rng = _gqa_node(KV, T)
    assert not op.verify_node()
    q = rng.integers(-128, 128, (1, T, HEADS * DH)).astype(np.int8)
    k, v = (rng.integers(-128, 128, (1, T, KV * DH)).astype(np.int8) for _ in range(2))
    ctx = {"q": q, "k": k, "v": v}
    op.execute_node(ctx, None)
    y = ctx["y"].astype(np.int64)
    # the same as k, v repeated per head (repeat_interleave) without grouping
    full, _ = _gqa_node(0, T)
    rk, rv = (np.repeat(a.reshape(1, T, KV, DH), HEADS // KV, axis=2).reshape(1, T, -1)
              for a in (k, v))
    ctx2 = {"q": q, "k": rk, "v": rv}
    full.execute_node(ctx2, None)
    assert np.array_equal(ctx2["y"], ctx["y"])
    # float reference: softmax(s·q·kᵀ) of kv head h // rep (scores saturated to the int8
    # score format, as the kernel's), causal, times v; o·amax ≈ 127·2**prob_frac·(p·v), so
    # y ≈ 127·2**prob_frac·(p·v)·out_mult·2**-out_shift
    g = op.get_nodeattr
    s = g("score_mult") * 2.0 ** -g("score_shift") * 2.0 ** -g("score_frac")
    m = g("out_mult") * 2.0 ** -g("out_shift")
    rep = HEADS // KV
    worst = 0.0
    for h in range(HEADS):
        j = h // rep
        qh = q[0, :, h * DH:(h + 1) * DH].astype(np.float64)
        kh = k[0, :, j * DH:(j + 1) * DH].astype(np.float64)
        vh = v[0, :, j * DH:(j + 1) * DH].astype(np.float64)
        sc = np.clip(qh @ kh.T * s, -8, 127 / 16)
        sc = np.where(np.tril(np.ones((T, T), bool)), sc, -np.inf)
        p = np.exp(sc - sc.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        want = np.clip(127 * p @ vh * 2.0 ** g("prob_frac") * m, -128, 127)
        worst = max(worst, float(np.max(np.abs(y[0, :, h * DH:(h + 1) * DH] - want))))
    # score codes of 2**-4 and 8-bit probabilities: a few output LSBs, not more
    assert worst <= 6, worst


def test_causal_node_counts_the_keys_each_query_sees(gqa):
    g, inp, xs = _inputs(gqa["qonnx"], (1,))
    low, _ = lower(g, verify_inputs=[{inp: xs[0]}])
    design = backend.plan(low)
    node = next(n for n in design.nodes if n.kernel == "attention-head")
    T, p = node.params.max_len, node.params
    assert node.actions["qk_mac"] == HEADS * DH * T * (T + 1) // 2
    assert node.actions["cycles"] == HEADS * sum(action_counts(p, t + 1)["cycles"]
                                                 for t in range(T))
    causal = estimate_design([(node.name, node.kernel, p, node.calls, node.actions)],
                             "xczu28dr")
    full = estimate_design([(node.name, node.kernel, p, node.calls)], "xczu28dr")
    a, b = causal["nodes"][0]["actions"], full["nodes"][0]["actions"]
    assert a["int8_mul"] * 2 * T == b["int8_mul"] * (T + 1)   # Σ(t+1) = T(T+1)/2 keys vs T²


def _compile(capsys, path, out, sim):
    rc = main(["compile", str(path), "--target", "xczu28dr", "-o", str(out), "--sim", sim,
               "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return json.loads(cap.out)


def _check(s):
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True
    assert "attention-head" in {k["kernel"] for k in s["kernels"]}
    step = next(x for x in s["lowering"]["steps"] if x["name"] == "LowerAttention")
    assert s["max_error_lsb_vs_onnxruntime"] <= max(step["bound_lsb"].values()) + 1e-3


def test_gqa_causal_compiles_end_to_end(gqa, tmp_path, capsys):
    _check(_compile(capsys, gqa["qonnx"], tmp_path / "b", "icarus"))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_gqa_causal_qcdq_compiles_on_verilator(gqa, tmp_path, capsys):
    _check(_compile(capsys, gqa["qcdq"], tmp_path / "b", "verilator"))


@pytest.mark.slow
@pytest.mark.parametrize("kw", [
    # no grouping, additive mask, a wide input: the projections are slower than the
    # attention, so the q arrival (not the previous query) sets each token's start
    dict(heads=4, kv=4, mask="add", dm=64, T=4),
    dict(heads=4, kv=1, mask="fill", dm=16, T=6)])
def test_causal_variants_compile_end_to_end(tmp_path, capsys, kw):
    path = _export(tmp_path, "v", "qcdq", **kw)
    _check(_compile(capsys, path, tmp_path / "b", "icarus"))
