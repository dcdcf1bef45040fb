"""cocotb tier of the FFN output half on Icarus and Verilator; a real decode token of layer 0
of the trained BitNet-tiny (M = 128 cached tokens, K = 16) on Icarus, and on Verilator in the
slow tier. The real-token tests skip when the checkpoint (build/bitnet/tiny) is absent."""


import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("ffn-out")


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_bit_exact_and_cycles(tmp_path, sim):
    p = KERNEL.params(hidden=8, ffn=12, lanes=4, prod_width=36, e_width=161, res_width=24)
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
    ``prod`` row, FFN amax and ``x_attn``, the layer's FFN SubLN (``E`` of ~161 bits), ``w2``
    and scale through the ffn-out RTL: residual codes == golden == the integer model's
    ``x_out``, cycles == formula."""
    from hwsim.bench.vitallm import rtl_ffn_out
    from hwsim.golden.vitallm import ffn_out as fo
    im, tokens = tiny_decode_tokens
    r = rtl_ffn_out(im, tokens, 0, 16, tmp_path, sims=(sim,))
    assert (r["hidden"], r["ffn"], r["lanes"]) == (128, 352, 16)
    assert r["params"]["e_width"] > 150
    assert r["golden_equals_integer_model"]
    (run,) = r["runs"]
    print(f"ffn-out {sim}: {run['cycles']} cycles (formula {run['formula_cycles']}), build "
          f"{run['build_s']:.1f} s, {run['sim_cycles_per_s']:.0f} simulated cycles/s")
    assert run["passed"] and run["bit_exact"], run
    assert run["cycles"] == run["formula_cycles"] == \
        fo.latency_cycles(fo.FfnOutParams(**r["params"])), run
