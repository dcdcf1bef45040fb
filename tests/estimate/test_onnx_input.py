"""A user's ONNX file is checked before it is priced: one line naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from hwsim.bench.robustness import _fx_onnx
from hwsim.errors import HwsimError
from hwsim.estimate import onnx_workload

WHY = {
    "garbage": "cannot read ONNX model",
    "truncated": "cannot read ONNX model",
    "empty": "fails onnx.checker",
    "custom_domain": r"cannot price evil\.ops::Frobnicate \(node 'f'\)",
    "unknown_op": "fails onnx.checker: No Op registered for Frobnicate",
    "unpriced_op": r"cannot price Conv \(node 'conv'\)",
    "nan": "initializer 'w' holds NaN or infinite values",
    "inf": "initializer 'w' holds NaN or infinite values",
    "raw_size": "raw_data size",
    "bad_dtype": "data type 999",
    "string_weight": r"fails onnx.checker: .*unsupported type: tensor\(string\)",
    "no_weight": "cannot price MatMul .*no constant 2-D weight",
    "external": "fails onnx.checker",
    "dangling": "fails onnx.checker",
}


@pytest.mark.parametrize("kind", WHY)
def test_hostile_onnx_is_one_line(tmp_path, kind):
    _fx_onnx(tmp_path, kind)
    with pytest.raises(HwsimError, match=WHY[kind]) as e:
        onnx_workload(tmp_path / "m.onnx")
    assert "\n" not in str(e.value)


def test_wrong_raw_size_past_the_checker(tmp_path):
    """Too many bytes pass onnx.checker; the initializer check still refuses them."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    w.raw_data = w.raw_data + b"\x00" * 4
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "m.onnx"))
    with pytest.raises(HwsimError, match="initializer 'w'"):
        onnx_workload(tmp_path / "m.onnx")


def test_free_ops_are_listed_not_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["h"], name="p"),
                           helper.make_node("Softmax", ["h"], ["y"])], "g",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], [w])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]),
              str(tmp_path / "m.onnx"))
    wl = onnx_workload(tmp_path / "m.onnx")
    assert [o.name for o in wl.layers[0].ops] == ["p"]
    assert wl.notes["not_priced"] == ["Softmax"]
