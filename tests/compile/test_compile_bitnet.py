"""BitNet b1.58 through the compiler.

The feed-forward half of a decoder layer (:mod:`hwsim.compile.bitnet_block`: RMSNorm, ternary
``w1``/``w3``, ReLU² written ``Mul(r, r)``, the gate, SubLN, ternary ``w2``, the residual add)
with static int8 quantizers compiles from QONNX and QCDQ: the norms lower to ``IntRmsNorm``
(kernel ``rmsnorm``) within their bound, ReLU² to one ``LutAct``, and the RTL equals the
golden graph on Icarus with cycles == the composed formula. A whole decoder layer with static
quantizers (causal grouped-query attention with RoPE, SubLN, the feed-forward half) compiles
the same way onto ternary MVUs, ``rope``, ``attention-head``, ``rmsnorm``, ``lut-act`` and
``eltwise``. The exported decoder layer of :mod:`models.bitnet.export` (dynamic per-token
absmax quantizers, float tensors between them) is refused with one line naming its first
dynamic quantizer."""

import json

import numpy as np
import onnx
import pytest
import torch
from qonnx.core.onnx_exec import execute_onnx
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from hwsim.compile import backend, bitnet_block, frontend
from hwsim.compile.dialect import DOMAIN
from hwsim.compile.lower import lower
from hwsim.golden.vitallm import rmsnorm_int as rn_spec

D, FFN, T = 32, 48, 4


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bitnet")
    return {fmt: bitnet_block.export(folder / f"ffn_{fmt}.onnx", fmt, d=D, ffn=FFN, tokens=T)
            for fmt in ("qonnx", "qcdq")}


def _compile(capsys, *args):
    rc = main(["compile", *map(str, args), "--json"])
    cap = capsys.readouterr()
    return rc, (json.loads(cap.out) if rc == 0 and cap.out.strip() else None), cap.err


def test_norms_and_relu2_lower_within_bound(blocks):
    graph = frontend.load(blocks["qonnx"])
    x = np.random.default_rng(1).standard_normal((T, D)).astype(np.float32) * 2
    feeds = [{graph.graph.input[0].name: x * k} for k in (1.0, 0.2, 4.0)]
    lowered, report = lower(graph, verify_inputs=feeds)
    norms = [n for n in lowered.graph.node if n.op_type == "IntRmsNorm"]
    assert len(norms) == 2 and all(n.domain == DOMAIN for n in norms)
    # the input norm in the first pass; SubLN reads its result, so it waits for the second
    first, second = report.step("LowerRmsNorm"), report.step("LowerRmsNorm (pass 2)")
    assert list(first.bound_lsb) == [norms[0].output[0]]
    assert list(second.bound_lsb) == [norms[1].output[0]]
    for step, n in ((first, norms[0]), (second, norms[1])):
        assert step.bound_lsb[n.output[0]] == 1
        assert all(step.max_lsb[t] <= b for t, b in step.bound_lsb.items())
    assert report.step("LowerSquare").equal  # exact
    (lut,) = [n for n in lowered.graph.node if n.op_type == "LutAct"]
    assert getCustomOp(lut).get_nodeattr("function") == "Relu·Mul"
    assert not any(n.op_type in ("RMSNormalization", "Relu", "Mul") for n in lowered.graph.node)
    onnx.checker.check_model(lowered.model, full_check=True)
    ctx = execute_onnx(lowered, feeds[0], return_full_exec_context=True)
    for n in norms:  # the dialect node runs the golden function
        op = getCustomOp(n)
        want = rn_spec.rmsnorm_int(ctx[n.input[0]].astype(np.int64),
                                   np.array(op.get_nodeattr("gamma")),
                                   op.get_nodeattr("eps_code"), op.params())
        assert np.array_equal(ctx[n.output[0]], want)
    design = backend.plan(lowered)
    rms = [n for n in design.nodes if n.kernel == "rmsnorm"]
    assert [n.params.n for n in rms] == [D, FFN]
    for n in rms:
        assert n.interval == rn_spec.latency_cycles(n.params)
        assert n.tail == n.interval - n.params.n and n.fifo_depth["x"] >= n.params.n
    # the residual's skip operand waits beside the norms: its FIFO holds the whole input
    (add,) = [n for n in design.nodes if n.kernel == "eltwise" and n.vectors * n.out_len == T * D]
    assert min(add.fifo_depth.values()) >= T * D


@pytest.mark.slow  # the whole layer's end-to-end test below runs this half too
@pytest.mark.parametrize("fmt,sim", [("qonnx", "icarus"), ("qcdq", "icarus"),
                                     ("qonnx", "verilator")])
def test_ffn_block_compiles_end_to_end(blocks, tmp_path, capsys, fmt, sim):
    rc, s, err = _compile(capsys, blocks[fmt], "--target", "xczu28dr", "-o", tmp_path / "b",
                          "--sim", sim)
    if rc == 2 and "simulator" in err:
        pytest.skip(err.strip())
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True and s["cycles"] > 0
    kernels = [k["kernel"] for k in s["kernels"]]
    assert kernels.count("rmsnorm") == 2 and kernels.count("lut-act") == 1
    assert kernels.count("eltwise") == 2  # the gate and the residual
    # three projections; QONNX's 2-bit narrow weights take the ternary MVU
    mvus = [k for k in kernels if k.endswith("-mvu")]
    assert len(mvus) == 3 and (fmt != "qonnx" or set(mvus) == {"ternary-mvu"})
    # each approximate step within its bound; a deviation of the output from onnxruntime
    # stays within the sum of the steps' bounds here (measured: 0)
    steps = s["lowering"]["steps"]
    assert all(st["max_lsb"][t] <= st["bound_lsb"][t] for st in steps for t in st["bound_lsb"])
    assert s["max_error_lsb_vs_onnxruntime"] <= sum(max(st["bound_lsb"].values(), default=0)
                                                    for st in steps)
    assert s["fits"] is True


H, KV = 4, 2


@pytest.mark.parametrize("fmt,sim", [("qonnx", "icarus"),
                                     pytest.param("qcdq", "icarus", marks=pytest.mark.slow),
                                     pytest.param("qonnx", "verilator", marks=pytest.mark.slow)])
def test_decoder_layer_compiles_end_to_end(tmp_path, capsys, fmt, sim):
    path = bitnet_block.export_layer(tmp_path / f"layer_{fmt}.onnx", fmt, d=D, ffn=FFN,
                                     heads=H, kv_heads=KV, tokens=T)
    rc, s, err = _compile(capsys, path, "--target", "xczu28dr", "-o", tmp_path / "b",
                          "--sim", sim)
    if rc == 2 and "simulator" in err:
        pytest.skip(err.strip())
    assert rc == 0, err
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True
    assert s["cycles_match"] is True
    kernels = [k["kernel"] for k in s["kernels"]]
    assert kernels.count("rmsnorm") == 4 and kernels.count("rope") == 2
    assert kernels.count("attention-head") == 1 and kernels.count("lut-act") == 1
    assert kernels.count("eltwise") == 3  # two residual adds and the gate
    mvus = [k for k in kernels if k.endswith("-mvu")]
    assert len(mvus) == 7 and (fmt != "qonnx" or set(mvus) == {"ternary-mvu"})
    lowered = onnx.load(tmp_path / "b" / "lower" / "lowered.onnx")
    (att,) = [n for n in lowered.graph.node if n.op_type == "IntAttention"]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in att.attribute}
    assert attrs["causal"] == 1 and attrs["kv_heads"] == KV and attrs["heads"] == H
    steps = s["lowering"]["steps"]
    assert all(st["max_lsb"][t] <= st["bound_lsb"][t] for st in steps for t in st["bound_lsb"])
    assert s["max_error_lsb_vs_onnxruntime"] <= sum(max(st["bound_lsb"].values(), default=0)
                                                    for st in steps)


@pytest.fixture(scope="module")
def bitnet_layer(tmp_path_factory):
    from models.bitnet.config import BitNetConfig
    from models.bitnet.export import export_bitnet
    from models.bitnet.model import BitNetModel

    torch.manual_seed(0)
    cfg = BitNetConfig("micro", hidden=32, ffn=64, layers=1, heads=4, kv_heads=2, vocab=256,
                       max_seq=16, source="tests")
    out = tmp_path_factory.mktemp("bitnet_layer")
    export_bitnet(BitNetModel(cfg).eval(), out, seq=8)
    return out


@pytest.mark.parametrize("fmt,message", [
    ("qonnx", "node '/layer/attn/wq/Quant': scale is not a constant"),
    ("qcdq", "cannot lower RotaryEmbedding node 'RotaryEmbedding_0': its input is not quantized "
             "codes")])
def test_exported_layer_refuses_at_its_dynamic_quantizer(bitnet_layer, tmp_path, capsys, fmt,
                                                         message):
    """The exported layer's first projection reads a per-token absmax quantizer (its scale is
    computed from the data): one line, exit status 2, no build folder."""
    out = tmp_path / "b"
    rc, _, err = _compile(capsys, bitnet_layer / f"layer0.{fmt}.onnx", "--target", "xczu28dr",
                          "-o", out, "--sim", "none")
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
