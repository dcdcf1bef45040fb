"""A float activation between a layer and its quantizer (``QuantLinear`` without an output
quantizer → SiLU / GELU / Sigmoid / LeakyReLU → ``QuantIdentity``) lowers to ``IntMatMul →
Requant(int32) → IntThreshold`` within its bound, and compiles end to end (int8-mvu's 32-bit
accumulators into the threshold unit): RTL == golden, cycles == the composed formula, ≤ 1 LSB
from onnxruntime on the original file."""

import json

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat, Uint8ActPerTensorFloat

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.lower import lower
from quant.onnx import export_brevitas

ACTS = {"silu": torch.nn.SiLU, "gelu": torch.nn.GELU, "sigmoid": torch.nn.Sigmoid,
        "leaky": lambda: torch.nn.LeakyReLU(0.1)}


class _Act(torch.nn.Module):
    """QuantIdentity → QuantLinear(8 → 6, bias, no output quantizer) → F → QuantIdentity →
    QuantLinear(6 → 3, output quantizer); uint8 codes after the sigmoid."""

    def __init__(self, act):
        super().__init__()
        self.i = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.l = qnn.QuantLinear(8, 6, bias=True, weight_quant=Int8WeightPerTensorFloat)
        self.f = ACTS[act]()
        self.q = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat if act == "sigmoid"
                                   else Int8ActPerTensorFloat, return_quant_tensor=True)
        self.o = qnn.QuantLinear(6, 3, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                 output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.o(self.q(self.f(self.l(self.i(x)))))


class _ConvAct(torch.nn.Module):
    """QuantIdentity → QuantConv2d(3 → 4, 3×3) → SiLU → QuantIdentity → QuantConv2d(4 → 2)."""

    def __init__(self):
        super().__init__()
        self.i = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.c = qnn.QuantConv2d(3, 4, 3, padding=1, bias=True,
                                 weight_quant=Int8WeightPerTensorFloat)
        self.f = torch.nn.SiLU()
        self.q = qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, return_quant_tensor=True)
        self.o = qnn.QuantConv2d(4, 2, 1, bias=True, weight_quant=Int8WeightPerTensorFloat,
                                 output_quant=Int8ActPerTensorFloat)

    def forward(self, x):
        return self.o(self.q(self.f(self.c(self.i(x)))))


SHAPES = {**{a: (1, 8) for a in ACTS}, "conv": (1, 3, 5, 5)}


def _calibrated(name):
    torch.manual_seed(0)
    model = _ConvAct() if name == "conv" else _Act(name)
    model.train()
    with torch.no_grad():
        for _ in range(4):
            model(torch.randn(8, *SHAPES[name][1:]) * 2)
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("thresh")
    out = {}
    for name in SHAPES:
        m = _calibrated(name)
        for fmt in ("qonnx", "qcdq"):
            out[name, fmt] = export_brevitas(m, torch.randn(*SHAPES[name]),
                                             folder / f"{name}_{fmt}.onnx", fmt)
    return out


@pytest.mark.parametrize("name,fmt", [("silu", "qonnx"), ("silu", "qcdq"), ("gelu", "qonnx"),
                                      ("gelu", "qcdq"), ("sigmoid", "qcdq"), ("leaky", "qonnx"),
                                      ("conv", "qonnx")])
def test_lowering_within_the_bound(models, name, fmt):
    """The activation becomes one IntThreshold on the layer's int32 accumulators; on many
    random inputs its codes stay within the step's bound (≤ 1 LSB) of the float graph."""
    rng = np.random.default_rng(1)
    graph = frontend.load(models[name, fmt])
    gin = graph.graph.input[0].name
    inputs = [{gin: (rng.standard_normal(SHAPES[name]) * 2).astype(np.float32)}
              for _ in range(6)]
    low, rep = lower(graph, verify_inputs=inputs)
    ops = [n.op_type for n in low.graph.node]
    assert ops.count("IntThreshold") == 1
    assert not {"Sigmoid", "Gelu", "LeakyRelu", "Mul", "Tanh", "Erf"} & set(ops)
    thr = next(n for n in low.graph.node if n.op_type == "IntThreshold")
    rq = next(n for n in low.graph.node if n.output[0] == thr.input[0])
    assert rq.op_type == "Requant"
    assert {a.name: a.i for a in rq.attribute if a.name in ("width", "multiplier", "shift")} \
        == {"width": 32, "multiplier": 1, "shift": 0}
    step = rep.step("LowerThresholdActivations")
    assert step.bound_lsb == {thr.output[0]: 1}
    assert step.max_lsb[thr.output[0]] <= 1
    signed = next(a.i for a in thr.attribute if a.name == "out_signed")
    assert signed == (name != "sigmoid")
    bps = next(list(a.ints) for a in thr.attribute if a.name == "breakpoints")
    assert bps == sorted(set(bps)) and 1 <= len(bps) <= 300


def _compile(capsys, *args) -> tuple[int, dict | None, str]:
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


@pytest.mark.parametrize("name,fmt", [("silu", "qonnx"), ("gelu", "qcdq"),
                                      pytest.param("sigmoid", "qonnx", marks=pytest.mark.slow),
                                      pytest.param("leaky", "qcdq", marks=pytest.mark.slow),
                                      pytest.param("conv", "qonnx", marks=pytest.mark.slow)])
def test_compile_end_to_end(models, tmp_path, capsys, name, fmt):
    out = tmp_path / "build"
    rc, s, err = _compile(capsys, models[name, fmt], "--target", "xczu28dr", "-o", out,
                          "--sim", "icarus")
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    assert s["max_error_lsb_vs_onnxruntime"] <= 1
    kernels = [k["kernel"] for k in s["kernels"]]
    assert "threshold" in kernels and kernels.count("int8-mvu") == 2
    assert s["fits"] is True and s["luts"] > 0


def test_per_channel_weight_scales_are_refused_by_name(tmp_path):
    """One table per tensor: a per-channel weight scale before a float activation is refused
    with one line naming the layer."""
    from brevitas.quant import Int8WeightPerChannelFloat

    from hwsim.errors import HwsimError
    model = _calibrated("silu")
    model.l = qnn.QuantLinear(8, 6, bias=True, weight_quant=Int8WeightPerChannelFloat)
    model.train()
    with torch.no_grad():
        model(torch.randn(8, 8))
    model.eval()
    path = export_brevitas(model, torch.randn(1, 8), tmp_path / "pc.onnx", "qonnx")
    with pytest.raises(HwsimError, match="per-channel weight scales"):
        lower(frontend.load(path))
