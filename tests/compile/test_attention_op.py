"""The opset-23 ``Attention`` op through ``hwsim compile``: a QCDQ graph whose attention is one
fused ``Attention`` node (causal, grouped-query, 3-D inputs; float probabilities, as the op
has no quantizer inside) is written out by the front end, lowered to ``IntAttention`` within
its bound and built: RTL == golden on Icarus, cycles == schedule. What the op can state but
hwsim does not build (a KV cache, softcap, a mask computed from the data) is refused in one
line naming the node."""

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.patterns import patterns
from hwsim.errors import HwsimError

T, D, H, KV = 4, 16, 4, 2
DH = D // H


def _graph(path, attn_attrs=None, extra_inputs=(), seed=0):
    """x (1, T, D) → int8 → q, k, v projections (int8 weights) → int8 → Attention → int8."""
    rng = np.random.default_rng(seed)
    w = {n: rng.integers(-127, 128, (D, cols)).astype(np.int8)
         for n, cols in (("q", D), ("k", KV * DH), ("v", KV * DH))}
    sw = 0.01
    x = rng.standard_normal((1, T, D)).astype(np.float32)
    sx = float(np.abs(x).max()) / 127
    xq = np.clip(np.round(x / sx), -128, 127) * sx
    proj = {n: xq @ (w[n].astype(np.float32) * sw) for n in w}
    s = {n: float(np.abs(proj[n]).max()) / 127 for n in w}
    s["y"] = s["v"]  # the context is an average of v rows: within v's range
    inits = [numpy_helper.from_array(np.float32(sx), "sx"),
             numpy_helper.from_array(np.int8(0), "z"),
             numpy_helper.from_array(np.float32(sw), "sw")]
    nodes = [helper.make_node("QuantizeLinear", ["x", "sx", "z"], ["xc"], name="xq"),
             helper.make_node("DequantizeLinear", ["xc", "sx", "z"], ["xd"], name="xdq")]
    for n in w:
        inits += [numpy_helper.from_array(w[n], f"w{n}"),
                  numpy_helper.from_array(np.float32(s[n]), f"s{n}")]
        nodes += [helper.make_node("DequantizeLinear", [f"w{n}", "sw"], [f"w{n}f"], name=f"w{n}dq"),
                  helper.make_node("MatMul", ["xd", f"w{n}f"], [f"{n}a"], name=f"{n}_mm"),
                  helper.make_node("QuantizeLinear", [f"{n}a", f"s{n}", "z"], [f"{n}c"],
                                   name=f"{n}_q"),
                  helper.make_node("DequantizeLinear", [f"{n}c", f"s{n}", "z"], [f"{n}d"],
                                   name=f"{n}_dq")]
    inits.append(numpy_helper.from_array(np.float32(s["y"]), "sy"))
    attrs = {"is_causal": 1, "q_num_heads": H, "kv_num_heads": KV, **(attn_attrs or {})}
    nodes += [helper.make_node("Attention", ["qd", "kd", "vd", *extra_inputs], ["att"],
                               name="attention", **attrs),
              helper.make_node("QuantizeLinear", ["att", "sy", "z"], ["yc"], name="yq"),
              helper.make_node("DequantizeLinear", ["yc", "sy", "z"], ["y"], name="ydq")]
    g = helper.make_graph(nodes, "attention_op",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, T, D])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, T, D])],
                          initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 23)])
    m.ir_version = 10
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, path)
    np.save(path.with_suffix(".npy"), x)
    return path


def test_attention_op_is_written_out(tmp_path):
    graph = frontend.load(_graph(tmp_path / "a.onnx"))
    assert frontend.unsupported(graph) == []
    ops = [n.op_type for n in graph.graph.node]
    assert "Attention" not in ops and ops.count("Softmax") == 1 and ops.count("Tile") == 2
    names = {p["pattern"] for p in patterns(graph)}
    assert {"attention_op", "softmax_attention", "kv_repeat"} <= names


def test_attention_op_compiles_end_to_end(tmp_path, capsys):
    path = _graph(tmp_path / "a.onnx")
    rc = main(["compile", str(path), "--target", "xczu28dr", "-o", str(tmp_path / "b"),
               "--input", str(path.with_suffix(".npy")), "--sim", "icarus", "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True and s["cycles_match"]
    assert [k["kernel"] for k in s["kernels"]].count("attention-head") == 1
    (step,) = [st for st in s["lowering"]["steps"] if st["name"] == "LowerAttention"]
    assert all(step["max_lsb"][t] <= b for t, b in step["bound_lsb"].items())
    assert s["max_error_lsb_vs_onnxruntime"] <= max(step["bound_lsb"].values())


@pytest.mark.parametrize("attrs,extra,message", [
    ({"softcap": 30.0}, (), "softcap is not supported"),
    ({}, ("", "xd", "xd"), "a KV cache"),
    ({}, ("xd",), "attn_mask is computed from the data"),
])
def test_what_hwsim_does_not_build_is_refused(tmp_path, capsys, attrs, extra, message):
    try:
        path = _graph(tmp_path / "a.onnx", attrs, extra)
    except onnx.checker.ValidationError:
        pytest.skip("the checker rejects this form")
    out = tmp_path / "b"
    rc = main(["compile", str(path), "--target", "xczu28dr", "-o", str(out), "--sim", "none"])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "'attention'" in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
    with pytest.raises(HwsimError, match=message):
        frontend.load(path)
