"""cocotb tier of one whole decoder layer (attn-layer → repacker → ffn-in → ffn-out) on Icarus
and Verilator, on the kernel's stimulus and on a real decode token of layer 0 of the trained
BitNet-tiny (M = 128 cached tokens, K = 16; skipped without the checkpoint in
build/bitnet/tiny)."""


import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("decoder-layer")


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_bit_exact_and_cycles(tmp_path, sim):
    p = KERNEL.params(heads=2, kv_heads=1, head_dim=4, ffn=8, tokens=5, keep=2, lanes=4,
                      exp_lanes=2, res_width=28)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, seed=4), tmp_path, sim=sim)
    assert report.passed, report.failures
    assert [(c["name"], c["timed"]) for c in report.cases] == [
        ("random", True), ("narrow_row", True), ("w2_saturates", True),
        ("idle_backpressure", False)]
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_trained_bitnet_tiny_layer0_decode_token(tmp_path, sim, tiny_decode_tokens):
    """Layer 0 of the trained BitNet-tiny, the decode step of the 128th token of
    ``corpus.val[1000:1128]`` with sparse attention K = 16 in every layer: the token's residual
    row, the layer's weights, norms, scales and the cache of the 127 earlier tokens through the
    decoder-layer RTL: output residual codes == golden == the integer model's ``x_out``,
    cycles == formula."""
    from hwsim.bench.vitallm import rtl_decoder_layer
    from hwsim.golden.vitallm import decoder_layer as dl
    im, tokens = tiny_decode_tokens
    r = rtl_decoder_layer(im, tokens, 0, 16, tmp_path,
                          sims=(sim,))
    assert (r["hidden"], r["ffn"], r["lanes"]) == (128, 352, 16)
    assert r["golden_equals_integer_model"]
    (run,) = r["runs"]
    assert run["passed"] and run["bit_exact"], run
    assert run["cycles"] == run["formula_cycles"] == \
        dl.latency_cycles(dl.DecoderLayerParams(**r["params"])) == 9578, run
    print(f"decoder-layer {sim}: {run['cycles']} cycles, build {run['build_s']:.1f} s, "
          f"{run['sim_cycles']} simulated cycles in {run['test_s']:.1f} s "
          f"({run['sim_cycles_per_s']:.0f} cycles/s)")
