"""Brevitas' own attention module, ``brevitas.nn.QuantMultiheadAttention`` (embed 16, 2 heads,
4 tokens, self-attention, batch first), exported to QONNX and QCDQ with Brevitas' default
quantizers (projections without an output quantizer: head split, ``1/√d`` and then
``q_scaled_quant`` / ``k_transposed_quant`` / ``v_quant``) and with quantized in and out
projections, lowered (errors within the proven bounds) and compiled end to end: RTL == golden
on Icarus, cycles == the composed formula, the deviation from onnxruntime within the bound."""

import json

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat

from hwsim.cli import main
from hwsim.compile import dialect, frontend
from hwsim.compile.lower import lower
from hwsim.errors import HwsimError
from quant.onnx import export_brevitas

E, H, T = 16, 2, 4
FORMS = {"default": {},
         "quantized": {"in_proj_output_quant": Int8ActPerTensorFloat,
                       "out_proj_output_quant": Int8ActPerTensorFloat}}


class Mha(torch.nn.Module):
    """QuantIdentity → QuantMultiheadAttention (self-attention) → QuantIdentity."""

    def __init__(self, packed: bool = False, **kw):
        super().__init__()
        self.i = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.a = qnn.QuantMultiheadAttention(E, H, batch_first=True, packed_in_proj=packed,
                                             **kw)
        self.q = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        x = self.i(x)
        return self.q(self.a(x, x, x, need_weights=False)[0])


def _export(folder, name, fmt, **kw):
    torch.manual_seed(0)
    model = Mha(**kw)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, T, E))
    model.eval()
    return export_brevitas(model, torch.randn(1, T, E), folder / f"{name}_{fmt}.onnx", fmt)


@pytest.fixture(scope="module")
def mha(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mha")
    return {(form, fmt): _export(folder, form, fmt, **kw)
            for form, kw in FORMS.items() for fmt in ("qonnx", "qcdq")}


@pytest.mark.parametrize("form", list(FORMS))
@pytest.mark.parametrize("fmt", ["qonnx", pytest.param("qcdq", marks=pytest.mark.slow)])
def test_mha_lowers_within_bounds(mha, form, fmt):
    rng = np.random.default_rng(1)
    graph = frontend.load(mha[form, fmt])
    name = graph.graph.input[0].name
    inputs = [{name: rng.standard_normal((1, T, E)).astype(np.float32)} for _ in range(3)]
    lowered, rep = lower(graph, verify_inputs=inputs)
    ops = [n.op_type for n in lowered.graph.node if n.domain == dialect.DOMAIN]
    # q, k, v and out projections; one attention over the 4 tokens with both heads
    assert ops.count("IntMatMul") == 4 and ops.count("Requant") == 4
    (att,) = [n for n in lowered.graph.node if n.op_type in ("IntAttention",
                                                             "IntWindowAttention")]
    attrs = {a.name: a.i for a in att.attribute if a.name in ("heads", "window", "causal")}
    assert attrs["heads"] == H and attrs.get("window", T) == T and attrs.get("causal", 0) == 0
    # the head split is data movement: moved behind the quantizers without changing a code
    assert rep.step("SinkHeadMoves").equal and rep.step("TableRequantizers").equal
    fold = rep.step("FoldProjectionScales")
    if form == "default":  # q / √d before q_scaled_quant: folded into the q projection
        assert len(fold.bound_lsb) == 1
    else:  # the in-projection's quantizer comes first: the scaling is a requantizer table
        assert fold.bound_lsb == {} and "LutAct" in ops
    for step in rep.steps:
        for tensor, dev in step.max_lsb.items():
            assert dev <= step.bound_lsb[tensor]
    assert rep.step("LowerAttention").bound_lsb


def _compile(capsys, model, out):
    rc = main(["compile", str(model), "--target", "xczu28dr", "-o", str(out),
               "--sim", "icarus", "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    return json.loads(cap.out)


@pytest.mark.parametrize("form,fmt", [("default", "qonnx"),
                                      pytest.param("quantized", "qcdq", marks=pytest.mark.slow),
                                      pytest.param("default", "qcdq", marks=pytest.mark.slow),
                                      pytest.param("quantized", "qonnx",
                                                   marks=pytest.mark.slow)])
def test_mha_compiles_to_rtl_equal_to_golden(mha, tmp_path, capsys, form, fmt):
    s = _compile(capsys, mha[form, fmt], tmp_path / "b")
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    kernels = {k["kernel"] for k in s["kernels"]}
    assert kernels == {"int8-mvu", "attention-head", "lut-act"}
    bound = max(max(st["bound_lsb"].values(), default=0) for st in s["lowering"]["steps"])
    assert s["max_error_lsb_vs_onnxruntime"] <= bound
    assert s["fits"] is True and s["latency_us"] > 0


@pytest.mark.slow
def test_packed_in_projection_is_named(tmp_path):
    model = _export(tmp_path, "packed", "qcdq", packed=True)
    with pytest.raises(HwsimError, match=r"in_proj/MatMul.*Slice"):
        lower(frontend.load(model))
