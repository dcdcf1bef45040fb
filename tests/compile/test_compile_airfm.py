"""AirFM-DDA through ``hwsim compile``: the QAT network with ``hw_graph`` (window-major tokens,
quantized residual stream and probabilities) exported to QONNX and QCDQ; its transformer
blocks (LayerNorms, q/k/v/o projections, window attention, ReLU MLP, residual adds) compile
to RTL equal to the golden graph on Icarus, cycles equal to the composed formula."""

import json

import numpy as np
import pytest
import torch
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.lower import lower
from hwsim.golden.common.attention_head import attention_head
from models.airfm.model import AirFMConfig, AirFMNet, window_order
from quant.onnx import export_brevitas
from quant.qtype import INT8, requantize

CFG = AirFMConfig(antennas=4, subcarriers=8, past=4, future=2, dim=8, layers=1,
                  window_angle=2, window_delay=4, weight_bits=8, hw_graph=True,
                  shift_windows=False)


def _net(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    net = AirFMNet(cfg)
    net.train()
    with torch.no_grad():  # set the activation scales
        for _ in range(4):
            net(torch.randn(2, 2 * cfg.past, cfg.antennas, cfg.subcarriers))
    return net.eval()


def _blocks(net):
    """The transformer part: the embedded tokens' quantizer and the blocks."""
    return torch.nn.Sequential(net.tq, *net.blocks)


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    net = _net()
    folder = tmp_path_factory.mktemp("airfm")
    h = torch.randn(1, CFG.tokens, CFG.dim)
    return {fmt: export_brevitas(_blocks(net), h, folder / f"blocks_{fmt}.onnx", fmt)
            for fmt in ("qonnx", "qcdq")}


def test_window_order_is_a_permutation_window_by_window():
    o = window_order(CFG).numpy()
    assert sorted(o) == list(range(CFG.tokens))
    w = CFG.window_tokens
    for i in range(CFG.tokens // w):  # each window's cells: 2 angles × 4 delays of the grid
        a, d = np.divmod(o[i * w:(i + 1) * w], CFG.subcarriers)
        assert len(set(a)) == CFG.window_angle and len(set(d)) == CFG.window_delay
        assert a.max() - a.min() == CFG.window_angle - 1 and d.max() - d.min() == 3


def test_hw_graph_net_is_the_plain_net_up_to_its_extra_quantizers():
    """Same weights: the window-major net gives the grid-order net's output, within the
    rounding (and clipping, after a short calibration) of the quantizers it adds."""
    net = _net()
    plain = AirFMNet(CFG.replace(hw_graph=False))
    plain.load_state_dict(net.state_dict(), strict=False)
    plain.eval()
    x = torch.randn(3, 2 * CFG.past, CFG.antennas, CFG.subcarriers)
    with torch.no_grad():
        a, b = net(x), plain(x)
    assert a.shape == b.shape
    assert float(((a - b) ** 2).sum() / (b ** 2).sum()) < 1e-3  # −30 dB


def test_window_attention_lowers_to_one_op_per_block_equal_to_the_kernel(exports):
    g = frontend.load(exports["qonnx"])
    x = np.random.default_rng(0).standard_normal((1, CFG.tokens, CFG.dim)).astype(np.float32)
    lowered, report = lower(g, verify_inputs=[{g.graph.input[0].name: x}])
    att = [n for n in lowered.graph.node if n.op_type == "IntWindowAttention"]
    assert len(att) == CFG.layers
    assert not [n for n in lowered.graph.node if n.op_type == "Reshape"]
    step = report.step("LowerWindowAttention")
    assert step.bound_lsb and all(step.max_lsb[t] <= b for t, b in step.bound_lsb.items())
    # the op on random codes == the attention-head kernel run on each window
    op = getCustomOp(att[0])
    rng = np.random.default_rng(1)
    q, k, v = (rng.integers(-128, 128, (1, CFG.tokens, CFG.dim)).astype(np.int8)
               for _ in range(3))
    ctx = dict(zip(att[0].input, (q, k, v), strict=True))
    op.execute_node(ctx, lowered.graph)
    w, g_ = CFG.window_tokens, op.get_nodeattr
    p = op.params(q.shape)
    for i in range(CFG.tokens // w):
        s = slice(i * w, (i + 1) * w)
        o, amax = attention_head(q[0, s].astype(np.int64), k[0, s].astype(np.int64),
                                 v[0, s].astype(np.int64), g_("score_mult"),
                                 g_("score_shift"), p)
        want = requantize(o.astype(np.int64) * amax[:, None], g_("out_mult"), g_("out_shift"),
                          INT8)
        assert np.array_equal(ctx[att[0].output[0]][0, s], want)


@pytest.mark.parametrize("fmt,sim", [("qonnx", "icarus"), ("qcdq", "icarus"),
                                     pytest.param("qcdq", "verilator", marks=pytest.mark.slow)])
def test_airfm_blocks_compile_to_rtl_equal_to_golden(exports, tmp_path, capsys, fmt, sim):
    rc = main(["compile", str(exports[fmt]), "--target", "xczu28dr", "-o", str(tmp_path / "b"),
               "--sim", sim, "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True and s["cycles_match"]
    kernels = [k["kernel"] for k in s["kernels"]]
    assert kernels.count("attention-head") == CFG.layers
    assert set(kernels) == {"int8-mvu", "layernorm", "attention-head", "eltwise"}
    bound = max(max(st["bound_lsb"].values(), default=0) for st in s["lowering"]["steps"])
    assert s["max_error_lsb_vs_onnxruntime"] <= bound


def test_whole_token_graph_is_refused_at_the_positional_encoding(tmp_path, capsys):
    """The whole net on tokens (what a hw_graph run exports): the positional encoding is a
    linear layer on constant features added to every token, which no kernel builds; the
    refusal names it and writes nothing."""
    from models.airfm.model import AirFMTokens

    net = _net()
    t = net.grid_to_tokens(torch.randn(1, 2 * CFG.past, CFG.antennas, CFG.subcarriers))
    f = export_brevitas(AirFMTokens(net), t, tmp_path / "net.onnx", "qonnx")
    out = tmp_path / "b"
    rc = main(["compile", str(f), "--target", "xczu28dr", "-o", str(out), "--sim", "none",
               "--input", str(_save(tmp_path, t)), "--json"])
    assert rc == 2 and not out.exists()
    assert "'/pe/Gemm'" in capsys.readouterr().err


def _save(folder, t):
    path = folder / "x.npy"
    np.save(path, t.numpy().astype(np.float32))
    return path
