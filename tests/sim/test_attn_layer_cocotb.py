"""cocotb tier of the attention half of a decoder layer on Icarus and Verilator; the slow test
runs a real decode token of layer 0 of the trained BitNet-tiny (M = 128 cached tokens,
K = 16)."""

from pathlib import Path

import numpy as np
import pytest

from hwsim.kernels import get_kernel
from hwsim.sim import runner

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("attn-layer")


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_bit_exact_and_cycles(tmp_path, sim):
    p = KERNEL.params(heads=2, kv_heads=1, head_dim=4, tokens=5, keep=2, lanes=4, exp_lanes=2,
                      res_width=28)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, seed=4, quick=True), tmp_path, sim=sim)
    assert report.passed, report.failures
    assert len(report.cases) == 2
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c


@pytest.mark.slow
def test_trained_bitnet_tiny_layer0_decode_token(tmp_path):
    """Layer 0 of the trained BitNet-tiny (build/bitnet/tiny, or trained here briefly), the
    decode step of the 128th token with sparse attention K = 16: the token's residual row, the
    layer's weights, norms, scales and the cache of the 127 earlier tokens through the
    attn-layer RTL on Icarus and Verilator: residual codes == golden == the integer model's
    x_attn, cycles == formula."""
    import torch

    from hwsim.bench.vitallm import rtl_attn_layer
    from hwsim.golden.vitallm import attn_layer as al
    from models.bitnet.checkpoint import load_checkpoint
    from models.bitnet.config import get_config
    from models.bitnet.data import stdlib_corpus
    from models.bitnet.integer_model import build_integer_model
    from models.bitnet.train import TrainSettings, train_bitnet

    torch.set_num_threads(1)
    corpus = stdlib_corpus()
    ck = Path("build/bitnet/tiny")
    if not (ck / "ternary" / "meta.json").exists():
        ck = tmp_path / "ck"
        train_bitnet(get_config("tiny"), corpus, TrainSettings(steps=100), ck, progress=False)
    model, _ = load_checkpoint(ck / "ternary")
    rng = np.random.default_rng(0)
    starts = rng.integers(0, corpus.train.size - 129, 8)
    im = build_integer_model(model, np.stack([corpus.train[s:s + 128]
                                              for s in starts]).astype(np.int64))
    r = rtl_attn_layer(im, corpus.val[1000:1128].astype(np.int64), 0, 16, tmp_path)
    assert (r["hidden"], r["lanes"]) == (128, 16)
    assert r["golden_equals_integer_model"]
    assert [run["sim"] for run in r["runs"]] == ["icarus", "verilator"]
    for run in r["runs"]:
        assert run["passed"] and run["bit_exact"], run
        assert run["cycles"] == run["formula_cycles"] == \
            al.latency_cycles(al.AttnLayerParams(**r["params"])), run
