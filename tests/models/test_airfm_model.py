"""AirFM-DDA: prediction task, baselines, window/global net, pipeline, hardware mapping."""

import json

import numpy as np
import pytest
import torch

from hwsim.errors import HwsimError
from hwsim.golden.common import attention_head as spec
from models.airfm import data as D
from models.airfm.hardware import attention_cost, head_params, window_case
from models.airfm.model import AirFMConfig, AirFMNet, fs_pe_coords
from models.channels.timevarying import ChannelSpec, generate

TINY = AirFMConfig(antennas=4, subcarriers=8, past=4, future=2, dim=8, layers=1,
                   window_angle=2, window_delay=4)


def _channels(n=4, T=6, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, 4, T, 8)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_baselines_exact_on_their_own_models():
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((3, 4, 1, 8)) + 1j * rng.standard_normal((3, 4, 1, 8))
            for _ in range(2))
    t = np.arange(6).reshape(1, 1, 6, 1)
    lin = a + b * t  # a channel linear in time: linear extrapolation is exact
    assert np.allclose(D.linear_extrapolation(lin, 4), lin[:, :, 4:])
    const = np.repeat(a, 6, axis=2)
    assert np.array_equal(D.last_value(const, 4), const[:, :, 4:])
    assert D.nmse_db_of(lin[:, :, 4:], D.last_value(lin, 4)) > -20  # and last value is not


def test_split_targets_invert_to_the_future_frames():
    H = _channels()
    ds = D.split(H, 4)
    assert ds.X.shape == (4, 8, 4, 8) and ds.Y.shape == (4, 4, 4, 8) and ds.future == 2
    assert np.abs(D.to_stf(ds.Y) - H[:, :, 4:]).max() < 1e-5 * np.abs(H).max()
    with pytest.raises(HwsimError, match="past frames"):
        D.split(H, 6)


def test_untrained_net_is_linear_extrapolation():
    """The skip starts as linear extrapolation expressed on Doppler bins, the head at zero."""
    H = _channels(T=TINY.past + TINY.future)
    ds = D.split(H, TINY.past)
    for att in ("window", "global"):
        net = AirFMNet(TINY.replace(attention=att)).eval()
        with torch.no_grad():
            y = net(torch.from_numpy(ds.X)).numpy()
        want = D.linear_extrapolation(H, TINY.past)
        assert np.abs(D.to_stf(y) - want).max() < 1e-5 * np.abs(want).max()


def test_window_attention_is_local_and_global_twin_is_not():
    torch.manual_seed(0)
    x = torch.randn(1, 2 * TINY.past, TINY.antennas, TINY.subcarriers)
    x2 = x.clone()
    x2[0, :, 0, 0] += 3.0  # one token of window (0, 0): angles 0-1, delays 0-3
    outs = {}
    for att in ("window", "global"):
        torch.manual_seed(1)
        net = AirFMNet(TINY.replace(attention=att)).eval()
        with torch.no_grad():
            net.head.weight.normal_()  # make the attention path visible at the output
            outs[att] = (net(x) - net(x2)).abs()[0].amax(0)  # (A, F)
    w = outs["window"]
    assert w[:2, :4].max() > 1e-3                                     # its own window changes
    assert w[2:, :].max() == 0 and w[:, 4:].max() == 0                # no other window does
    assert outs["global"][2:, 4:].max() > 1e-3                        # global: everything does
    # two blocks, the second on shifted windows: the change now reaches the next windows
    torch.manual_seed(1)
    net = AirFMNet(TINY.replace(layers=2)).eval()
    with torch.no_grad():
        net.head.weight.normal_()
        d2 = (net(x) - net(x2)).abs()[0].amax(0)
        assert d2[2:, :].max() > 1e-3 and d2[:, 4:].max() > 1e-3
        for blk in net.blocks:  # the shift is a permutation: windows undo exactly
            h = torch.randn(3, TINY.tokens, TINY.dim)
            assert torch.equal(blk._unwindows(blk._windows(h), 3), h)
    assert net.blocks[1].shift == (1, 2) and net.blocks[0].shift == (0, 0)
    n_w = sum(p.numel() for p in AirFMNet(TINY).parameters())
    n_g = sum(p.numel() for p in AirFMNet(TINY.replace(attention="global")).parameters())
    assert n_w == n_g  # same size


def test_fs_pe_coordinates_follow_the_frame_structure():
    c = fs_pe_coords(TINY)
    assert c.shape == (TINY.tokens, 2)
    sin_theta = c[::TINY.subcarriers, 0]
    assert torch.allclose(sin_theta, torch.tensor([-1.0, -0.5, 0.0, 0.5]))
    # delay bin d is d / (F·Δf) seconds; in units of the normal CP of a 14-symbol slot
    t_cp = TINY.frame_s / 14 * 144 / 2048
    assert torch.isclose(c[1, 1], torch.tensor(1 / (TINY.subcarriers * TINY.spacing_hz) / t_cp))


def test_config_rejects_bad_values():
    with pytest.raises(HwsimError, match="tile"):
        TINY.replace(window_angle=3)
    with pytest.raises(HwsimError, match="attention"):
        TINY.replace(attention="sparse")
    with pytest.raises(HwsimError, match="weight bits"):
        TINY.replace(weight_bits=2)
    with pytest.raises(HwsimError, match="AirFM input"):
        AirFMNet(TINY)(torch.zeros(1, 3, 4, 8))


def test_window_case_golden_is_the_attention_head_on_real_dda_codes():
    cfg = TINY
    H = generate(ChannelSpec(profile="CDL-D", speed_kmh=60.0, antennas=cfg.antennas,
                             frames=cfg.past + cfg.future, subcarriers=cfg.subcarriers), 1)
    ds = D.split(H, cfg.past)
    torch.manual_seed(0)
    net = AirFMNet(cfg)
    p = head_params(cfg, "window", lanes=4)
    case = window_case(net, ds.X[0], p, window=1)
    arr = case["arrays"]
    assert arr["kind"].tolist() == [spec.OP_CLEAR] + [spec.OP_KV] * 8 + [spec.OP_Q] * 8
    Q, K, V = arr["a"][9:], arr["a"][1:9], arr["b"][1:9]
    assert np.abs(Q).max() == 127 and np.abs(K).max() == 127 and np.abs(V).max() == 127
    o, amax = spec.attention_head(Q, K, V, int(arr["mult"]), int(arr["shift"]), p)
    assert np.array_equal(o, case["golden_o"]) and np.array_equal(amax, case["golden_amax"])


def test_attention_cost_window_vs_global():
    c = attention_cost(AirFMConfig())
    w, g = c["window"], c["global"]
    assert (w["window_tokens"], g["window_tokens"]) == (32, 256)
    # MACs: every query sees its window's w tokens → ratio = tokens / w exactly
    assert c["ratio_mac"] == 256 / 32
    assert g["actions"]["qk_mac"] == 2 * 256 * 256 * 16  # 2 layers × 256 q × 256 k × 16
    # cycles: per-query overheads (two reciprocals, drains) do not shrink with the window
    assert 1 < c["ratio_cycles"] < c["ratio_mac"]
    pw = head_params(AirFMConfig(), "window")
    assert w["cycles_per_window"] == 1 + 32 * pw.chunks + 32 * spec.query_cycles(pw, 32)


@pytest.mark.parametrize("input_scale", ["tensor", "token"])
def test_train_eval_export_pipeline_tiny(tmp_path, input_scale):
    from models.airfm.pipeline import evaluate, load_net, table, train_run

    torch.set_num_threads(1)
    base = ChannelSpec(antennas=TINY.antennas, frames=TINY.past + TINY.future,
                       subcarriers=TINY.subcarriers)
    run = tmp_path / "run"
    cfg = TINY.replace(input_scale=input_scale)
    meta = train_run(run, cfg, base, ["CDL-A"], [30.0], n_per=16, epochs=1, qat_epochs=1,
                     log=lambda s: None)
    q8 = load_net(run, "window_int8")[0]
    scale = q8.ina.act_quant.scale() if input_scale == "token" else None
    assert scale is None or tuple(scale.shape) == (1, TINY.tokens, 1)
    names = {f.name for f in run.iterdir()}
    assert {"window.safetensors", "global.safetensors", "window_int8.safetensors",
            "window_int4.safetensors", "int8.qonnx.onnx", "int8.qcdq.onnx", "int4.qonnx.onnx",
            "int4.qcdq.onnx", "run.json"} <= names
    assert not [f for f in tmp_path.iterdir() if f.name.startswith(".")]  # no staging left
    for bits in ("int8", "int4"):
        o = meta["onnx"][bits]
        # QONNX runs the same fake-quant float graph: float32 reassociation only
        assert o["qonnx_max_abs_diff"] <= 1e-4 * max(o["ref_max_abs"], 1.0)
        # QCDQ in onnxruntime: an int8 activation within float rounding of a rounding
        # threshold can land one code away and carry through the later layers
        assert o["qcdq_max_abs_diff"] <= 0.05 * max(o["ref_max_abs"], 1.0)
    res = evaluate(run, ["CDL-A", "CDL-E"], [30.0], n_test=8, out=tmp_path / "ev")
    assert [r["seen"] for r in res["rows"]] == [True, False]
    assert set(res["columns"]) == {"last_value", "linear", "window", "global", "window_int8",
                                   "window_int4"}
    assert all(np.isfinite(r[c]) for r in res["rows"] for c in res["columns"])
    assert "held out" in table(res)
    saved = json.loads((tmp_path / "ev" / "nmse.json").read_text())
    assert saved["rows"] == res["rows"] and (tmp_path / "ev" / "nmse.png").stat().st_size > 0


@pytest.mark.slow
def test_trained_window_net_beats_linear_extrapolation(tmp_path):
    """A minute of training on CDL-A/B/C at 30/60 km/h: better than both baselines there."""
    from models.airfm.pipeline import evaluate, train_run

    torch.set_num_threads(1)
    cfg = AirFMConfig()
    base = ChannelSpec(frames=cfg.past + cfg.future)
    train_run(tmp_path / "run", cfg, base, ["CDL-A", "CDL-B", "CDL-C"], [30.0, 60.0],
              n_per=64, epochs=6, qat_epochs=1, with_global=False, export=False,
              log=lambda s: None)
    res = evaluate(tmp_path / "run", ["CDL-B"], [60.0], n_test=64)
    r = res["rows"][0]
    assert r["window"] < r["linear"] - 1.0 and r["window"] < r["last_value"] - 1.0


def test_estimation_task_untrained_net_is_ls_and_lmmse_beats_ls(tmp_path):
    from models.airfm.pipeline import evaluate, train_run

    cfg = TINY.replace(task="estimation", future=1)
    H = generate(ChannelSpec(profile="CDL-B", antennas=4, frames=cfg.past, subcarriers=8), 6)
    ds = D.estimation_split(H, 10.0, 2, np.random.default_rng(0))
    assert ds.X.shape == (6, 2 * cfg.past, 4, 8) and ds.target().shape == (6, 4, 1, 8)
    assert ds.pilots.shape == (6, 4, 4)  # frame P−1: 8 / 2 pilot subcarriers × 4 antennas
    net = AirFMNet(cfg).eval()
    with torch.no_grad():
        y = net(torch.from_numpy(ds.X)).numpy()
    assert np.abs(D.to_stf(y) - ds.ls[:, :, -1:]).max() < 1e-5 * np.abs(ds.ls).max()
    with pytest.raises(HwsimError, match="future must be 1"):
        TINY.replace(task="estimation", future=2)
    torch.set_num_threads(1)
    base = ChannelSpec(antennas=4, frames=cfg.past, subcarriers=8)
    train_run(tmp_path / "run", cfg, base, ["CDL-B"], [30.0], n_per=32, epochs=1, qat_epochs=1,
              with_global=False, export=False, pilot_spacing=2, log=lambda s: None)
    res = evaluate(tmp_path / "run", ["CDL-B"], [30.0], n_test=32, snr_db=10.0)
    r = res["rows"][0]
    assert res["columns"][:2] == ["ls", "lmmse"]
    assert r["lmmse"] < r["ls"] - 1.0  # covariance-aware beats interpolation at 10 dB


def test_window_case_of_a_qat_net_uses_its_own_int8_codes():
    cfg = TINY.replace(weight_bits=8)
    H = generate(ChannelSpec(profile="CDL-A", antennas=4, frames=cfg.past + cfg.future,
                             subcarriers=8), 4, seed=2)
    ds = D.split(H, cfg.past)
    torch.manual_seed(0)
    net = AirFMNet(cfg).train()
    with torch.no_grad():
        net(torch.from_numpy(ds.X))  # Brevitas collects activation statistics
    p = head_params(cfg, "window", lanes=4)
    case = window_case(net, ds.X[0], p)
    arr = case["arrays"]
    Q, K, V = arr["a"][9:], arr["a"][1:9], arr["b"][1:9]
    q, k, v = case["float_qkv"]
    for codes, x, s in zip((Q, K, V), (q, k, v), case["scales"], strict=True):
        assert np.allclose(codes * s, x, rtol=0, atol=1e-6 * max(np.abs(x).max(), 1e-9))
    o, amax = spec.attention_head(Q, K, V, int(arr["mult"]), int(arr["shift"]), p)
    assert np.array_equal(o, case["golden_o"]) and np.array_equal(amax, case["golden_amax"])
