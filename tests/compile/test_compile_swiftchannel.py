"""The SwiftChannel student through ``hwsim compile`` in its integer-ONNX form
(:func:`models.swiftchannel.onnx_int.export_int_onnx`): front-end idioms, the exact
``LowerIntegerOnnx`` step (``IntConv → Requant`` half up per channel, ``SpabGate``), the
``swiftchannel-conv`` / ``swiftchannel-gate`` back end — RTL == golden graph, cycles == the
composed formula, and the compiled codes == the model's own golden
(:func:`hwsim.golden.swiftchannel.network.swiftchannel_int`)."""

import json

import numpy as np
import pytest
import torch
from qonnx.core.onnx_exec import execute_onnx

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.lower import LowerIntegerOnnx, lower
from hwsim.errors import HwsimError
from hwsim.golden.swiftchannel import network as gold
from models.swiftchannel.model import StudentConfig
from models.swiftchannel.onnx_int import export_int_onnx
from models.swiftchannel.qat import QuantSwiftChannel, int_model

ROWS, COLS = 3, 4


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    """An untrained, initialised small student (2 SPAB blocks, rf = 2), its integer model
    from one forward, exported with batch 1, and an input sample."""
    torch.manual_seed(0)
    q = QuantSwiftChannel(StudentConfig(feat=4, mid=4, down=2, blocks=2, rf=2, rs=1))
    x = np.random.default_rng(1).normal(0, 1, (1, 2, ROWS, COLS)).astype(np.float32)
    im = int_model(q, torch.from_numpy(x))
    folder = tmp_path_factory.mktemp("swift")
    path = export_int_onnx(im, ROWS, COLS, folder, batch=1)["qcdq"]
    np.save(folder / "x.npy", x)
    return im, path, folder / "x.npy", x


def _golden_codes(im, x):
    return gold.swiftchannel_int(gold.quantize_input(x, im), im)


@pytest.mark.slow  # the compile test below checks the lowered golden against the model's too
def test_front_end_accepts_the_idioms_and_lowering_is_exact(student):
    im, path, _, x = student
    graph = frontend.load(path)
    assert frontend.unsupported(graph) == []
    owners = {r["pattern"] for r in frontend.summary(graph)}
    assert {"int_conv", "int_gate", "int_boundary"} <= owners
    low, rep = lower(graph, verify_inputs=[{graph.graph.input[0].name: x}])
    assert rep.step("LowerIntegerOnnx").equal
    ops = [n.op_type for n in low.graph.node]
    assert ops.count("IntConv") == ops.count("Requant") == 2 + 2 * 2 + 1
    assert ops.count("SpabGate") == 2
    assert not {"ConvInteger", "Gather", "BitShift", "Cast"} & set(ops)
    # the lowered graph's codes (before the host's PixelShuffle) == the model's golden
    ctx = execute_onnx(low, {graph.graph.input[0].name: x}, return_full_exec_context=True)
    dq = next(n for n in low.graph.node if n.op_type == "DequantizeLinear")
    want = _golden_codes(im, x)
    assert np.array_equal(ctx[dq.input[0]].astype(np.int64), want)
    assert len(np.unique(want)) > 3


def test_a_gate_with_another_lut_is_refused(student):
    import onnx
    from qonnx.core.modelwrapper import ModelWrapper

    _, path, _, _ = student
    model = ModelWrapper(onnx.load(str(path)))
    gather = next(n for n in model.graph.node if n.op_type == "Gather")
    lut = model.get_initializer(gather.input[0]).copy()
    lut[0] += 1
    model.set_initializer(gather.input[0], lut)
    graph = frontend.load(model.model)
    assert any(op == "Gather" for op, _ in frontend.unsupported(graph))
    with pytest.raises(HwsimError, match="Gather"):
        graph.transform(LowerIntegerOnnx())


def _compile(capsys, *args):
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


def _check_compiled(student, out, s):
    im, _, _, x = student
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    assert s["max_error_lsb_vs_onnxruntime"] == 0
    kernels = [k["kernel"] for k in s["kernels"]]
    assert kernels.count("swiftchannel-conv") == 7 and kernels.count("swiftchannel-gate") == 2
    # the codes the RTL was checked against (stream order, before the PixelShuffle) are the
    # model's golden features, and the host's PixelShuffle of them its golden output
    sample = np.load(out / "lower" / "sample.npz")
    feats = gold.student_features(gold.quantize_input(x, im), im)
    assert np.array_equal(sample["Y"].astype(np.int64), feats.transpose(0, 2, 3, 1))
    shuffled = gold.pixel_shuffle_int(feats, im.rf, im.rs)
    assert np.array_equal(shuffled, _golden_codes(im, x))
    assert np.allclose(sample["y"], gold.dequantize_output(shuffled, im), rtol=0, atol=1e-6)


def test_compile_student_icarus(student, tmp_path, capsys):
    _, path, x_npy, _ = student
    out = tmp_path / "build"
    rc, s, err = _compile(capsys, path, "--target", "xczu28dr", "-o", out, "--sim", "icarus",
                          "--input", x_npy)
    assert rc == 0, err
    _check_compiled(student, out, s)


@pytest.mark.slow
def test_compile_student_verilator(student, tmp_path, capsys):
    _, path, x_npy, _ = student
    out = tmp_path / "build"
    rc, s, err = _compile(capsys, path, "--target", "xczu28dr", "-o", out, "--sim", "verilator",
                          "--input", x_npy)
    assert rc == 0, err
    _check_compiled(student, out, s)
