"""cocotb on Icarus / Verilator: conv engine and SPAB gate on real channel tensors.

Real tensors: Sionna CDL-B channels → LS estimates at 10 dB → a (briefly trained) int8 student's
input codes; each layer's input codes come from the golden model, so the RTL sees the
activations the student really produces. ``==`` on every code, cycles ``==`` formula.
"""

import numpy as np
import pytest
import torch

from hwsim.golden.swiftchannel import network as sc
from hwsim.golden.swiftchannel import pipeline as pipe_spec
from hwsim.kernels import swiftchannel as kern
from hwsim.sim.runner import simulate
from models.channels import Geometry, ls_observation, pack_real
from models.swiftchannel.model import SwiftChannelNet, reparameterize
from models.swiftchannel.qat import QuantSwiftChannel, int_model
from models.swiftchannel.train import config_for, make_set, train

GEOM = Geometry(bs_ant=4, ue_ant=2, subcarriers=16, space_comp=1)  # input (4, 8)


@pytest.fixture(scope="module")
def student():
    torch.manual_seed(0)
    data = make_set(GEOM, 64, seed=11)
    net = SwiftChannelNet(config_for(GEOM))
    train(net, data, epochs=1, batch=16)
    q = QuantSwiftChannel.from_float(reparameterize(net))
    train(q, data, epochs=1, lr=3e-4, batch=16)
    X = pack_real(ls_observation(data.H[:1], GEOM, 10.0, np.random.default_rng(3)))
    im = int_model(q, torch.from_numpy(X))
    return im, sc.quantize_input(X, im)[0]


@pytest.fixture(scope="module")
def layers(student):
    im, xq = student
    return kern.student_layers(im, xq, ocp=4, gate_lanes=4)


def _run(layer, tmp_path, sim):
    cases = [{"name": "real", "arrays": layer["arrays"]},
             {"name": "real_stalls", "arrays": layer["arrays"], "idle": 0.3, "stall": 0.4,
              "seed": 5}]
    rep = simulate(layer["kernel"], layer["params"], cases, tmp_path / layer["name"], sim=sim)
    assert rep.passed, rep.failures
    assert all(c["bit_exact"] for c in rep.cases)
    assert rep.cases[0]["cycles"] == rep.cases[0]["expected_cycles"] == kern.layer_cycles(layer)


@pytest.mark.cocotb
@pytest.mark.parametrize("name", [pytest.param("head", marks=pytest.mark.slow), "block0.gate",
                                  pytest.param("up", marks=pytest.mark.slow)])
def test_icarus_real_tensors(layers, tmp_path, name):
    _run(next(l for l in layers if l["name"] == name), tmp_path, "icarus")


@pytest.mark.cocotb
@pytest.mark.slow
@pytest.mark.parametrize("name", ["block1.c2", "block1.gate"])
def test_verilator_real_tensors(layers, tmp_path, name):
    _run(next(l for l in layers if l["name"] == name), tmp_path, "verilator")


@pytest.mark.cocotb
@pytest.mark.slow
@pytest.mark.parametrize("sim, taps", [("icarus", 3), ("verilator", 9)])
def test_composed_pipeline_real_tensors(student, tmp_path, sim, taps):
    """The whole student as one dataflow pipeline: output == golden, cycles == formula."""
    im, xq = student
    p = pipe_spec.PipelineParams.from_model(im, *xq.shape[1:], taps=taps)
    cases = [{"name": "real", "arrays": {"X": xq}},
             {"name": "real_stalls", "arrays": {"X": xq}, "idle": 0.3, "stall": 0.4, "seed": 5}]
    rep = simulate(kern.PIPELINE, p, cases, tmp_path / "pipe", sim=sim)
    assert rep.passed, rep.failures
    assert all(c["bit_exact"] for c in rep.cases)
    assert rep.cases[0]["cycles"] == pipe_spec.frame_cycles(p)
    # the streamed beats, PixelShuffled, are the int8 student's output image
    want = sc.swiftchannel_int(xq[None], im)
    beats = pipe_spec.pipeline(xq, p)
    assert np.array_equal(sc.pixel_shuffle_int(beats.T.reshape(1, -1, *xq.shape[1:]), im.rf, im.rs),
                          want)
