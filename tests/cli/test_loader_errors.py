"""Corrupt checkpoints and run folders through the CLI: every one is refused with exit status 2
and one ``hwsim: error:`` line naming the file and what is wrong; no traceback, nothing
written, and never a model evaluated on weights the file does not hold.

Each loader gets a valid file or folder (a freshly initialized model saved the way the
training command saves it, or one tiny training run), checked to load, then corrupted one way
per case: tensors deleted (all, one), renamed, reshaped, of another dtype, NaN, infinity; the
file truncated or empty; metadata with a key missing, of the wrong type, out of range, or not a
JSON object.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.numpy import save_file as save_np
from safetensors.torch import save_file

from hwsim.cli import main


def _refused(capsys, argv, *expect, unwritten=()):
    """``main(argv)`` exits 2 with exactly one ``hwsim: error:`` line holding every string of
    ``expect``; no path of ``unwritten`` exists afterwards."""
    capsys.readouterr()
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    lines = cap.err.strip().splitlines()
    assert rc == 2, cap.err
    assert len(lines) == 1 and lines[0].startswith("hwsim: error: "), cap.err
    assert "Traceback" not in cap.err and not cap.out.strip()
    for e in expect:
        assert e in lines[0], lines[0]
    for p in unwritten:
        assert not Path(p).exists(), p
    return lines[0]


# ---- corrupting a safetensors file ------------------------------------------------------
def _read(path: Path, fw: str = "pt"):
    with safe_open(str(path), fw) as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()  # noqa: SIM118


def _biggest(t: dict) -> str:
    return max(t, key=lambda k: (np.prod(t[k].shape), k))


def _nan(v, value):
    v = v.clone() if isinstance(v, torch.Tensor) else v.copy()
    v.reshape(-1)[0] = value
    return v


#: name → (edit of the tensor dict, what the error line says)
TENSOR_EDITS = {
    "all_deleted": (lambda t: {}, "missing tensor"),
    "one_deleted": (lambda t: {k: v for k, v in t.items() if k != _biggest(t)},
                    "missing tensor"),
    "renamed": (lambda t: {(k + "_renamed" if k == _biggest(t) else k): v
                           for k, v in t.items()}, "missing tensor"),
    "extra": (lambda t: {**t, "extra.weight": torch.zeros(3)}, "unknown tensor name 'extra"),
    "wrong_shape": (lambda t: {k: (v.reshape(-1)[:-1] if k == _biggest(t) else v)
                               for k, v in t.items()}, "has shape"),
    "wrong_dtype": (lambda t: {k: (v.to(torch.int32) if k == _biggest(t) else v)
                               for k, v in t.items()}, "has dtype int32"),
    "nan": (lambda t: {k: (_nan(v, float("nan")) if k == _biggest(t) else v)
                       for k, v in t.items()}, "holds NaN"),
    "inf": (lambda t: {k: (_nan(v, float("inf")) if k == _biggest(t) else v)
                       for k, v in t.items()}, "holds infinity"),
}


def _corrupt_tensors(path: Path, case: str) -> str:
    if case == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[:len(data) // 2])
        return "not a readable safetensors file"
    if case == "empty":
        path.write_bytes(b"")
        return "not a readable safetensors file"
    edit, says = TENSOR_EDITS[case]
    t, meta = _read(path)
    save_file({k: v.contiguous() for k, v in edit(t).items()}, str(path), metadata=meta)
    return says


FILE_CASES = [*TENSOR_EDITS, "truncated", "empty"]


# ---- SNN checkpoints (`hwsim snn eval`) ---------------------------------------------------
@pytest.fixture(scope="module")
def snn_checkpoints(tmp_path_factory):
    from models.snn.classifier import QuantSnnClassifier, SnnClassifier, SnnShape
    from models.snn.train import save_checkpoint

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("snn")
    m = SnnClassifier(SnnShape())
    save_checkpoint(folder / "float.safetensors", m, {"data": {"limit": 40}})
    save_checkpoint(folder / "int4.safetensors", QuantSnnClassifier.from_float(m, 4, 12),
                    {"data": {"limit": 40}})
    return folder


def test_snn_valid_checkpoint_evaluates(snn_checkpoints, capsys):
    assert main(["snn", "eval", str(snn_checkpoints / "float.safetensors"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["kind"] == "float" and out["test_samples"] > 0


@pytest.mark.parametrize("kind", ["float", "int4"])
@pytest.mark.parametrize("case", FILE_CASES)
def test_snn_corrupt_tensors(snn_checkpoints, tmp_path, capsys, kind, case):
    ck = tmp_path / f"{kind}.safetensors"
    shutil.copy(snn_checkpoints / ck.name, ck)
    says = _corrupt_tensors(ck, case)
    _refused(capsys, ["snn", "eval", ck, "--onnx", tmp_path / "x.onnx"], str(ck), says,
             unwritten=[tmp_path / "x.onnx"])


SNN_META = {
    "no_metadata": (None, "no hwsim_snn metadata"),
    "not_json": ("{", "not valid JSON"),
    "not_a_dict": ("[1, 2]", "must hold a JSON object"),
    "kind_missing": (lambda m: m.pop("kind"), "kind is missing"),
    "kind_unknown": (lambda m: m.update(kind="spiky"), "kind must be one of"),
    "shape_not_dict": (lambda m: m.update(shape=[48]), "shape must be a JSON object"),
    "hidden_str": (lambda m: m["shape"].update(hidden="512"),
                   "shape.hidden must be an integer 1 … 65536, not \"512\""),
    "hidden_bool": (lambda m: m["shape"].update(hidden=True), "shape.hidden must be"),
    "classes_missing": (lambda m: m["shape"].pop("classes"), "shape.classes is missing"),
    "shape_unknown_key": (lambda m: m["shape"].update(depth=3), "shape.depth is not a field"),
    "kernel_over_side": (lambda m: m["shape"].update(kernel=60), "larger than shape.side"),
    "huge": (lambda m: m["shape"].update(side=1024, kernel=1, stride=1, channels=256,
                                        hidden=65536), "metadata describes"),
    "weight_bits_range": (lambda m: m.update(weight_bits=99),
                          "weight_bits must be an integer 2 … 8, not 99"),
    "mem_bits_missing": (lambda m: m.pop("mem_bits"), "mem_bits is missing"),
    "data_canvas": (lambda m: m["data"].update(canvas="big"), "data.canvas must be"),
    "data_not_dict": (lambda m: m.update(data=7), "data must be a JSON object"),
}


@pytest.mark.parametrize("case", SNN_META)
def test_snn_corrupt_metadata(snn_checkpoints, tmp_path, capsys, case):
    ck = tmp_path / "int4.safetensors"
    t, meta = _read(snn_checkpoints / ck.name)
    edit, says = SNN_META[case]
    if edit is None:
        header = None
    elif isinstance(edit, str):
        header = {"hwsim_snn": edit}
    else:
        info = json.loads(meta["hwsim_snn"])
        edit(info)
        header = {"hwsim_snn": json.dumps(info)}
    save_file(t, str(ck), metadata=header)
    _refused(capsys, ["snn", "eval", ck], str(ck), says)


# ---- AirFM run folders (`hwsim airfm eval`) -----------------------------------------------
@pytest.fixture(scope="module")
def airfm_run(tmp_path_factory):
    """A run folder as `hwsim airfm train` writes it, with a freshly initialized window net."""
    from models.airfm.model import AirFMConfig, AirFMNet
    from models.channels.timevarying import ChannelSpec

    run = tmp_path_factory.mktemp("airfm") / "run"
    run.mkdir()
    cfg = AirFMConfig(antennas=4, subcarriers=8, past=4, future=1, dim=8, layers=1,
                      window_angle=2, window_delay=4)
    torch.manual_seed(0)
    net = AirFMNet(cfg)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()},
              str(run / "window.safetensors"))
    q = AirFMNet(cfg.replace(weight_bits=8))  # QAT twin: one training-mode forward
    q.load_state_dict(net.state_dict(), strict=False)  # calibrates its Brevitas scales
    q.train()
    q(torch.randn(2, 8, 4, 8))
    save_file({k: v.detach().contiguous() for k, v in q.eval().state_dict().items()},
              str(run / "window_int8.safetensors"))
    meta = {"config": cfg.to_dict(), "channel": ChannelSpec(antennas=4, frames=5,
                                                            subcarriers=8).to_dict(),
            "train_profiles": ["CDL-B"], "train_speeds_kmh": [30.0], "n_per": 8, "epochs": 1,
            "qat_epochs": 1, "seed": 0, "task": "prediction", "pilot_spacing": 4}
    (run / "run.json").write_text(json.dumps(meta))
    return run


AIRFM_EVAL = ["--profiles", "CDL-B", "--speeds", "30", "--test", "2"]


def test_airfm_valid_run_evaluates(airfm_run, tmp_path, capsys):
    assert main(["airfm", "eval", str(airfm_run), *AIRFM_EVAL, "-o", str(tmp_path / "ev"),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["columns"][-2:] == ["window", "window_int8"]


@pytest.mark.parametrize("case", FILE_CASES)
def test_airfm_corrupt_tensors(airfm_run, tmp_path, capsys, case):
    run = shutil.copytree(airfm_run, tmp_path / "run")
    says = _corrupt_tensors(run / "window.safetensors", case)
    _refused(capsys, ["airfm", "eval", run, *AIRFM_EVAL], "window.safetensors", says,
             unwritten=[run / "eval"])


def _scale(t: dict) -> str:
    return next(k for k in sorted(t) if k.endswith("scaling_impl.value"))


#: the QAT net's calibrated Brevitas scales: names a fresh net lacks, still checked
AIRFM_SCALES = {
    "scale_nan": (lambda t: {**t, _scale(t): torch.full_like(t[_scale(t)], float("nan"))},
                  "holds NaN"),
    "scale_inf": (lambda t: {**t, _scale(t): torch.full_like(t[_scale(t)], float("inf"))},
                  "holds infinity"),
    "scale_deleted": (lambda t: {k: v for k, v in t.items() if k != _scale(t)},
                      "missing tensor 'blocks.0"),
    "scale_shape": (lambda t: {**t, _scale(t): torch.ones(7)}, "scaling_impl.value"),
    "extra": (lambda t: {**t, "blocks.0.extra.value": torch.ones(1)},
              "unknown tensor name 'blocks.0.extra.value'"),
    "weight_nan": (lambda t: {k: (_nan(v, float("nan")) if k == _biggest(t) else v)
                              for k, v in t.items()}, "holds NaN"),
}


@pytest.mark.parametrize("case", AIRFM_SCALES)
def test_airfm_corrupt_qat_scales(airfm_run, tmp_path, capsys, case):
    run = shutil.copytree(airfm_run, tmp_path / "run")
    f = run / "window_int8.safetensors"
    t, meta = _read(f)
    edit, says = AIRFM_SCALES[case]
    save_file({k: v.contiguous() for k, v in edit(t).items()}, str(f), metadata=meta)
    _refused(capsys, ["airfm", "eval", run, *AIRFM_EVAL], "window_int8.safetensors", says,
             unwritten=[run / "eval"])


def _json_edit(path: Path, edit):
    if isinstance(edit, str | bytes):
        path.write_bytes(edit.encode() if isinstance(edit, str) else edit)
        return
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta))


def _truncate(path: Path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


#: run.json edits shared by the AirFM and SwiftChannel cases: (edit, what the line says)
RUN_JSON_FILE = {
    "empty": ("", "not valid JSON"),
    "truncated": (_truncate, "not valid JSON"),
    "not_a_dict": ("[1, 2, 3]", "must hold a JSON object, not list"),
    "not_utf8": (b"\xff\xfe{}", "cannot be read"),
}

AIRFM_META = {
    "config_missing": (lambda m: m.pop("config"), "config is missing"),
    "dim_str": (lambda m: m["config"].update(dim="8"), "config.dim must be"),
    "layers_range": (lambda m: m["config"].update(layers=0),
                     "config.layers must be an integer 1 … 64, not 0"),
    "dim_huge": (lambda m: m["config"].update(dim=10 ** 6), "config.dim must be"),
    "window_does_not_tile": (lambda m: m["config"].update(window_angle=3), "must tile"),
    "unknown_config_key": (lambda m: m["config"].update(heads=2), "config.heads is not a field"),
    "weight_bits_range": (lambda m: m["config"].update(weight_bits=5), "weight bits"),
    "channel_frames": (lambda m: m["channel"].update(frames=9), "does not fit config"),
    "channel_profile": (lambda m: m["channel"].update(profile="XYZ"), "channel profile"),
    "channel_speed": (lambda m: m["channel"].update(speed_kmh="fast"),
                      "channel.speed_kmh must be"),
    "profiles_str": (lambda m: m.update(train_profiles="CDL-B"), "train_profiles must be a list"),
    "speeds_range": (lambda m: m.update(train_speeds_kmh=[1e9]), "train_speeds_kmh must be"),
    "speeds_nan": (lambda m: m.update(train_speeds_kmh=[float("nan")]),
                   "train_speeds_kmh must be"),
    "pilot_spacing": (lambda m: m.update(pilot_spacing=-1), "pilot_spacing must be"),
}


@pytest.mark.parametrize("case", [*RUN_JSON_FILE, *AIRFM_META])
def test_airfm_corrupt_run_json(airfm_run, tmp_path, capsys, case):
    run = shutil.copytree(airfm_run, tmp_path / "run")
    f = run / "run.json"
    edit, says = {**RUN_JSON_FILE, **AIRFM_META}[case]
    (edit(f) if edit is _truncate else _json_edit(f, edit))
    _refused(capsys, ["airfm", "eval", run, *AIRFM_EVAL], "run.json", says,
             unwritten=[run / "eval"])


def test_airfm_missing_variant_file(airfm_run, tmp_path, capsys):
    from hwsim.errors import HwsimError
    from models.airfm.pipeline import load_net

    run = shutil.copytree(airfm_run, tmp_path / "run")
    with pytest.raises(HwsimError, match="no window_int4 model"):
        load_net(run, "window_int4")


# ---- SwiftChannel run folders (`hwsim swiftchannel eval`, `train --from-float`) ------------
@pytest.fixture(scope="module")
def sc_run(tmp_path_factory):
    """A run folder written with `hwsim swiftchannel train`'s own savers from an untrained
    student (its int8 model from one forward on random channels): no training, no export."""
    import dataclasses

    from models.channels import DEFAULT, Geometry, Lmmse
    from models.swiftchannel.model import SwiftChannelNet, reparameterize
    from models.swiftchannel.pipeline import save_int_model
    from models.swiftchannel.qat import QuantSwiftChannel, int_model
    from models.swiftchannel.train import ChannelSet, config_for

    torch.manual_seed(0)
    run = tmp_path_factory.mktemp("sc") / "run"
    run.mkdir()
    geom = Geometry(**{**DEFAULT.to_dict(), "bs_ant": 4, "subcarriers": 16, "space_comp": 1})
    cfg = config_for(geom)
    plain = reparameterize(SwiftChannelNet(cfg)).eval()
    rng = np.random.default_rng(0)
    H = (rng.standard_normal((8, *geom.full_shape))
         + 1j * rng.standard_normal((8, *geom.full_shape))).astype(np.complex64)
    x = torch.from_numpy(ChannelSet(geom, H, np.full(8, 10.0)).inputs(rng)[:4])
    save_file({k: v.contiguous() for k, v in plain.state_dict().items()},
              str(run / "float.safetensors"))
    save_int_model(int_model(QuantSwiftChannel.from_float(plain), x), run / "int8.safetensors")
    lm = Lmmse(geom, H)
    np.savez(run / "lmmse.npz", R_hp=lm.R_hp.astype(np.complex64),
             R_pp=lm.R_pp.astype(np.complex64), pidx=lm._pidx)
    (run / "run.json").write_text(json.dumps({
        "geometry": geom.to_dict(), "config": dataclasses.asdict(cfg), "seed": 0,
        "n_train": 8, "epochs": 1, "loss": "nmse", "teacher_epochs": 0, "loss_db": [-3.0]}))
    return run


SC_EVAL = ["--snr", "10", "--test", "2"]


def test_swiftchannel_valid_run_evaluates(sc_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(["swiftchannel", "eval", str(sc_run), *SC_EVAL, "-o", str(tmp_path / "ev"),
                 "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["rows"]) == 1


@pytest.mark.parametrize("case", FILE_CASES)
def test_swiftchannel_corrupt_float_student(sc_run, tmp_path, capsys, case):
    run = shutil.copytree(sc_run, tmp_path / "run")
    says = _corrupt_tensors(run / "float.safetensors", case)
    _refused(capsys, ["swiftchannel", "eval", run, *SC_EVAL], "float.safetensors", says,
             unwritten=[run / "eval"])
    if case == "nan":  # the QAT-only path reads the same file through the same check
        _refused(capsys, ["swiftchannel", "train", "-o", tmp_path / "new", "--from-float", run,
                          "--train", "32", "--qat-epochs", "1"], "float.safetensors", says,
                 unwritten=[tmp_path / "new"])


SC_INT8 = {
    "array_deleted": (lambda a, s: a.pop("block1.c2.mult"), "missing tensor 'block1.c2.mult'"),
    "all_deleted": (lambda a, s: a.clear(), "missing tensor"),
    "array_renamed": (lambda a, s: a.update({"head.weights": a.pop("head.w")}),
                      "missing tensor 'head.w'"),
    "unknown_array": (lambda a, s: a.update(extra=np.zeros(2, np.int64)),
                      "unknown tensor name 'extra'"),
    "w_shape": (lambda a, s: a.update({"tail.w": a["tail.w"][:, :1]}),
                "tensor 'tail.w' has shape"),
    "lut_shape": (lambda a, s: a.update(lut=a["lut"][:100]), "tensor 'lut' has shape"),
    "w_float": (lambda a, s: a.update({"up.w": a["up.w"].astype(np.float32)}),
                "tensor 'up.w' has dtype float32, the model expects int64"),
    "w_range": (lambda a, s: a["head.w"].reshape(-1).__setitem__(0, 300),
                "'head.w' holds values outside -128 … 127"),
    "shift_range": (lambda a, s: a["head.shift"].__setitem__(0, 99), "'head.shift' holds"),
    "scalar_missing": (lambda a, s: s.pop("s_in"), "s_in is missing"),
    "scalar_type": (lambda a, s: s.update({"block0.lut_shift": "3"}),
                    "block0.lut_shift must be"),
    "scalar_range": (lambda a, s: s.update(z_out=999), "z_out must be an integer 0 … 255"),
    "scale_nonpositive": (lambda a, s: s.update(s_out=0.0), "s_out must be a positive number"),
    "blocks_range": (lambda a, s: s.update(blocks=10 ** 9), "blocks must be an integer 0 … 64"),
    "blocks_mismatch": (lambda a, s: s.update(blocks=2), "the run's student has"),
    "scalars_not_dict": ("[]", "scalars metadata must be a JSON object"),
    "scalars_not_json": ("{", "no scalars metadata"),
    "no_scalars": (None, "no scalars metadata"),
}


@pytest.mark.parametrize("case", [*SC_INT8, "truncated", "empty"])
def test_swiftchannel_corrupt_int8_model(sc_run, tmp_path, capsys, case):
    run = shutil.copytree(sc_run, tmp_path / "run")
    f = run / "int8.safetensors"
    if case in ("truncated", "empty"):
        says = _corrupt_tensors(f, case)
    else:
        a, meta = _read(f, "np")
        edit, says = SC_INT8[case]
        if edit is None:
            meta = None
        elif isinstance(edit, str):
            meta = {"scalars": edit}
        else:
            s = json.loads(meta["scalars"])
            edit(a, s)
            meta = {"scalars": json.dumps(s)}
        save_np({k: np.ascontiguousarray(v) for k, v in a.items()}, str(f), metadata=meta)
    _refused(capsys, ["swiftchannel", "eval", run, *SC_EVAL], "int8.safetensors", says,
             unwritten=[run / "eval"])


SC_LMMSE = {
    "deleted": (lambda z: z.pop("R_pp"), "array 'R_pp' missing"),
    "shape": (lambda z: z.update(R_hp=z["R_hp"][:3]), "array 'R_hp' has shape"),
    "real": (lambda z: z.update(R_pp=z["R_pp"].real.copy()), "'R_pp' has dtype float32"),
    "nan": (lambda z: z["R_hp"].reshape(-1).__setitem__(0, np.nan), "'R_hp' holds NaN"),
    "pidx": (lambda z: z.update(pidx=z["pidx"][::-1].copy()), "pilot positions"),
    "object_array": (lambda z: z.update(pidx=np.array([{"a": 1}], dtype=object)),
                     "not a readable .npz"),
}


@pytest.mark.parametrize("case", [*SC_LMMSE, "truncated", "empty", "missing"])
def test_swiftchannel_corrupt_lmmse(sc_run, tmp_path, capsys, case):
    run = shutil.copytree(sc_run, tmp_path / "run")
    f = run / "lmmse.npz"
    if case == "truncated":
        _truncate(f)
        says = "not a readable .npz"
    elif case == "empty":
        f.write_bytes(b"")
        says = "not a readable .npz"
    elif case == "missing":
        f.unlink()
        says = "no LMMSE covariance"
    else:
        with np.load(f) as z:
            arrays = {k: z[k] for k in z.files}
        edit, says = SC_LMMSE[case]
        edit(arrays)
        np.savez(f, **arrays)
    _refused(capsys, ["swiftchannel", "eval", run, *SC_EVAL], "lmmse.npz" if case != "missing"
             else str(run), says, unwritten=[run / "eval"])


SC_META = {
    "geometry_missing": (lambda m: m.pop("geometry"), "geometry is missing"),
    "bs_ant_str": (lambda m: m["geometry"].update(bs_ant="4"), "geometry.bs_ant must be"),
    "freq_comp_divides": (lambda m: m["geometry"].update(freq_comp=5), "must divide"),
    "config_blocks_range": (lambda m: m["config"].update(blocks=0),
                            "config.blocks must be an integer 1 … 64, not 0"),
    "config_unknown_key": (lambda m: m["config"].update(depth=2), "config.depth is not a field"),
    "loss_db_str": (lambda m: m.update(loss_db="low"), "loss_db must be a list"),
    "loss_unknown": (lambda m: m.update(loss="l7"), "loss must be one of"),
    "feat_mismatch": (lambda m: m["config"].update(feat=10), "has shape"),
}


@pytest.mark.parametrize("case", [*RUN_JSON_FILE, *SC_META])
def test_swiftchannel_corrupt_run_json(sc_run, tmp_path, capsys, case):
    run = shutil.copytree(sc_run, tmp_path / "run")
    f = run / "run.json"
    edit, says = {**RUN_JSON_FILE, **SC_META}[case]
    (edit(f) if edit is _truncate else _json_edit(f, edit))
    where = "float.safetensors" if case == "feat_mismatch" else "run.json"
    _refused(capsys, ["swiftchannel", "eval", run, *SC_EVAL], where, says,
             unwritten=[run / "eval"])


# ---- BitNet checkpoints (`hwsim export bitnet`) -------------------------------------------
@pytest.fixture(scope="module")
def bitnet_checkpoint(tmp_path_factory):
    from models.bitnet.checkpoint import save_checkpoint
    from models.bitnet.model import BitNetModel
    from tests.models.bitnet.conftest import MICRO

    torch.manual_seed(0)
    return save_checkpoint(BitNetModel(MICRO, quantized=True),
                           tmp_path_factory.mktemp("bitnet") / "ck")


@pytest.mark.parametrize("case", FILE_CASES)
def test_bitnet_corrupt_tensors(bitnet_checkpoint, tmp_path, capsys, case):
    ck = shutil.copytree(bitnet_checkpoint, tmp_path / "ck")
    says = _corrupt_tensors(ck / "model.safetensors", case)
    _refused(capsys, ["export", "bitnet", "--checkpoint", ck, "-o", tmp_path / "onnx",
                      "--no-verify"], "model.safetensors", says, unwritten=[tmp_path / "onnx"])


BITNET_META = {
    "format_missing": (lambda m: m.pop("format"), "not an hwsim BitNet checkpoint"),
    "config_not_dict": (lambda m: m.update(config="tiny"), "config must be a JSON object"),
    "config_unknown_key": (lambda m: m["config"].update(depth=3), "unknown BitNet config keys"),
    "config_missing_key": (lambda m: m["config"].pop("hidden"), "config"),
    "quantized_str": (lambda m: m.update(quantized="no"), "quantized must be true or false"),
}


@pytest.mark.parametrize("case", [*RUN_JSON_FILE, *BITNET_META])
def test_bitnet_corrupt_meta(bitnet_checkpoint, tmp_path, capsys, case):
    ck = shutil.copytree(bitnet_checkpoint, tmp_path / "ck")
    f = ck / "meta.json"
    edit, says = {**RUN_JSON_FILE, **BITNET_META}[case]
    (edit(f) if edit is _truncate else _json_edit(f, edit))
    _refused(capsys, ["export", "bitnet", "--checkpoint", ck, "-o", tmp_path / "onnx",
                      "--no-verify"], "meta.json", says, unwritten=[tmp_path / "onnx"])


@pytest.mark.parametrize("case", ["nan", "int8", "missing"])
def test_bitnet_corrupt_hugging_face_folder(tmp_path, capsys, case):
    from tests.models.bitnet.conftest import MICRO
    from tests.models.bitnet.test_bitnet_hf import _tiny_folder

    def mutate(state):
        k = "model.layers.0.mlp.down_proj.weight"
        if case == "nan":
            state[k][0, 0] = float("nan")
        elif case == "int8":
            state[k] = state[k].to(torch.int8)
        else:
            del state[k]

    ck = _tiny_folder(tmp_path, MICRO, mutate)
    says = {"nan": "'layers.0.ffn.w2.weight' holds NaN",
            "int8": "'layers.0.ffn.w2.weight' has dtype int8, the model expects floats",
            "missing": "missing tensor 'layers.0.ffn.w2.weight'"}[case]
    _refused(capsys, ["export", "bitnet", "--checkpoint", ck, "-o", tmp_path / "onnx",
                      "--no-verify"], str(ck), says, unwritten=[tmp_path / "onnx"])
