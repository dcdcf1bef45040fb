"""The layer kernels on real tokens: layer 0 of the briefly trained BitNet-tiny
(:func:`tests.conftest.bitnet_tiny`, built once per session) through the RTL on Icarus and
Verilator. The integer model's own values, the golden function and the RTL agree (``==``),
and the cycles are the formula's.

The decode-token tests replay the 128th token of ``corpus.val[1000:1128]`` with sparse
attention K = 16 in every layer (:func:`tests.sim.conftest.tiny_decode_tokens`). ffn-in,
ffn-out and the decoder layer run on Icarus in the default tier; the rest is slow.
"""

import numpy as np
import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb

SIMS = ["icarus", pytest.param("verilator", marks=pytest.mark.slow)]


def _tiny_model(bitnet_tiny, calib_starts):
    """The integer model of the checkpoint, static scales calibrated on 128-byte training
    windows starting at ``calib_starts``; and the corpus."""
    import torch

    from models.bitnet.checkpoint import load_checkpoint
    from models.bitnet.data import stdlib_corpus
    from models.bitnet.integer_model import build_integer_model

    torch.set_num_threads(1)
    corpus = stdlib_corpus()
    model, _ = load_checkpoint(bitnet_tiny / "ternary")
    im = build_integer_model(model, np.stack([corpus.train[s:s + 128]
                                              for s in calib_starts]).astype(np.int64))
    return im, corpus


@pytest.mark.parametrize("sim", SIMS)
def test_ffn_in_layer0_decode_token(tmp_path, sim, tiny_decode_tokens):
    """The token's ``x_attn`` row, the FFN RMSNorm, w1 and w3 through the ffn-in RTL: prod
    codes, amax and residual codes == golden == the integer model's ``prod`` row and FFN amax,
    cycles == formula; the row's peak |prod| fits the kernel's prod width."""
    from hwsim.bench.vitallm import rtl_ffn_in
    from hwsim.golden.vitallm import ffn_in as fi
    im, tokens = tiny_decode_tokens
    r = rtl_ffn_in(im, tokens, 0, 16, tmp_path, sims=(sim,))
    assert (r["hidden"], r["ffn"], r["lanes"]) == (128, 352, 16)
    assert r["golden_equals_integer_model"]
    assert r["prod_peak_bits"] < r["prod_width"]
    (run,) = r["runs"]
    assert run["passed"] and run["bit_exact"], run
    assert run["cycles"] == run["formula_cycles"] == \
        fi.latency_cycles(fi.FfnInParams(**r["params"])) == 3016, run


@pytest.mark.parametrize("sim", SIMS)
def test_ffn_out_layer0_decode_token(tmp_path, sim, tiny_decode_tokens):
    """The token's ``prod`` row, FFN amax and ``x_attn``, the layer's FFN SubLN (``E`` of
    ~161 bits), ``w2`` and scale through the ffn-out RTL: residual codes == golden == the
    integer model's ``x_out``, cycles == formula."""
    from hwsim.bench.vitallm import rtl_ffn_out
    from hwsim.golden.vitallm import ffn_out as fo
    im, tokens = tiny_decode_tokens
    r = rtl_ffn_out(im, tokens, 0, 16, tmp_path, sims=(sim,))
    assert (r["hidden"], r["ffn"], r["lanes"]) == (128, 352, 16)
    assert r["params"]["e_width"] > 150
    assert r["golden_equals_integer_model"]
    (run,) = r["runs"]
    assert run["passed"] and run["bit_exact"], run
    assert run["cycles"] == run["formula_cycles"] == \
        fo.latency_cycles(fo.FfnOutParams(**r["params"])), run


@pytest.mark.slow  # two minutes; the layer RTL on random codes: tests/rtl/test_decoder_layer.py
@pytest.mark.parametrize("sim", SIMS)
def test_decoder_layer_layer0_decode_token(tmp_path, sim, tiny_decode_tokens):
    """The token's residual row, the layer's weights, norms, scales and the cache of the 127
    earlier tokens through the decoder-layer RTL: output residual codes == golden == the
    integer model's ``x_out``, cycles == formula."""
    from hwsim.bench.vitallm import rtl_decoder_layer
    from hwsim.golden.vitallm import decoder_layer as dl
    im, tokens = tiny_decode_tokens
    r = rtl_decoder_layer(im, tokens, 0, 16, tmp_path, sims=(sim,))
    assert (r["hidden"], r["ffn"], r["lanes"]) == (128, 352, 16)
    assert r["golden_equals_integer_model"]
    (run,) = r["runs"]
    assert run["passed"] and run["bit_exact"], run
    assert run["cycles"] == run["formula_cycles"] == \
        dl.latency_cycles(dl.DecoderLayerParams(**r["params"])) == 9578, run


@pytest.mark.slow
def test_attn_layer_layer0_decode_token(tmp_path, tiny_decode_tokens):
    """The token's residual row, the layer's weights, norms, scales and the cache of the 127
    earlier tokens through the attn-layer RTL on Icarus and Verilator: residual codes ==
    golden == the integer model's ``x_attn``, cycles == formula."""
    from hwsim.bench.vitallm import rtl_attn_layer
    from hwsim.golden.vitallm import attn_layer as al
    im, tokens = tiny_decode_tokens
    r = rtl_attn_layer(im, tokens, 0, 16, tmp_path)
    assert (r["hidden"], r["lanes"]) == (128, 16)
    assert r["golden_equals_integer_model"]
    assert [run["sim"] for run in r["runs"]] == ["icarus", "verilator"]
    for run in r["runs"]:
        assert run["passed"] and run["bit_exact"], run
        assert run["cycles"] == run["formula_cycles"] == \
            al.latency_cycles(al.AttnLayerParams(**r["params"])), run


@pytest.mark.slow
def test_attn_out_layer0_decode_token(tmp_path, tiny_decode_tokens):
    """The heads' outputs, the token's residual row and the layer's SubLN, wo and scales
    through the attn-out RTL on Icarus and Verilator: residual codes == golden == the integer
    model's residual row after the attention block, cycles == formula."""
    from hwsim.bench.vitallm import rtl_attn_out
    im, tokens = tiny_decode_tokens
    r = rtl_attn_out(im, tokens, 0, 16, tmp_path)
    assert (r["hidden"], r["lanes"]) == (128, 16)
    assert r["golden_equals_integer_model"]
    assert [run["sim"] for run in r["runs"]] == ["icarus", "verilator"]
    for run in r["runs"]:
        assert run["passed"] and run["bit_exact"], run
        assert run["cycles"] == run["formula_cycles"] == 1222, run


@pytest.mark.slow
def test_decode_step_layer0_decode_token(tmp_path, tiny_decode_tokens):
    """The decode-step RTL on Icarus and Verilator == the integer model, cycles == formula."""
    from hwsim.bench.vitallm import rtl_decode_step
    im, tokens = tiny_decode_tokens
    r = rtl_decode_step(im, tokens, 0, 16, tmp_path)
    assert r["golden_equals_integer_model"]
    for run in r["runs"]:
        assert run["passed"] and run["bit_exact"], run
        assert run["cycles"] == run["formula_cycles"], run


@pytest.mark.slow
def test_norm_quant_layer0_rows(tmp_path, bitnet_tiny):
    """The residual rows of 8 real tokens through the attention RMSNorm + quantizer on Icarus
    and Verilator: codes and amax == golden == the integer model's own int8 activations,
    cycles == formula."""
    from hwsim.kernels.norm_quant import golden_words, layer_case
    from models.bitnet.integer_model import integer_forward

    im, corpus = _tiny_model(bitnet_tiny, [i * 977 for i in range(4)])
    cap: dict = {}
    integer_forward(im, corpus.val[2000:2064].astype(np.int64), capture=cap)
    x = cap[0]["x_in"][-8:]
    p, case, (want_a, want_amax) = layer_case(im.layers[0].attn_norm, x, "tiny_layer0")
    golden = golden_words(p, case["arrays"])
    assert np.array_equal(golden, np.concatenate([want_a.ravel(), want_amax]))
    kernel = get_kernel("norm-quant")
    for sim in ("icarus", "verilator"):
        report = runner.simulate(kernel, p, [case], tmp_path / sim, sim=sim)
        assert report.passed, report.failures
        (c,) = report.cases
        assert c["bit_exact"] and c["timed"] and c["cycles_match"], c
