"""cocotb tier of the FFN input half on Icarus and Verilator, on the kernel's stimulus and on
a real decode token of layer 0 of the trained BitNet-tiny (M = 128 cached tokens, K = 16;
skipped without the checkpoint in build/bitnet/tiny)."""


import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("ffn-in")


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_bit_exact_and_cycles(tmp_path, sim):
    p = KERNEL.params(hidden=8, ffn=5, lanes=4, res_width=28)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, seed=4), tmp_path, sim=sim)
    assert report.passed, report.failures
    assert len(report.cases) == 4
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_trained_bitnet_tiny_layer0_decode_token(tmp_path, sim, tiny_decode_tokens):
    """Layer 0 of the trained BitNet-tiny, the decode step of the 128th token of
    ``corpus.val[1000:1128]`` with sparse attention K = 16 in every layer: the token's
    ``x_attn`` row, the FFN RMSNorm, w1 and w3 through the ffn-in RTL: prod codes, amax and
    residual codes == golden == the integer model's ``prod`` row and FFN amax, cycles ==
    formula; the row's peak |prod| fits the kernel's prod width."""
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
