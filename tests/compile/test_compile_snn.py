"""``hwsim compile`` on the spiking classifier's per-step export (models.snn.export): the LIF
layers lower exactly to ``IntLifArray`` (state pairs by the LIF pattern), the compiled top keeps
the membranes on chip over T steps of one sample: RTL spikes == golden, cycles == the LIF cycle
model, and the golden's spike counts == the torch model's and onnxruntime's."""

import json

import numpy as np
import pytest
import torch

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.lower import lower
from hwsim.compile.lower.lif import state_pairs
from hwsim.errors import HwsimError
from models.snn.classifier import QuantSnnClassifier, SnnShape
from models.snn.export import export_onnx, run_onnx

SHAPE = SnnShape(side=9, channels=2, kernel=3, stride=3, hidden=8, classes=3)
T = 6


@pytest.fixture(scope="module")
def snn(tmp_path_factory):
    torch.manual_seed(0)
    q = QuantSnnClassifier(SHAPE, weight_bits=8, mem_bits=16)
    with torch.no_grad():  # mostly excitatory weights: every layer spikes within T steps
        for layer in (q.conv, q.fc1, q.fc2):
            layer.weight.uniform_(-0.3, 1.0)
    folder = tmp_path_factory.mktemp("snn")
    path = export_onnx(q, folder / "snn.onnx", batch=1)
    rng = np.random.default_rng(1)
    frames = (rng.random((T, 1, 1, SHAPE.side, SHAPE.side)) < 0.3).astype(np.float32)
    np.save(folder / "frames.npy", frames)
    return q, path, frames, folder


def test_state_pairs_and_exact_lowering(snn):
    _, path, frames, _ = snn
    g = frontend.load(path)
    pairs = state_pairs(g)
    names = [i.name for i in g.graph.input]
    outs = [o.name for o in g.graph.output]
    assert pairs == list(zip(names[1:], outs[1:], strict=True))
    rng = np.random.default_rng(0)
    feed = {names[0]: frames[0]}
    feed.update({a: rng.integers(-3000, 3000, g.get_tensor_shape(a)).astype(np.float32)
                 for a, _ in pairs})
    low, rep = lower(g, verify_inputs=[feed])
    assert [n.op_type for n in low.graph.node if n.domain].count("IntLifArray") == 3
    assert rep.step("LowerLif").equal and rep.step("LowerLif").exact


def test_lif_pattern_outside_the_lowering_is_refused(snn):
    path = snn[1]
    g = frontend.load(path)
    clip = next(n for n in g.graph.node if n.op_type == "Clip")
    hi = g.get_initializer(clip.input[2])
    g.set_initializer(clip.input[2], np.asarray(hi) - 1)  # not a signed power-of-two range
    with pytest.raises(HwsimError, match="clamp"):
        lower(g)


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_compile_snn_over_time_steps(snn, tmp_path, capsys, sim):
    q, path, frames, folder = snn
    out = tmp_path / "build"
    rc = main(["compile", str(path), "--target", "xczu28dr", "-o", str(out), "--sim", sim,
               "--input", str(folder / "frames.npy"), "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["rtl_equals_golden"] is True and s["cycles_match"] is True
    assert s["max_error_lsb_vs_onnxruntime"] == 0.0
    assert [k["kernel"] for k in s["kernels"]] == ["lif-array"] * 3
    sample = np.load(out / "lower" / "sample.npz")
    assert all(sample[f"c{i}"].sum() > 0 for i in range(3)) and sample["Y"].sum() > 0
    counts = sample["y"].sum(0)  # the compiled golden's output spike counts over T steps
    with torch.no_grad():
        torch_counts = q(torch.from_numpy(frames[:, 0, 0][None])).numpy()
    assert np.array_equal(counts, torch_counts)
    assert np.array_equal(counts, run_onnx(path, frames[:, 0, 0][None]))
