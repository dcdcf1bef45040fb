"""The hwsim dialect ops: qonnx finds them by domain, and each ``execute_node`` is ``==`` the
golden function called directly."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.infer_shapes import InferShapes

from hwsim.compile.dialect import DOMAIN, OPSET
from hwsim.golden.common.int8_matmul import int8_matmul
from hwsim.golden.vitallm.ternary_mvu import ternary_mvu_acc
from hwsim.kernels import KERNELS
from quant.qtype import INT8, UINT8, QType, requantize

RNG = np.random.default_rng(7)


def _run(node, inputs: dict, out: str = "y") -> np.ndarray:
    context = dict(inputs)
    getCustomOp(node).execute_node(context, None)
    return context[out]


def test_int_matmul_is_the_int8_matmul_golden_plus_bias():
    a = RNG.integers(0, 256, (3, 5, 16)).astype(np.uint8)
    w = RNG.integers(-127, 128, (16, 8)).astype(np.int8)
    bias = RNG.integers(-5000, 5000, 8).astype(np.int32)
    node = helper.make_node("IntMatMul", ["a", "w", "b"], ["y"], domain=DOMAIN, a_signed=0,
                            w_narrow=1)
    got = _run(node, {"a": a, "w": w, "b": bias})
    assert got.dtype == np.int32
    assert np.array_equal(got, int8_matmul(a, w.T, UINT8, QType(8, narrow=True)) + bias)


def test_ternary_matmul_is_the_ternary_mvu_golden():
    a = RNG.integers(-128, 128, (4, 32)).astype(np.int8)
    w = RNG.integers(-1, 2, (32, 6)).astype(np.int8)
    node = helper.make_node("TernaryMatMul", ["a", "w"], ["y"], domain=DOMAIN)
    assert np.array_equal(_run(node, {"a": a, "w": w}), ternary_mvu_acc(w.T, a, INT8))
    assert getCustomOp(node).get_nodeattr("kernel") in KERNELS


@pytest.mark.parametrize("signed, relu", [(1, 0), (0, 0), (1, 1)])
def test_requant_is_the_requantize_golden(signed, relu):
    acc = RNG.integers(-(1 << 20), 1 << 20, (5, 7)).astype(np.int32)
    node = helper.make_node("Requant", ["acc"], ["y"], domain=DOMAIN, multiplier=12345,
                            shift=24, signed=signed, relu=relu)
    want = requantize(acc, 12345, 24, INT8 if signed else UINT8)
    if relu:
        want = np.maximum(want, 0)
    got = _run(node, {"acc": acc})
    assert got.dtype == (np.int8 if signed else np.uint8)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("relu", [0, 1])
def test_requant_adds_the_zero_point_before_saturating(relu):
    acc = RNG.integers(-(1 << 20), 1 << 20, (5, 7)).astype(np.int32)
    node = helper.make_node("Requant", ["acc"], ["y"], domain=DOMAIN, multiplier=12345,
                            shift=24, signed=0, relu=relu, zero_point=100)
    want = np.clip(requantize(acc, 12345, 24, QType(64)) + 100, 0, 255)
    if relu:
        want = np.maximum(want, 100)
    assert np.array_equal(_run(node, {"acc": acc}), want)
    assert (want == 255).any() and (want == (100 if relu else 0)).any()  # both rails hit


def test_verify_node_names_the_problem():
    bad = helper.make_node("IntMatMul", ["a"], ["y"], domain=DOMAIN, name="mm")
    assert any("'mm'" in line for line in getCustomOp(bad).verify_node())
    good = helper.make_node("Requant", ["acc"], ["y"], domain=DOMAIN, multiplier=3, shift=2)
    assert getCustomOp(good).verify_node() == []


def test_a_dialect_graph_checks_infers_types_and_runs_in_qonnx():
    w = RNG.integers(-127, 128, (16, 4)).astype(np.int8)
    graph = helper.make_graph(
        [helper.make_node("IntMatMul", ["a", "w"], ["acc"], domain=DOMAIN, name="mm"),
         helper.make_node("Requant", ["acc"], ["y"], domain=DOMAIN, name="rq",
                          multiplier=1 << 15, shift=22)],
        "dialect", [helper.make_tensor_value_info("a", TensorProto.INT8, [2, 16])],
        [helper.make_tensor_value_info("y", TensorProto.INT8, [2, 4])],
        [onnx.numpy_helper.from_array(w, "w")])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid(DOMAIN, OPSET)])
    onnx.checker.check_model(proto, full_check=True)
    model = ModelWrapper(proto).transform(InferShapes())
    assert model.get_tensor_valueinfo("acc").type.tensor_type.elem_type == TensorProto.INT32
    a = RNG.integers(-128, 128, (2, 16)).astype(np.int8)
    got = execute_onnx(model, {"a": a})["y"]
    assert np.array_equal(got, requantize(int8_matmul(a, w.T), 1 << 15, 22, INT8))


@pytest.mark.parametrize("attrs", [
    dict(op="add", a_zero=3, b_signed=0, b_zero=130, a_mult=5_000_000, b_mult=9_000_000,
         shift=24, out_zero=-4),
    dict(op="mul", a_signed=0, a_zero=9, mult=12345, shift=20, out_signed=0, out_zero=6,
         relu=1),
    dict(op="add", a_mult=1 << 23, b_mult=1 << 23, shift=23, out_narrow=1)])
def test_int_eltwise_is_the_eltwise_golden(attrs):
    from hwsim.golden.common.eltwise import EltwiseParams, eltwise

    qa = UINT8 if attrs.get("a_signed", 1) == 0 else INT8
    qb = UINT8 if attrs.get("b_signed", 1) == 0 else INT8
    a = RNG.integers(qa.min_code, qa.max_code + 1, (3, 4, 8)).astype(qa.numpy_dtype)
    b = RNG.integers(qb.min_code, qb.max_code + 1, (3, 4, 8)).astype(qb.numpy_dtype)
    node = helper.make_node("IntEltwise", ["a", "b"], ["y"], domain=DOMAIN, name="e", **attrs)
    assert getCustomOp(node).verify_node() == []
    assert getCustomOp(node).get_nodeattr("kernel") == "eltwise" and "eltwise" in KERNELS
    got = _run(node, {"a": a, "b": b})
    p = EltwiseParams(**{k: bool(v) if k in ("a_signed", "b_signed", "out_signed", "relu",
                                             "out_narrow") else v for k, v in attrs.items()})
    want = eltwise(a, b, p)
    assert got.dtype == (np.int8 if p.out_signed else np.uint8)
    assert np.array_equal(got, want)
    assert len(np.unique(want)) > 10  # not a constant output


def test_int_eltwise_verify_node_names_bad_params():
    bad = helper.make_node("IntEltwise", ["a", "b"], ["y"], domain=DOMAIN, name="e",
                           op="mul", shift=3)  # mul without a multiplier
    assert any("'e'" in line and "mult" in line for line in getCustomOp(bad).verify_node())
