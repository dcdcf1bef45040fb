"""Integer SwiftChannel golden == the Brevitas int8 model, code for code."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden import swiftchannel as gold
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
    train(q, data, epochs=1, lr=3e-4, batch=16)
    X = data.inputs(np.random.default_rng(9))[:6]
    return q, X


def test_golden_equals_brevitas_codes(qat_model):
    q, X = qat_model
    x = torch.from_numpy(X)
    m = int_model(q, x)
    want = q.output_codes(x)
    got = gold.swiftchannel_int(gold.quantize_input(X, m), m)
    assert got.shape == want.shape == (6, 2, 32, 16)
    assert len(np.unique(want)) > 20  # a real spread of codes, not a saturated constant
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} codes differ, first at {bad[:5]}"
    # and the dequantized output is the fake-quant model's float output
    np.testing.assert_array_equal(gold.dequantize_output(got, m).astype(np.float32),
                                  q(x).detach().numpy())


def test_every_spab_stage_matches(qat_model):
    q, X = qat_model
    x = torch.from_numpy(X)
    m = int_model(q, x)
    t = {}
    q.forward_quant(x, traces=t)

    def codes(qt):
        return torch.round(qt.value / qt.scale + qt.zero_point).to(torch.int64).numpy()

    y = codes(t["head"])
    np.testing.assert_array_equal(gold.requant_pot(
        gold.conv_acc(gold.quantize_input(X, m), m.head).transpose(1, 0, 2, 3), m.head.exp,
        m.head.z_out).transpose(1, 0, 2, 3), y)
    z = m.head.z_out
    for i, blk in enumerate(m.blocks):
        y = gold.spab_int(y, blk, m.lut, z)
        np.testing.assert_array_equal(y, codes(t[f"block{i}"]["out"]))
        z = blk.z_out


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


def test_requant_is_round_half_even_with_zero_point():
    acc = np.array([5, 6, 7, -5, -6, 10_000, -10_000])
    assert gold.requant_pot(acc, -2, 100).tolist() == [101, 102, 102, 99, 98, 255, 0]
    assert gold.requant_pot(np.array([3]), 2, 1).tolist() == [13]
    # a tie is broken after adding the zero point: 2/4 + 1 = 1.5 → 2 (not round(0.5) + 1 = 1)
    assert gold.requant_pot(np.array([2, 2]), -2, 1).tolist() == [2, 2]
    assert gold.requant_pot(np.array([2]), -2, 2).tolist() == [2]


def test_bad_input_codes():
    with pytest.raises(HwsimError, match="uint8"):
        gold.swiftchannel_int(np.full((1, 2, 4, 4), 300), None)
    with pytest.raises(HwsimError, match=r"\(n, 2, rows, cols\)"):
        gold.swiftchannel_int(np.zeros((1, 3, 4, 4), int), None)
