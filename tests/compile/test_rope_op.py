"""``IntRotary`` by hand: a dialect graph QuantizeLinear → IntRotary → DequantizeLinear runs
the rope golden in qonnx, plans as one ``rope`` node whose timing is the kernel's, and its
compiled design simulated on Icarus gives the golden codes in the scheduled cycles."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp

from hwsim.compile import backend
from hwsim.compile.dialect import DOMAIN, OPSET
from hwsim.errors import HwsimError
from hwsim.golden.common import rope as spec

S_IN, S_OUT = 0.05, 0.04


def _graph(batch=1, T=3, H=2, hd=4, frac=12) -> tuple[ModelWrapper, spec.RopeParams]:
    h = hd // 2
    cos, sin = spec.rope_tables(*spec.standard_angles(T, hd, base=3.0), frac)
    mult, shift = spec.rope_scale(S_IN / S_OUT, frac)
    shape = [batch, T, H * hd]
    rot = helper.make_node("IntRotary", ["codes"], ["rot"], domain=DOMAIN, name="rope0",
                           heads=H, head_dim=hd, frac=frac, mult=mult, shift=shift,
                           cos=[c for r in cos for c in r], sin=[s for r in sin for s in r],
                           real_factor=S_IN / S_OUT)
    nodes = [helper.make_node("QuantizeLinear", ["inp", "s_in", "zp"], ["codes"], name="q"),
             rot,
             helper.make_node("DequantizeLinear", ["rot", "s_out", "zp"], ["out"], name="dq")]
    inits = [numpy_helper.from_array(np.array(S_IN, np.float32), "s_in"),
             numpy_helper.from_array(np.array(S_OUT, np.float32), "s_out"),
             numpy_helper.from_array(np.array(0, np.int8), "zp")]
    g = helper.make_graph(nodes, "rope", [helper.make_tensor_value_info(
        "inp", TensorProto.FLOAT, shape)], [helper.make_tensor_value_info(
            "out", TensorProto.FLOAT, shape)], inits,
        value_info=[helper.make_tensor_value_info(t, TensorProto.INT8, shape)
                    for t in ("codes", "rot")])
    model = ModelWrapper(helper.make_model(g, opset_imports=[
        helper.make_opsetid("", 19), helper.make_opsetid(DOMAIN, OPSET)]))
    p = spec.RopeParams(head_dim=hd, heads=H, tokens=T, frac=frac, mult=mult, shift=shift,
                        cos=cos, sin=sin)
    assert h == p.half
    return model, p


def _x(model, seed=0):
    shape = model.get_tensor_shape("inp")
    return np.random.default_rng(seed).uniform(-6, 6, shape).astype(np.float32)


def test_execute_is_the_golden_and_the_node_verifies():
    model, p = _graph(batch=2)
    ctx = execute_onnx(model, {"inp": _x(model)}, return_full_exec_context=True)
    assert ctx["rot"].dtype == np.int8
    assert np.array_equal(ctx["rot"], spec.rope(ctx["codes"], p))
    op = getCustomOp(model.graph.node[1])
    assert op.verify_node() == [] and op.params() == p


def test_bad_attributes_are_reported():
    model, _ = _graph()
    node = model.graph.node[1]
    node.attribute.remove(next(a for a in node.attribute if a.name == "sin"))
    node.attribute.append(helper.make_attribute("sin", [0, 0, 0]))
    info = getCustomOp(node).verify_node()
    assert len(info) == 1 and "cos/sin must both hold" in info[0]


def test_plan_is_one_rope_node_with_the_kernel_timing():
    model, p = _graph(batch=2)
    design = backend.plan(model)
    (n,) = design.nodes
    assert n.kernel == "rope" and n.params == p and n.vectors == 2 * p.tokens
    assert (n.tail, n.interval, n.out_len) == (spec.latency_cycles(p), p.token_codes,
                                               p.token_codes)
    # back to back, the design's cycles are the kernel's stream formula plus the glue
    sched = backend.schedule(design)
    assert sched["interval"] == p.token_codes
    bad, _ = _graph(T=3)
    bad.set_tensor_shape("codes", [1, 6, 4])  # 6 tokens of 4: not the tables' 3 × 8
    with pytest.raises(HwsimError, match="rotary embedding of 3 tokens"):
        backend.plan(bad)


def _simulate(tmp_path, batch, T, H, hd, frac=12):
    from hwsim.compile.driver import _CompiledKernel
    from hwsim.sim.runner import simulate

    model, p = _graph(batch=batch, T=T, H=H, hd=hd, frac=frac)
    design = backend.plan(model)
    ctx = execute_onnx(model, {"inp": _x(model, 3)}, return_full_exec_context=True)
    X, Y = design.to_stream(ctx["codes"], "in"), design.to_stream(ctx["rot"], "out")
    assert np.array_equal(Y, spec.rope(X, p).astype(np.int8))
    cycles = backend.schedule(design)["cycles"]
    cases = [{"name": "sample", "arrays": {"X": X, "Y": Y, "cycles": cycles}},
             {"name": "idle_backpressure", "idle": 0.3, "stall": 0.4, "seed": 5,
              "arrays": {"X": X, "Y": Y, "cycles": cycles}}]
    report = simulate(_CompiledKernel(design), design.top_params, cases, tmp_path)
    assert report.passed, report.failures
    assert all(c["bit_exact"] for c in report.cases)
    assert report.cases[0]["cycles_match"] and report.cases[0]["cycles"] == cycles


@pytest.mark.cocotb
def test_compiled_rope_on_icarus(tmp_path):
    _simulate(tmp_path, batch=2, T=3, H=2, hd=4)


@pytest.mark.cocotb
def test_compiled_rope_on_icarus_larger(tmp_path):
    _simulate(tmp_path, batch=1, T=8, H=4, hd=16, frac=14)
