"""Beyond the zoo: a pre-norm transformer encoder block no seed flow knows — int8 weights and
activations, 2-head softmax attention, LayerNorm, GELU MLP, two residuals — written in
Brevitas, exported to QONNX and QCDQ and compiled end to end: RTL == golden on Icarus and
Verilator, cycles == the composed formula, the deviation from onnxruntime within the bound
the lowering proves (reported by ``hwsim compile``)."""

import json

import numpy as np
import pytest
import torch

from hwsim.cli import main
from hwsim.compile.examples import D, EncoderBlock, T
from quant.onnx import export_brevitas


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
