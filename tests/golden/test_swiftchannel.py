"""Integer SwiftChannel golden == the Brevitas int8 model, code for code."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden.swiftchannel import network as gold
from models.channels import Geometry
from models.swiftchannel.model import SwiftChannelNet, reparameterize
from models.swiftchannel.qat import QuantSwiftChannel, int_model
from models.swiftchannel.train import config_for, make_set, train

GEOM = Geometry(bs_ant=8, ue_ant=2, subcarriers=32, space_comp=1)


@pytest.fixture(scope="module")
def qat_model():
    torch.manual_seed(0)
    data = make_set(GEOM, 96, seed=5)
    net = SwiftChannelNet(config_for(GEOM))
    train(net, data, epochs=1, lr=3e-3, batch=16)
    q = QuantSwiftChannel.from_float(reparameterize(net))
    train(q, data, epochs=1, lr=1e-3, batch=16)
    X = data.inputs(np.random.default_rng(9))[:6]
    return q, X


def test_golden_equals_qat_codes(qat_model):
    q, X = qat_model
    x = torch.from_numpy(X)
    m = int_model(q, x)
    want = q.output_codes(x)
    got = gold.swiftchannel_int(gold.quantize_input(X, m), m)
    assert got.shape == want.shape == (6, 2, 32, 16)
    assert len(np.unique(want)) > 20  # a real spread of codes, not a saturated constant
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} codes differ, first at {bad[:5]}"
    # the scales are real, not powers of two, and the multipliers are 16-bit
    assert not float(np.log2(m.s_out)).is_integer()
    assert all(1 << 15 <= v < 1 << 16 for v in m.head.mult)
    # in eval mode the QAT model's float output is the dequantized golden output
    np.testing.assert_allclose(q(x).detach().numpy(), gold.dequantize_output(got, m), rtol=1e-6)


def test_qat_gradients_reach_weights_and_scales(qat_model):
    q, X = qat_model
    q.train()
    q.zero_grad()
    q(torch.from_numpy(X[:2])).pow(2).mean().backward()
    assert float(q.head.weight.grad.abs().sum()) > 0
    assert float(q.blocks[0].c1.weight.grad.abs().sum()) > 0
    q.eval()


def test_lut_table_and_index():
    lut = gold.sigmoid_lut()
    assert lut.shape == (512,) and lut.min() >= -128 and lut.max() <= 127
    assert np.all(np.diff(lut) >= 0) and lut[255] <= 0 <= lut[256]
    assert np.array_equal(lut, -lut[::-1])  # odd symmetry of sigmoid − 0.5 about the centre
    # scale 1/64: code offset 64 ↔ x = 1.0 → index 256 + floor(512/6) = 341
    M, S = gold.lut_multiplier(1 / 64)
    assert gold.lut_index(np.array([64 + 10]), 10, M, S)[0] == 256 + 85
    assert gold.lut_index(np.array([0, 255]), 128, M, S).tolist() == [85, 425]  # x = ±2
    M, S = gold.lut_multiplier(1 / 32)
    assert gold.lut_index(np.array([0, 255]), 128, M, S).tolist() == [0, 511]  # x = ±4: clamped
    assert lut[341] == round(256 * (1 / (1 + np.exp(-(-3 + 341.5 * 6 / 512))) - 0.5))


def test_requant_mult_rounds_half_up_with_exact_zero_point():
    # M · 2**-S = 3/8: 4·3/8 = 1.5 → 2, −4·3/8 = −1.5 → −1 (half up), + zp 100
    acc = np.array([4, -4, 5, 10_000, -10_000])
    assert gold.requant_mult(acc, 3, 3, 100).tolist() == [102, 99, 102, 255, 0]
    # per channel (axis 0) multipliers and shifts
    acc2 = np.array([[8, 9], [8, 9]])
    assert gold.requant_mult(acc2, [1, 3], [2, 1], 0).tolist() == [[2, 2], [12, 14]]
    with pytest.raises(HwsimError, match="16-bit"):
        gold.requant_mult(acc, 1 << 16, 3, 0)


def test_skip_multipliers_share_one_shift():
    mx, mc, s = gold.skip_multipliers(0.7, 0.05, 0.01)  # s_x, s_c2, s_out; gate scale 2**-8
    assert 1 << 15 <= mx < 1 << 16 and mc == round(0.05 / 256 / 0.01 * 2**s)
    assert abs(mx / 2**s - 0.7 / 256 / 0.01) < 2**-15 * 0.7 / 256 / 0.01


def test_fused_gate_rounds_once():
    """The fused SPAB gate: the wide sum times the gate code, one half-up rounding shift; its
    value is the real ``(x + c2) · lut`` within half an output step (plus the multipliers'
    2**-15 relative error), with no intermediate uint8 sum."""
    s_x, s_c, s_out, z_x, z_c, z_out = 0.09, 0.04, 0.02, 117, 140, 128
    mx, mc, sh = gold.skip_multipliers(s_x, s_c, s_out)
    lm, ls = gold.lut_multiplier(s_c)
    conv = gold.ConvInt(np.zeros((1, 1, 1, 1), np.int64), np.zeros(1, np.int64),
                        np.ones(1, np.int64), np.zeros(1, np.int64), 0, z_c)
    blk = gold.SpabInt(conv, conv, lm, ls, mx, mc, sh, z_out)
    lut = gold.sigmoid_lut()
    x, c = np.meshgrid(np.arange(0, 256, 5), np.arange(0, 256, 3))
    got = gold.spab_gate(x, c, blk, lut, z_x)
    g = lut[gold.lut_index(c, z_c, lm, ls)]
    exact = [min(max((int(a) * int(b) + (z_out << sh) + (1 << (sh - 1))) >> sh, 0), 255)
             for a, b in zip(((x - z_x) * mx + (c - z_c) * mc).ravel(), g.ravel(), strict=True)]
    assert got.ravel().tolist() == exact
    real = ((x - z_x) * s_x + (c - z_c) * s_c) * g / 256 / s_out + z_out
    inside = (real > 0.5) & (real < 254.5)
    assert np.all(np.abs(got - real)[inside] <= 0.5 + 2**-15 * np.abs(real - z_out)[inside] + 1e-9)


def test_bad_input_codes():
    with pytest.raises(HwsimError, match="uint8"):
        gold.swiftchannel_int(np.full((1, 2, 4, 4), 300), None)
    with pytest.raises(HwsimError, match=r"\(n, 2, rows, cols\)"):
        gold.swiftchannel_int(np.zeros((1, 3, 4, 4), int), None)
