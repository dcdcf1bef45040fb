"""The example classifier as users write it (conv → BatchNorm → ReLU, max pool, global average
pool, flatten, linear head with float logits) compiles end to end: every one of those steps
together, RTL == golden, cycles == schedule, logits within the float head's bound."""

import numpy as np
import pytest

from hwsim.compile import frontend
from hwsim.compile.examples import export
from hwsim.compile.lower import lower
from tests.compile.test_compile_cli import _compile


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cnn")
    return {fmt: export("cnn", folder / f"cnn_{fmt}.onnx", fmt) for fmt in ("qonnx", "qcdq")}


def test_lowering_uses_every_new_step(files):
    graph = frontend.load(files["qonnx"])
    x = np.random.default_rng(0).standard_normal((1, 1, 8, 8)).astype(np.float32) * 2
    lowered, report = lower(graph, verify_inputs=[{graph.graph.input[0].name: x}])
    ops = [n.op_type for n in lowered.graph.node]
    assert "BatchNormalization" not in ops and "MaxPool" not in ops
    assert {"IntConv", "IntMaxPool", "StreamFlatten", "IntMatMul"} <= set(ops)
    assert ops.count("IntConv") == 3  # two convolutions and the global average pool
    for step in report.steps:
        assert step.equal if step.exact else all(step.max_lsb[t] <= b
                                                 for t, b in step.bound_lsb.items())


@pytest.mark.cocotb
@pytest.mark.parametrize("fmt", ["qonnx", pytest.param("qcdq", marks=pytest.mark.slow)])
def test_small_cnn_compiles_rtl_equal_to_golden(files, tmp_path, capsys, fmt):
    rc, s, err = _compile(capsys, files[fmt], "--target", "xczu28dr", "-o", tmp_path / "o",
                          "--sim", "icarus")
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True and s["cycles_match"]
    assert s["max_error_lsb_vs_onnxruntime"] < 1  # the float head: ½ LSB of bias rounding
    assert s["fits"] is True
