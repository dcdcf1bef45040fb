"""quant.onnx: one check (full onnx.checker, one-line errors naming the file), one save, and
the two executors agreeing on a small graph."""

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from quant.onnx import (
    QCDQ_TOL,
    TIGHT_TOL,
    check,
    export_tolerance,
    export_torch,
    ort_session,
    run_onnxruntime,
    run_qonnx,
    save,
)


def _graph(op="Add"):
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    g = helper.make_graph([helper.make_node(op, ["x", "one"], ["y"])], "g", [x], [y], [one])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


def test_save_check_and_both_executors(tmp_path):
    path = save(_graph(), tmp_path / "add.onnx")
    assert check(path).graph.node[0].op_type == "Add"
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(run_onnxruntime(path, {"x": x})[0], x + 1)
    assert np.array_equal(run_onnxruntime(path, {"x": x}, ["y"])[0], x + 1)
    assert np.array_equal(run_qonnx(path, {"x": x})[0], x + 1)
    assert ort_session(path).get_session_options().intra_op_num_threads == 1


@pytest.mark.parametrize("what, message", [
    ("missing", r"ONNX model .*none\.onnx is not a file"),
    ("garbage", r"cannot read ONNX model .*m\.onnx"),
    ("invalid", r".*m\.onnx fails onnx\.checker: No Op registered for Frobnicate"),
])
def test_check_refuses_with_one_line_naming_the_file(tmp_path, what, message):
    path = tmp_path / ("none.onnx" if what == "missing" else "m.onnx")
    if what == "garbage":
        path.write_bytes(bytes(range(256)) * 3)
    elif what == "invalid":
        path.write_bytes(_graph("Frobnicate").SerializeToString())
    with pytest.raises(HwsimError, match=message) as e:
        check(path)
    assert "\n" not in str(e.value)


def test_save_refuses_an_invalid_model_and_writes_nothing(tmp_path):
    with pytest.raises(HwsimError, match=r"fails onnx\.checker"):
        save(_graph("Frobnicate"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_export_torch_is_checked_and_runs(tmp_path):
    lin = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3)
    export_torch(lin, (x,), tmp_path / "lin.onnx", ["x"], ["y"],
                 dynamic_axes={"x": {0: "n"}, "y": {0: "n"}})
    with torch.no_grad():
        want = lin(x[:2]).numpy()
    got = run_onnxruntime(tmp_path / "lin.onnx", {"x": x[:2].numpy()})[0]
    assert np.abs(got - want).max() <= export_tolerance("qonnx", np.abs(want).max())


def test_tolerances():
    assert export_tolerance("qonnx", 0.3) == TIGHT_TOL
    assert export_tolerance("qcdq", 40.0) == pytest.approx(QCDQ_TOL * 40.0)
    with pytest.raises(HwsimError, match="unknown ONNX format"):
        export_tolerance("qdq", 1.0)
