"""cocotb tier of the norm unit on Icarus and Verilator; the slow test runs real residual rows
of layer 0 of the trained BitNet-tiny through its attention RMSNorm + quantizer."""

from pathlib import Path

import numpy as np
import pytest

from hwsim.kernels import get_kernel
from hwsim.kernels.norm_quant import golden_words, layer_case
from hwsim.sim import runner
from hwsim.sim.checker import one_cycle_late
from tests.sim._report_checks import assert_exact_with_stalls, assert_only_cycles_fail

pytestmark = pytest.mark.cocotb
KERNEL = get_kernel("norm-quant")


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_bit_exact_and_cycles(tmp_path, sim):
    p = KERNEL.params(n=16, lanes=4, gamma_frac=14, e_width=72)
    report = runner.simulate(KERNEL, p, KERNEL.cases(p, seed=3), tmp_path, sim=sim)
    assert report.passed, report.failures
    assert len(report.cases) == len(KERNEL.cases(p, seed=3)) == 9
    for c in report.cases:
        assert c["bit_exact"], c
        assert c["cycles_match"] or not c["timed"], c


#: lanes == n (one beat per vector), lanes == 1, n == lanes == 1
CORNERS = [(4, 4), (3, 1), (1, 1)]


@pytest.mark.parametrize("n, lanes", CORNERS)
def test_per_vector_e_under_backpressure(tmp_path, n, lanes):
    """Several vectors per case, each with its own E and shift, back to back, with and without
    idle input and output stalls, at every parameter corner."""
    p = KERNEL.params(n=n, lanes=lanes, gamma_frac=14, e_width=72)
    cases = [c for c in KERNEL.cases(p, seed=1) if c["name"].startswith("per_vector")]
    assert all(np.asarray(c["arrays"]["e"]).ndim == 2 for c in cases)
    report = runner.simulate(KERNEL, p, cases, tmp_path, sim="icarus")
    assert_exact_with_stalls(report)


def test_checker_catches_a_slower_rtl(tmp_path):
    """The norm unit's cycle check can fail: the same RTL one cycle slower keeps every code
    and fails every timed case."""
    p = KERNEL.params(n=4, lanes=2, gamma_frac=14, e_width=72)
    report = runner.simulate(one_cycle_late(KERNEL), p, KERNEL.cases(p, quick=True), tmp_path,
                             sim="icarus")
    assert_only_cycles_fail(report)


@pytest.mark.slow
def test_trained_bitnet_tiny_layer0_rows(tmp_path):
    """Layer 0 of the trained BitNet-tiny (build/bitnet/tiny, or trained here briefly): the
    residual rows of 8 real tokens through the attention RMSNorm + quantizer on Icarus and
    Verilator: codes and amax == golden == the integer model's own int8 activations, cycles ==
    formula."""
    import torch

    from models.bitnet.checkpoint import load_checkpoint
    from models.bitnet.config import get_config
    from models.bitnet.data import stdlib_corpus
    from models.bitnet.integer_model import build_integer_model, integer_forward
    from models.bitnet.train import TrainSettings, train_bitnet

    torch.set_num_threads(1)
    corpus = stdlib_corpus()
    ck = Path("build/bitnet/tiny")
    if not (ck / "ternary" / "meta.json").exists():
        ck = tmp_path / "ck"
        train_bitnet(get_config("tiny"), corpus, TrainSettings(steps=100), ck, progress=False)
    model, _ = load_checkpoint(ck / "ternary")
    im = build_integer_model(model, np.stack([corpus.train[i * 977:i * 977 + 128]
                                              for i in range(4)]).astype(np.int64))
    cap: dict = {}
    integer_forward(im, corpus.val[2000:2064].astype(np.int64), capture=cap)
    x = cap[0]["x_in"][-8:]
    p, case, (want_a, want_amax) = layer_case(im.layers[0].attn_norm, x, "tiny_layer0")
    golden = golden_words(p, case["arrays"])
    assert np.array_equal(golden, np.concatenate([want_a.ravel(), want_amax]))
    for sim in ("icarus", "verilator"):
        report = runner.simulate(KERNEL, p, [case], tmp_path / sim, sim=sim)
        assert report.passed, report.failures
        (c,) = report.cases
        assert c["bit_exact"] and c["timed"] and c["cycles_match"], c

