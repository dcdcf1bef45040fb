"""Integer ONNX graphs of the int8 SwiftChannel == the golden == the QAT model, code for code."""

import dataclasses

import numpy as np
import onnx
import pytest
import torch

from hwsim.golden.swiftchannel import network as gold
from hwsim.kernels.swiftchannel import random_int_model
from models.channels import Geometry
from models.swiftchannel.model import SwiftChannelNet, reparameterize
from models.swiftchannel.onnx_int import export_int_onnx, run_qcdq_codes, run_qonnx_codes
from models.swiftchannel.qat import QuantSwiftChannel, int_model
from models.swiftchannel.train import config_for, make_set, train

GEOM = Geometry(bs_ant=4, ue_ant=2, subcarriers=16, space_comp=1)  # input (4, 8)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    data = make_set(GEOM, 48, seed=3)
    net = SwiftChannelNet(config_for(GEOM))
    train(net, data, epochs=1, batch=16)
    q = QuantSwiftChannel.from_float(reparameterize(net))
    train(q, data, epochs=1, lr=1e-3, batch=16)
    X = data.inputs(np.random.default_rng(4))[:5]
    im = int_model(q, torch.from_numpy(X))
    return q, im, X, export_int_onnx(im, 4, 8, tmp_path_factory.mktemp("onnx"))


def test_both_graphs_pass_the_checker_and_use_integer_ops(trained):
    for path in trained[3].values():
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
        ops = {n.op_type for n in model.graph.node}
        assert {"ConvInteger", "BitShift", "Gather"} <= ops
        assert not ops & {"Conv", "Sigmoid", "Round"}


def test_qcdq_and_qonnx_codes_equal_golden_and_qat(trained):
    q, im, X, paths = trained
    want = q.output_codes(torch.from_numpy(X))
    codes = gold.quantize_input(X, im)
    assert np.array_equal(gold.swiftchannel_int(codes, im), want)
    assert len(np.unique(want)) > 10
    assert np.array_equal(run_qcdq_codes(paths["qcdq"], X), want)
    assert np.array_equal(run_qonnx_codes(paths["qonnx"], codes), want)


def test_random_student_saturating_codes(tmp_path):
    # a random student whose codes hit 0 and 255: the clip and the LUT clamp in the graph
    m = dataclasses.replace(random_int_model(3, blocks=2), s_in=0.05, s_out=0.01)
    paths = export_int_onnx(m, 3, 5, tmp_path)
    X = np.random.default_rng(0).normal(0, 4, (3, 2, 3, 5)).astype(np.float32)
    codes = gold.quantize_input(X, m)
    want = gold.swiftchannel_int(codes, m)
    assert np.array_equal(run_qcdq_codes(paths["qcdq"], X), want)
    assert np.array_equal(run_qonnx_codes(paths["qonnx"], codes), want)
