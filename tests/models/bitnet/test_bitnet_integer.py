"""The integer BitLinear path on the golden ternary MVU, and the RTL under cocotb on real codes."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import ternary_mvu as mvu
from models.bitnet.integer import (
    GoldenBitLinears,
    capture_projection,
    greedy_agreement,
    rtl_projection_case,
)
from models.bitnet.model import PROJECTIONS
from quant.brevitas_quantizers import per_token_codes, ternary_codes


def test_accumulators_equal_torch_integer_product(trained_micro):
    model, corpus, _ = trained_micro
    tokens = corpus.val[None, :32].astype(np.int64)
    for proj in PROJECTIONS:
        t = capture_projection(model, tokens, layer=1, proj=proj)
        lin = model.get_submodule(t.name)
        codes, _ = ternary_codes(lin.weight)
        assert np.array_equal(t.W, codes.numpy().astype(np.int64))
        assert t.X.dtype == np.int64 and t.X.min() >= -128 and t.X.max() <= 127
        # torch's own integer product of the same codes (exact in float64 at these sizes)
        ref = (torch.from_numpy(t.X).double() @ codes.double().T).numpy()
        assert np.array_equal(t.acc, ref.astype(np.int64)), proj
        assert t.acc.shape == (32, lin.out_features)


def test_golden_path_matches_fake_quant_model(trained_micro):
    model, corpus, _ = trained_micro
    win = corpus.val[:8 * 33].reshape(8, 33)[:, :32].astype(np.int64)
    r = greedy_agreement(model, win)
    assert r["positions"] == 256
    assert r["greedy_agreement"] >= 0.99
    # float32 summation order only — except where that moves a later activation across a
    # rounding tie (one int8 code flips): most logits agree to float32 precision
    assert r["median_abs_logit_diff"] < 1e-4


def test_golden_layer_output_bound(trained_micro):
    model, _, _ = trained_micro
    lin = model.layers[0].ffn.w2
    x = torch.randn(6, lin.in_features)
    with torch.no_grad():
        want = lin(x)
        with GoldenBitLinears(model):
            got = lin(x)
        q, step = per_token_codes(x)
        codes, scale = ternary_codes(lin.weight)
        terms = (q.abs() @ codes.abs().float().T) * step * scale   # Σ|terms| per output
    # float32 sum of `in_features` products: error ≤ in_features · 2⁻²³ · Σ|terms|
    assert ((got - want).abs() <= lin.in_features * 2**-23 * terms + 1e-12).all()
    assert "forward" not in lin.__dict__  # the class forward is back after the with block


def test_float_model_rejected(micro):
    from models.bitnet.model import BitNetModel

    with pytest.raises(HwsimError, match="ternary model"):
        GoldenBitLinears(BitNetModel(micro, False)).__enter__()
    with pytest.raises(HwsimError, match="unknown projection"):
        capture_projection(BitNetModel(micro, True), np.zeros((1, 4)), proj="wx")


@pytest.mark.cocotb
def test_rtl_ternary_mvu_on_real_activations(trained_micro, tmp_path):
    from hwsim.kernels import get_kernel
    from hwsim.sim.runner import simulate

    model, corpus, _ = trained_micro
    t = capture_projection(model, corpus.val[None, 40:46].astype(np.int64), layer=1, proj="w1")
    case = rtl_projection_case(t)
    M, S = case["arrays"]["mult"], case["arrays"]["shift"]
    golden = mvu.ternary_mvu(t.W, t.X, M, S)
    assert np.abs(golden).max() == 127            # the rescale uses the full int8 range
    kernel = get_kernel("ternary-mvu")
    p = kernel.params(lanes=16, rows=t.W.shape[0], cols=t.W.shape[1])
    rep = simulate(kernel, p, [case], tmp_path / "sim", sim="icarus")
    assert rep.passed, rep.failures
    c = rep.cases[0]
    assert c["bit_exact"] and c["cycles"] == c["expected_cycles"] == mvu.stream_cycles(p, 6)
