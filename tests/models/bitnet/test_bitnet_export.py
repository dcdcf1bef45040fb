"""Exported QCDQ (onnxruntime) and QONNX (qonnx executor) graphs against the torch model.

Tolerance: the graphs perform the same float32 operations as torch, but onnxruntime and numpy
may sum in a different order (MatMul, ReduceMean, Softmax): a few ulp per operation. An
activation whose ``x / step`` lies within that distance of a rounding tie could take the
neighbouring int8 code; that did not happen on these inputs, and we allow 1e-4 · the output
peak — far below one int8 step (peak / 127) — so a code flip in any projection would fail.
"""

import numpy as np
import onnx
import pytest
import torch

from hwsim.errors import HwsimError
from models.bitnet.export import LayerModule, export_agrees, export_bitnet, run_exported, verify_export
from models.bitnet.model import BitNetModel
from quant.onnx import TIGHT_TOL, check, export_tolerance

REL_TOL = TIGHT_TOL


@pytest.fixture(scope="module")
def exported(trained_micro, tmp_path_factory):
    model, corpus, _ = trained_micro
    out = tmp_path_factory.mktemp("onnx")
    tokens = corpus.val[None, :24].astype(np.int64)
    return model, export_bitnet(model, out, seq=24, layer=1, tokens=tokens), out


def _ops(path):
    return {n.op_type for n in onnx.load(path).graph.node}


def test_files_and_node_patterns(exported):
    out = exported[2]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["layer1.qonnx.onnx", "layer1.qcdq.onnx", "model.qonnx.onnx", "model.qcdq.onnx"])
    qonnx_model = onnx.load(out / "model.qonnx.onnx")
    quants = [n for n in qonnx_model.graph.node if n.op_type == "Quant"]
    assert len(quants) == 2 * 7 * 2   # activation + weight, 7 projections, 2 layers
    assert {"QuantizeLinear", "DequantizeLinear", "Clip"} <= _ops(out / "model.qcdq.onnx")
    assert "Quant" not in _ops(out / "model.qcdq.onnx")


@pytest.mark.parametrize("fmt", ["qcdq", "qonnx"])
def test_layer_matches_torch(exported, fmt):
    model, r, out = exported
    with torch.no_grad():
        want = LayerModule(model, 1)(torch.from_numpy(r["hidden"])).numpy()
    got = run_exported(fmt, out / f"layer1.{fmt}.onnx", {"hidden": r["hidden"]})
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= REL_TOL * np.abs(want).max()


@pytest.mark.parametrize("fmt", ["qcdq", "qonnx"])
def test_model_matches_torch(exported, fmt):
    model, r, out = exported
    with torch.no_grad():
        want = model(torch.from_numpy(r["tokens"])).numpy()
    got = run_exported(fmt, out / f"model.{fmt}.onnx", {"tokens": r["tokens"]})
    assert np.abs(got - want).max() <= REL_TOL * np.abs(want).max()
    assert np.array_equal(got.argmax(-1), want.argmax(-1))


def test_verify_export_rows_meet_the_contract(exported):
    model, r, _ = exported
    rows = verify_export(model, r, layer=1)
    assert {row["file"] for row in rows} == {f"{k}.{f}.onnx" for k in ("layer1", "model")
                                             for f in ("qcdq", "qonnx")}
    assert all(export_agrees(row) for row in rows)
    assert {row["positions"] for row in rows} == {24}
    # QCDQ is checked under onnxruntime's default session options too
    assert all(("ort_default_max_abs_diff" in row) == (row["format"] == "qcdq") for row in rows)


def _want(exported, kind):
    model, r, _ = exported
    with torch.no_grad():
        if kind == "layer":
            return LayerModule(model, 1)(torch.from_numpy(r["hidden"])).numpy()
        return model(torch.from_numpy(r["tokens"])).numpy()


def _input(exported, kind):
    return exported[1]["hidden"] if kind == "layer" else exported[1]["tokens"]


PARTS = {"layer": "layer1", "model": "model"}


def test_graphs_are_static_with_relu2_as_pow(exported):
    """No Constant nodes, a fixed shape on every tensor (Quant outputs too), ReLU² as
    ``Pow(r, 2)``, no node reading one tensor twice (qonnx's cleanup renames one use only)."""
    out = exported[2]
    for name in ("layer1.qonnx", "layer1.qcdq", "model.qonnx", "model.qcdq"):
        m = onnx.load(out / f"{name}.onnx")
        typed = {v.name: v for v in [*m.graph.value_info, *m.graph.input, *m.graph.output]}
        typed.update({t.name: t for t in m.graph.initializer})
        ops = [n.op_type for n in m.graph.node]
        assert "Constant" not in ops and "Shape" not in ops
        relu = {n.output[0] for n in m.graph.node if n.op_type == "Relu"}
        squares = [n for n in m.graph.node if n.input and n.input[0] in relu]
        assert [n.op_type for n in squares] == ["Pow"] * (1 if name.startswith("layer") else 2)
        for n in m.graph.node:
            ins = [i for i in n.input if i]
            assert len(set(ins)) == len(ins), n.name
            for t in n.output:
                assert typed[t].type.tensor_type.HasField("shape"), t
                assert all(d.HasField("dim_value") for d in typed[t].type.tensor_type.shape.dim)


@pytest.mark.parametrize("kind", ["layer", "model"])
def test_qonnx_cleanup_then_execute_onnx_as_a_finn_user_does(exported, kind):
    """``qonnx.util.cleanup.cleanup_model`` then ``execute_onnx`` on the file as it comes: the
    QONNX contract (same float graph as torch, within TIGHT_TOL · peak, argmax identical)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.util.cleanup import cleanup_model

    path = exported[2] / f"{PARTS[kind]}.qonnx.onnx"
    model = cleanup_model(ModelWrapper(str(path)))
    assert model.check_all_tensor_shapes_specified()
    got = execute_onnx(model, {model.graph.input[0].name: _input(exported, kind)})
    got = got[model.graph.output[0].name]
    want = _want(exported, kind)
    assert np.abs(got - want).max() <= export_tolerance("qonnx", np.abs(want).max())
    assert np.array_equal(got.argmax(-1), want.argmax(-1))


@pytest.mark.parametrize("kind", ["layer", "model"])
def test_qcdq_in_a_default_onnxruntime_session(exported, kind, tmp_path):
    """``onnxruntime.InferenceSession(path)`` with nothing set: onnxruntime fuses nothing into
    ``MatMulNBits`` (which would quantize the activations again) and the output meets the
    tight rule the unoptimized graph meets."""
    import onnxruntime as ort

    path = exported[2] / f"{PARTS[kind]}.qcdq.onnx"
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    name = "hidden" if kind == "layer" else "tokens"
    got = ort.InferenceSession(str(path), opts).run(None, {name: _input(exported, kind)})[0]
    assert "MatMulNBits" not in {n.op_type for n in onnx.load(opts.optimized_model_filepath)
                                 .graph.node}
    want = _want(exported, kind)
    assert np.abs(got - want).max() <= export_tolerance("qonnx", np.abs(want).max())
    assert np.array_equal(got.argmax(-1), want.argmax(-1))
    default = ort.InferenceSession(str(path)).run(None, {name: _input(exported, kind)})[0]
    assert np.array_equal(default, got)


def test_make_static_refuses_a_dynamic_graph(tmp_path):
    from quant.onnx import export_torch

    with pytest.raises(HwsimError, match="has no static shape"):
        export_torch(torch.nn.ReLU(), (torch.randn(2, 3),), tmp_path / "d.onnx", ["x"], ["y"],
                     dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, static=True)
    assert not (tmp_path / "d.onnx").exists()


def test_export_contract_admits_a_tie_flip_in_onnxruntime_only():
    """One position a code away (onnxruntime reassociates float sums) passes for QCDQ, not for
    QONNX (the same float graph as torch); more positions, a larger Δ or a changed argmax
    elsewhere fail."""
    row = {"format": "qcdq", "torch_peak": 0.87, "positions": 32, "positions_over_tol": 1,
           "max_abs_diff": 0.0056, "argmax_agreement": 31 / 32}
    assert export_agrees(row)
    assert not export_agrees({**row, "format": "qonnx"})
    assert not export_agrees({**row, "positions_over_tol": 3})
    assert not export_agrees({**row, "max_abs_diff": 0.06})
    assert not export_agrees({**row, "argmax_agreement": 30 / 32})
    # under onnxruntime's default session options the same rule holds
    dflt = {"ort_default_max_abs_diff": 0.0056, "ort_default_positions_over_tol": 1,
            "ort_default_argmax_agreement": 31 / 32}
    assert export_agrees({**row, **dflt})
    assert not export_agrees({**row, **dflt, "ort_default_positions_over_tol": 3})
    assert not export_agrees({**row, **dflt, "ort_default_max_abs_diff": 0.06})
    assert export_agrees({**row, "format": "qonnx", "positions_over_tol": 0,
                          "max_abs_diff": 1e-6, "argmax_agreement": 1.0})


def test_export_tolerance_is_one_rule_for_every_flow():
    from quant.onnx import QCDQ_TOL, export_tolerance

    assert export_tolerance("qonnx", 0.3) == TIGHT_TOL  # the peak counts as at least 1
    assert export_tolerance("qcdq", 40.0) == pytest.approx(QCDQ_TOL * 40.0)
    with pytest.raises(HwsimError, match="unknown ONNX format 'qdq'"):
        export_tolerance("qdq", 1.0)


def test_export_rejects_float_model_and_bad_onnx(tmp_path, micro):
    with pytest.raises(HwsimError, match="ternary"):
        export_bitnet(BitNetModel(micro, False), tmp_path / "x")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(HwsimError, match=r"cannot read ONNX model .*bad\.onnx"):
        check(bad)
    assert not (tmp_path / "x").exists()
