"""Fast tier: the Amaranth NormQuant (RMSNorm with integer ε + activation quantizer) against the
golden, on the kernel's stimulus and on real rows of a BitNet model."""

import numpy as np
import pytest

from hwsim.errors import HwsimError
from hwsim.golden.vitallm import norm_quant as g
from hwsim.kernels import get_kernel
from hwsim.kernels.norm_quant import e_value, golden_words, in_words, layer_case, out_words, side_values
from hwsim.sim.amaranth_bench import Sink, Source, run_streams
from rtl.vitallm.norm_quant import NormQuant

KERNEL = get_kernel("norm-quant")


def rtl_norm_quant(p, arrays, idle=0.0, stall=0.0, seed=0):
    """``(a (rows, n), amax (rows,), cycles, every beat's amax equals its vector's)``."""
    dut = NormQuant(p)
    X = np.atleast_2d(arrays["X"])
    side = [[(getattr(dut, name), v) for name, v in beat] for beat in side_values(p, arrays)]
    src = Source(dut.inp, in_words(X, arrays["g"], arrays["shift"], p), idle=idle, side=side)
    snk = Sink(dut.y, X.shape[0] * p.chunks, stall=stall)
    run_streams(dut, [src], [snk], seed=seed)
    a, amax = out_words(snk.values, p)
    per_vec = amax.reshape(X.shape[0], p.chunks)
    return (a.reshape(X.shape), per_vec[:, 0], snk.cycles[-1] - src.cycles[0] + 1,
            bool(np.all(per_vec == per_vec[:, :1])))


def check(p, arrays, idle=0.0, stall=0.0, seed=0, name=""):
    a, amax, cycles, same = rtl_norm_quant(p, arrays, idle, stall, seed)
    want = golden_words(p, arrays)
    assert np.array_equal(a.ravel(), want[:a.size]), name
    assert np.array_equal(amax, want[a.size:]) and same, name
    if idle == 0 and stall == 0:
        assert cycles == g.stream_cycles(p, a.shape[0]), name


@pytest.mark.parametrize("n, lanes, gamma_frac", [(8, 8, 16), (24, 4, 12)])
def test_bit_exact_and_cycles(n, lanes, gamma_frac):
    p = g.NormQuantParams(n=n, lanes=lanes, gamma_frac=gamma_frac, e_width=72)
    for case in KERNEL.cases(p, seed=n):
        check(p, case["arrays"], case.get("idle", 0.0), case.get("stall", 0.0),
              case.get("seed", 0), case["name"])


def test_real_rows_equal_the_integer_model(micro_model):
    """The attention RMSNorm + quantizer of layer 0 of a random micro BitNet, on the layer's
    real residual rows: RTL == golden == the integer model's own int8 activations."""
    im, x = micro_model
    p, case, (want_a, want_amax) = layer_case(im.layers[0].attn_norm, x)
    a = case["arrays"]
    ga, gm = g.norm_quant(a["X"], a["g"], e_value(a["e"]), a["shift"], p)
    assert np.array_equal(ga, want_a) and np.array_equal(gm, want_amax)
    check(p, a, name="real rows")
    with pytest.raises(HwsimError, match="eps_power 0"):
        layer_case(im.layers[0].ffn_sub, x)


@pytest.fixture(scope="module")
def micro_model():
    import torch

    from models.bitnet.config import BitNetConfig
    from models.bitnet.integer_model import build_integer_model, integer_forward
    from models.bitnet.model import BitNetModel

    cfg = BitNetConfig("micro", hidden=32, ffn=64, layers=1, heads=4, kv_heads=2, vocab=256,
                       max_seq=16, source="tests")
    torch.manual_seed(1)
    torch.set_num_threads(1)
    model = BitNetModel(cfg, quantized=True).eval()
    rng = np.random.default_rng(1)
    im = build_integer_model(model, rng.integers(0, 256, (4, 16)).astype(np.int64))
    cap = {}
    integer_forward(im, rng.integers(0, 256, 3).astype(np.int64), capture=cap)
    return im, cap[0]["x_in"]


def test_params_and_golden_reject_bad_input():
    with pytest.raises(HwsimError, match="lanes"):
        g.NormQuantParams(n=24, lanes=16)
    with pytest.raises(HwsimError, match="shift_width"):
        g.NormQuantParams(shift_width=0)
    p = g.NormQuantParams(n=8, lanes=8, e_width=8)
    X = np.zeros((1, 8), dtype=np.int64)
    with pytest.raises(HwsimError, match="E must be"):
        g.norm_quant(X, np.zeros(8, int), 256, [0], p)
    with pytest.raises(HwsimError, match="shifts must be"):
        g.norm_quant(X, np.zeros(8, int), 1, [32], p)
    with pytest.raises(HwsimError, match="one shift per row"):
        g.norm_quant(X, np.zeros(8, int), 1, [0, 1], p)


#: lanes == n (one beat per vector), lanes == 1, n == lanes == 1
CORNERS = [(4, 4), (3, 1), (1, 1)]


@pytest.mark.parametrize("n, lanes", CORNERS)
def test_per_vector_e_under_backpressure(n, lanes):
    """Back-to-back vectors, each with its own E and shift, with and without idle input and
    output stalls, at every parameter corner (the kernel's ``per_vector*`` cases)."""
    p = g.NormQuantParams(n=n, lanes=lanes, gamma_frac=14, e_width=72)
    for case in KERNEL.cases(p, seed=n):
        if case["name"].startswith("per_vector"):
            a = case["arrays"]
            assert len(set(e_value(e) for e in a["e"])) == len(a["X"])
            one_e = golden_words(p, {**a, "e": a["e"][1]})
            assert not np.array_equal(golden_words(p, a), one_e)  # E shows in the result
            check(p, a, case.get("idle", 0.0), case.get("stall", 0.0), case.get("seed", 0),
                  case["name"])
