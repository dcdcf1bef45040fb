"""AirFM-DDA through ``hwsim compile``: the QAT network with ``hw_graph`` (window-major tokens
with the FS-PE features appended on the host, quantized residual stream and probabilities)
exported on tokens (``AirFMTokens``) to QONNX and QCDQ compiles whole — embedding, skip,
LayerNorms, q/k/v/o projections, window attention, ReLU MLP, residual adds, head — to RTL
equal to the golden graph on Icarus, cycles equal to the composed formula."""

import json

import numpy as np
import pytest
import torch
from qonnx.custom_op.registry import getCustomOp

from hwsim.cli import main
from hwsim.compile import frontend
from hwsim.compile.lower import lower
from hwsim.golden.common.attention_head import attention_head
from models.airfm import data as D
from models.airfm.model import AirFMConfig, AirFMNet, AirFMTokens, window_order
from models.channels.timevarying import ChannelSpec, generate
from quant.onnx import export_brevitas
from quant.qtype import INT8, requantize

CFG = AirFMConfig(antennas=4, subcarriers=8, past=4, future=2, dim=8, layers=1,
                  window_angle=2, window_delay=4, weight_bits=8, hw_graph=True,
                  shift_windows=False)


def _net(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    net = AirFMNet(cfg)
    with torch.no_grad():  # a trained head is not zero (an all-zero head has no scale)
        net.head.weight.normal_(0.0, 0.3)
    net.train()
    with torch.no_grad():  # set the activation scales
        for _ in range(4):
            net(torch.randn(2, 2 * cfg.past, cfg.antennas, cfg.subcarriers))
    return net.eval()


def _dda_tokens(net, n=1):
    """Window-major tokens of real DDA inputs (a CDL channel, linear-extrapolation split)."""
    c = net.cfg
    H = generate(ChannelSpec(profile="CDL-C", speed_kmh=60.0, antennas=c.antennas,
                             frames=c.past + c.future, subcarriers=c.subcarriers), n, seed=3)
    return net.grid_to_tokens(torch.from_numpy(D.split(H, c.past).X))


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    net = _net()
    folder = tmp_path_factory.mktemp("airfm")
    t = _dda_tokens(net)
    np.save(folder / "x.npy", t.numpy())
    files = {fmt: export_brevitas(AirFMTokens(net), t, folder / f"net_{fmt}.onnx", fmt)
             for fmt in ("qonnx", "qcdq")}
    return {**files, "x": folder / "x.npy"}


def test_window_order_is_a_permutation_window_by_window():
    o = window_order(CFG).numpy()
    assert sorted(o) == list(range(CFG.tokens))
    w = CFG.window_tokens
    for i in range(CFG.tokens // w):  # each window's cells: 2 angles × 4 delays of the grid
        a, d = np.divmod(o[i * w:(i + 1) * w], CFG.subcarriers)
        assert len(set(a)) == CFG.window_angle and len(set(d)) == CFG.window_delay
        assert a.max() - a.min() == CFG.window_angle - 1 and d.max() - d.min() == 3


def test_hw_graph_net_is_the_grid_order_net_with_pe_on_the_host():
    """Float, same weights: the window-major net with the PE features appended to the tokens
    (one ``embed`` on ``2P + 16`` features) is the grid-order net with its separate ``pe``."""
    torch.manual_seed(0)
    plain = AirFMNet(CFG.replace(weight_bits=None, hw_graph=False)).eval()
    hw = AirFMNet(CFG.replace(weight_bits=None)).eval()
    sd = {k: v for k, v in plain.state_dict().items() if not k.startswith(("pe.", "embed."))}
    P2 = 2 * CFG.past
    with torch.no_grad():
        plain.head.weight.normal_()
        sd["head.weight"] = plain.head.weight.clone()
        sd["embed.weight"] = torch.cat([plain.embed.weight, plain.pe.weight], dim=1)
        sd["embed.bias"] = plain.embed.bias + plain.pe.bias
        sd["skip.weight"] = torch.cat([plain.skip.weight, torch.zeros(2 * CFG.future, 16)], 1)
    hw.load_state_dict(sd)
    x = torch.randn(3, P2, CFG.antennas, CFG.subcarriers)
    with torch.no_grad():
        a, b = hw(x), plain(x)
        t = hw.grid_to_tokens(x)
    assert t.shape == (3, CFG.tokens, P2 + 16)
    assert float((a - b).abs().max()) < 1e-5 * float(b.abs().max())


def test_window_attention_lowers_to_one_op_per_block_equal_to_the_kernel(exports):
    g = frontend.load(exports["qonnx"])
    x = np.load(exports["x"])
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


@pytest.mark.slow  # the AirFM flow's end-to-end test compiles the QONNX export in the default tier
@pytest.mark.parametrize("fmt,sim", [("qonnx", "icarus"), ("qcdq", "icarus"),
                                     ("qcdq", "verilator")])
def test_airfm_compiles_to_rtl_equal_to_golden(exports, tmp_path, capsys, fmt, sim):
    rc = main(["compile", str(exports[fmt]), "--target", "xczu28dr", "-o", str(tmp_path / "b"),
               "--input", str(exports["x"]), "--sim", sim, "--json"])
    cap = capsys.readouterr()
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["unsupported"] == [] and s["rtl_equals_golden"] is True and s["cycles_match"]
    kernels = [k["kernel"] for k in s["kernels"]]
    assert kernels.count("attention-head") == CFG.layers
    assert kernels.count("layernorm") == 2 * CFG.layers + 1
    assert set(kernels) == {"int8-mvu", "layernorm", "attention-head", "eltwise"}
    bound = max(max(st["bound_lsb"].values(), default=0) for st in s["lowering"]["steps"])
    assert s["max_error_lsb_vs_onnxruntime"] <= bound


@pytest.mark.slow
def test_stacked_blocks_lower_within_their_bounds_on_any_input(tmp_path):
    """Two blocks: each norm, layer and add reads codes that an earlier node of the same kind
    moves by its rounding; such a node is measured in a pass of its own, so the bounds hold
    on the compiler's default (normal) verify inputs too, not only on a DDA sample."""
    from dataclasses import replace

    net = _net(replace(CFG, layers=2))
    path = export_brevitas(AirFMTokens(net), _dda_tokens(net), tmp_path / "two.onnx", "qonnx")
    graph = frontend.load(path)
    name = graph.graph.input[0].name
    rng = np.random.default_rng(0)
    inputs = [{name: rng.standard_normal(graph.get_tensor_shape(name)).astype(np.float32)}
              for _ in range(1)]
    _, report = lower(graph, verify_inputs=inputs)
    names = [s.name for s in report.steps]
    assert "LowerLayerNorm (pass 2)" in names and "LowerLinearLayers (pass 2)" in names
    for s in report.steps:
        assert all(s.max_lsb[t] <= s.bound_lsb[t] for t in s.max_lsb), s.name
