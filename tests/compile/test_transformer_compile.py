"""Beyond the zoo: a pre-norm transformer encoder block no seed flow knows — int8 weights and
activations, 2-head softmax attention, LayerNorm, GELU MLP, two residuals — written in
Brevitas, exported to QONNX and QCDQ and compiled end to end: RTL == golden on Icarus and
Verilator, cycles == the composed formula, the deviation from onnxruntime within the bound
the lowering proves (reported by ``hwsim compile``)."""

import json

import numpy as np
import pytest
import torch
from brevitas import nn as qnn
from brevitas.quant import Int8ActPerTensorFloat, Int8WeightPerTensorFloat

from hwsim.cli import main
from quant.onnx import export_brevitas
from tests.compile.test_attention_compile import _Prob

T, D, HEADS = 4, 16, 2


def _q():
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat)


def _lin(i, o):
    return qnn.QuantLinear(i, o, bias=True, weight_quant=Int8WeightPerTensorFloat,
                           output_quant=Int8ActPerTensorFloat)


class EncoderBlock(torch.nn.Module):
    """``x1 = Q(x + O(attn(Q(LN1(x)))))``, ``y = Q(x1 + L2(Q(GELU(L1(Q(LN2(x1)))))))``."""

    def __init__(self):
        super().__init__()
        self.dh = D // HEADS
        self.inp, self.n1, self.n2 = _q(), _q(), _q()
        self.ln1, self.ln2 = torch.nn.LayerNorm(D), torch.nn.LayerNorm(D)
        self.q, self.k, self.v, self.o = (_lin(D, D) for _ in range(4))
        self.qp, self.qo, self.r1 = qnn.QuantIdentity(act_quant=_Prob), _q(), _q()
        self.fc1, self.fc2 = _lin(D, 2 * D), _lin(2 * D, D)
        self.qg, self.r2 = _q(), _q()

    def forward(self, x):
        x = self.inp(x)
        h = self.n1(self.ln1(x))

        def split(z):
            return z.reshape(T, HEADS, self.dh).transpose(0, 1)

        q, k, v = split(self.q(h)), split(self.k(h)), split(self.v(h))
        a = self.qp(torch.softmax(q @ k.transpose(-1, -2) / self.dh ** 0.5, dim=-1))
        x1 = self.r1(x + self.o(self.qo((a @ v).transpose(0, 1).reshape(T, D))))
        f = self.qg(torch.nn.functional.gelu(self.fc1(self.n2(self.ln2(x1)))))
        return self.r2(x1 + self.fc2(f))


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    torch.manual_seed(0)
    model = EncoderBlock()
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(T, D))
    model.eval()
    folder = tmp_path_factory.mktemp("encoder")
    return {fmt: export_brevitas(model, torch.randn(T, D), folder / f"enc_{fmt}.onnx", fmt)
            for fmt in ("qonnx", "qcdq")}


@pytest.mark.parametrize("fmt,sim", [("qonnx", "icarus"),
                                     pytest.param("qcdq", "verilator", marks=pytest.mark.slow)])
def test_encoder_block_compiles_to_rtl_equal_to_golden(encoder, tmp_path, capsys, fmt, sim):
    rc = main(["compile", str(encoder[fmt]), "--target", "xczu28dr", "-o", str(tmp_path / "b"),
               "--sim", sim, "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True and s["cycles_match"]
    kernels = {k["kernel"] for k in s["kernels"]}
    assert kernels == {"int8-mvu", "layernorm", "attention-head", "lut-act", "eltwise"}
    bound = max(max(st["bound_lsb"].values(), default=0) for st in s["lowering"]["steps"])
    assert s["max_error_lsb_vs_onnxruntime"] <= bound
    assert np.isfinite(s["latency_us"]) and s["fits"]
