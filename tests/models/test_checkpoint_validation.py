"""The checks every checkpoint and run-folder loader shares (:mod:`hwsim.loading`), and the
sweep caches that read through them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from hwsim.errors import HwsimError
from hwsim.loading import (
    BOOL,
    build,
    check_meta,
    check_state,
    expected_state,
    fields_of,
    integer,
    list_of,
    maybe,
    number,
    read_json,
    read_npz,
    read_safetensors,
    text,
)


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


@dataclass(frozen=True)
class _Cfg:
    width: int
    scale: float = 1.0
    name: str = "a"
    bits: int | None = None
    on: bool = False

    def __post_init__(self):
        if self.width % 2:
            raise HwsimError(f"width must be even, not {self.width}")


SCHEMA = {"cfg": fields_of(_Cfg, width=integer(2, 64)), "tags": list_of(text(), 1),
          "rate": number(positive=True), "mode": text("x", "y"), "flag": maybe(BOOL),
          "extra": maybe({"n": integer(0)})}
GOOD = {"cfg": {"width": 4, "scale": 0.5, "bits": None}, "tags": ["t"], "rate": 2,
        "mode": "x", "other": [1, 2]}


def test_good_metadata_passes_and_builds():
    assert check_meta(GOOD, SCHEMA, "f.json") is GOOD
    assert build(_Cfg, GOOD["cfg"], "f.json", "cfg") == _Cfg(4, 0.5)
    check_meta({**GOOD, "flag": None, "extra": {"n": 0}}, SCHEMA, "f.json")


@pytest.mark.parametrize("meta, says", [
    ([1], "f.json must hold a JSON object, not list"),
    ({k: v for k, v in GOOD.items() if k != "rate"}, "f.json: rate is missing"),
    ({**GOOD, "rate": "2"}, 'f.json: rate must be a positive number, not "2"'),
    ({**GOOD, "rate": 0}, "rate must be a positive number, not 0"),
    ({**GOOD, "rate": float("inf")}, "rate must be a positive number, not inf"),
    ({**GOOD, "rate": 10 ** 400}, "rate must be a positive number"),
    ({**GOOD, "rate": True}, "rate must be a positive number, not true"),
    ({**GOOD, "mode": "z"}, "mode must be one of 'x', 'y', not \"z\""),
    ({**GOOD, "tags": []}, "tags must be a list of 1 or more items"),
    ({**GOOD, "tags": [3]}, "tags must be a list of 1 or more items, each a string"),
    ({**GOOD, "flag": 1}, "flag must be true or false, not 1"),
    ({**GOOD, "extra": {"n": -1}}, "extra.n must be a non-negative integer, not -1"),
    ({**GOOD, "extra": 5}, "extra must be a JSON object, not 5"),
    ({**GOOD, "cfg": "wide"}, 'cfg must be a JSON object, not "wide"'),
    ({**GOOD, "cfg": {}}, "cfg.width is missing"),
    ({**GOOD, "cfg": {"width": 4, "depth": 1}}, "cfg.depth is not a field of _Cfg"),
    ({**GOOD, "cfg": {"width": 100}}, "cfg.width must be an integer 2 … 64, not 100"),
    ({**GOOD, "cfg": {"width": 4.0}}, "cfg.width must be an integer 2 … 64, not 4.0"),
    ({**GOOD, "cfg": {"width": 4, "scale": "1"}}, "cfg.scale must be a finite number"),
    ({**GOOD, "cfg": {"width": 4, "bits": "8"}}, "cfg.bits must be an integer"),
    ({**GOOD, "cfg": {"width": 4, "on": 0}}, "cfg.on must be true or false, not 0"),
])
def test_bad_metadata_is_one_line_naming_the_key(meta, says):
    with pytest.raises(HwsimError) as e:
        check_meta(meta, SCHEMA, "f.json")
    assert says in _one_line(e)


def test_build_reports_the_dataclass_own_check():
    with pytest.raises(HwsimError) as e:
        build(_Cfg, {"width": 3}, "f.json", "cfg")
    assert _one_line(e) == "f.json: cfg: width must be even, not 3"


@pytest.mark.parametrize("content, says", [
    (None, "run file {p} does not exist"), (b"", "is not valid JSON"),
    (b'{"a": [1, 2', "is not valid JSON"), (b"[1]", "must hold a JSON object, not list"),
    (b"\xff\xfe", "cannot be read"), (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b"NaN", "must hold a JSON object, not float"),
    (b" " * (16 << 20) + b"{}", "more than metadata can be"),
])
def test_read_json(tmp_path, content, says):
    p = tmp_path / "run.json"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(HwsimError) as e:
        read_json(p, "run file")
    assert says.format(p=p) in _one_line(e)


def _model():
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))


@pytest.mark.parametrize("edit, says", [
    (lambda s: {}, "missing tensor '0.weight', '0.bias', '1.weight' and 4 more (7 of 7 missing)"),
    (lambda s: {k: v for k, v in s.items() if k != "0.bias"}, "missing tensor '0.bias' (1 of 7"),
    (lambda s: {**s, "2.weight": torch.zeros(1)}, "unknown tensor name '2.weight'"),
    (lambda s: {**s, "0.weight": torch.zeros(3, 2)},
     "tensor '0.weight' has shape (3, 2), the model expects (2, 3)"),
    (lambda s: {**s, "0.weight": torch.zeros(2, 3, dtype=torch.int64)},
     "tensor '0.weight' has dtype int64, the model expects floats"),
    (lambda s: {**s, "1.num_batches_tracked": torch.tensor(0.0)},
     "tensor '1.num_batches_tracked' has dtype float32, the model expects int64"),
    (lambda s: {**s, "0.bias": torch.tensor([0.0, float("nan")])}, "'0.bias' holds NaN"),
    (lambda s: {**s, "1.running_var": torch.tensor([1.0, -float("inf")])},
     "'1.running_var' holds infinity"),
])
def test_check_state_refuses(edit, says):
    want = _model().state_dict()
    check_state(dict(want), want, "ck")  # the unedited state passes
    with pytest.raises(HwsimError) as e:
        check_state(edit(dict(want)), want, "ck")
    assert _one_line(e) == f"ck: {says}" or says in _one_line(e)


def test_check_state_on_numpy_arrays_and_half_floats():
    want = {"w": np.zeros((2, 2), np.int64), "s": np.zeros(2, np.float32)}
    check_state({"w": np.ones((2, 2), np.int64), "s": np.ones(2, np.float16)}, want, "f")
    with pytest.raises(HwsimError, match="'w' has dtype int32, the model expects int64"):
        check_state({"w": np.ones((2, 2), np.int32), "s": np.ones(2, np.float32)}, want, "f")
    with pytest.raises(HwsimError, match="'s' holds NaN"):
        check_state({"w": want["w"], "s": np.array([0, np.nan], np.float32)}, want, "f")


def test_expected_state_allocates_nothing_for_a_huge_model():
    st = expected_state(lambda: torch.nn.Linear(1 << 20, 1 << 16))  # 256 GiB if allocated
    assert st["weight"].shape == (1 << 16, 1 << 20) and st["weight"].device.type == "meta"
    with pytest.raises(HwsimError, match="has shape"):
        check_state({"weight": torch.zeros(2, 2), "bias": torch.zeros(1 << 16)}, st, "ck")


def test_read_safetensors_and_npz_errors(tmp_path):
    p = tmp_path / "a.safetensors"
    with pytest.raises(HwsimError, match=r"checkpoint .* does not exist"):
        read_safetensors(p)
    save_file({"x": torch.zeros(4)}, str(p), metadata={"k": "v"})
    t, meta = read_safetensors(p)
    assert meta == {"k": "v"} and t["x"].shape == (4,)
    p.write_bytes(p.read_bytes()[:-3])
    with pytest.raises(HwsimError, match="not a readable safetensors file"):
        read_safetensors(p)
    z = tmp_path / "a.npz"
    np.savez(z, a=np.zeros(3), b=np.arange(3), c=np.array([1j, np.inf]))
    assert read_npz(z, {"a": "float", "b": "int"})["b"].tolist() == [0, 1, 2]
    for expected, says in (({"d": "float"}, "array 'd' missing"),
                           ({"a": "int"}, "'a' has dtype float64, expected int"),
                           ({"c": "complex"}, "'c' holds infinity")):
        with pytest.raises(HwsimError, match=says):
            read_npz(z, expected)
    np.savez(z, a=np.array([None], dtype=object))
    with pytest.raises(HwsimError, match=r"not a readable \.npz file"):
        read_npz(z, {"a": "float"})


# ---- the sweep caches read through the same checks ----------------------------------------
def _snn_cache(folder: Path) -> dict:
    from models.snn.classifier import SnnClassifier, SnnShape
    from models.snn.train import save_checkpoint

    folder.mkdir()
    torch.manual_seed(0)
    save_checkpoint(folder / "float.safetensors", SnnClassifier(SnnShape()), {"data": {}})
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2, (4, 35, 48, 48)).astype(np.uint8)
    np.savez_compressed(folder / "data.npz", x_train=x, y_train=np.arange(4) % 2, x_test=x,
                        y_test=np.arange(4) % 2, classes=10)
    (folder / "meta.json").write_text(json.dumps({"epochs": 1, "limit": 4}))
    return {"weights": 4, "acts": 8, "method": "ptq", "target": "xczu49dr",
            "context": {"checkpoint": str(folder), "qat_epochs": 1, "cost_samples": 1,
                        "lanes": 16}}


@pytest.mark.parametrize("case, says", [
    ("nan_weights", "holds NaN"), ("labels_missing", "array 'y_test' missing"),
    ("frames_float", "'x_train' has dtype float64, expected int"),
    ("labels_short", "are not N frame stacks and N labels"),
])
def test_snn_sweep_cache_corrupt(tmp_path, case, says):
    from models.snn.sweep import evaluate

    point = _snn_cache(tmp_path / "cache")
    f = tmp_path / "cache"
    if case == "nan_weights":
        from safetensors import safe_open

        with safe_open(str(f / "float.safetensors"), "pt") as s:
            t = {k: s.get_tensor(k) for k in s.keys()}  # noqa: SIM118
            meta = s.metadata()
        t["fc1.weight"][0, 0] = float("nan")
        save_file(t, str(f / "float.safetensors"), metadata=meta)
    else:
        with np.load(f / "data.npz") as z:
            d = {k: z[k] for k in z.files}
        if case == "labels_missing":
            del d["y_test"]
        elif case == "frames_float":
            d["x_train"] = d["x_train"].astype(np.float64)
        else:
            d["y_test"] = d["y_test"][:2]
        np.savez(f / "data.npz", **d)
    with pytest.raises(HwsimError) as e:
        evaluate(point)
    assert says in _one_line(e)


# ---- a sweep folder's finished points -----------------------------------------------------
@pytest.mark.parametrize("edit, says", [
    (lambda t: t[:len(t) // 2], "is not valid JSON"),
    (lambda t: "", "is not valid JSON"),
    (lambda t: "[1, 2]", "must hold a JSON object, not list"),
    (lambda t: json.dumps({k: v for k, v in json.loads(t).items() if k != "result"}),
     "result is missing"),
    (lambda t: json.dumps({**json.loads(t), "seconds": "fast"}), "seconds must be"),
    (lambda t: json.dumps({**json.loads(t), "point": 4}), "point must be a JSON object"),
])
def test_sweep_corrupt_point_file_refused_before_any_work(tmp_path, edit, says):
    from hwsim.sweep import run_sweep

    log = tmp_path / "calls.log"
    grid = [{"weights": w, "acts": 8, "log": str(log), "delay": 0.0} for w in (2, 4)]
    run_sweep(grid[:1], "tests.sweep.evaluators:logged_product", tmp_path / "out",
              progress=False)
    (f,) = (tmp_path / "out" / "points").glob("*.json")
    f.write_text(edit(f.read_text()))
    before = log.read_text()
    with pytest.raises(HwsimError) as e:
        run_sweep(grid, "tests.sweep.evaluators:logged_product", tmp_path / "out",
                  progress=False)
    msg = _one_line(e)
    assert str(f) in msg and says in msg and msg.endswith("delete it to run that point again")
    assert log.read_text() == before  # the new point was not run


@pytest.mark.parametrize("content, says", [
    (None, "no readable results.json"), ("", "no readable results.json"),
    ("[" * 100000, "no readable results.json"), ("{\"a\": 1}", "must be a list of JSON objects"),
    ("[1, 2]", "must be a list of JSON objects"), ("[]", "no finished points"),
    ('[{"context": {}}]', "is not a sweep of snn"),
])
def test_flow_sweep_folder_checked(tmp_path, content, says):
    from hwsim.flow.common import check_sweep

    (tmp_path / "metric_vs_bits.png").write_bytes(b"png")
    if content is not None:
        (tmp_path / "results.json").write_text(content)
    with pytest.raises(HwsimError) as e:
        check_sweep("snn", tmp_path)
    assert says in _one_line(e)


# ---- event files and image archives (data, never unpickled) -------------------------------
def _events(tmp_path: Path, **change) -> Path:
    d = {"t": np.arange(4, dtype=np.int64), "x": np.array([0, 1, 2, 3], np.int16),
         "y": np.zeros(4, np.int16), "p": np.array([1, -1, 1, 1], np.int8),
         "offsets": np.array([0, 2, 4]), "labels": np.array([3, 5]), "width": np.array(4),
         "height": np.array(2), "window_us": np.array(1000)}
    d.update(change)
    np.savez(tmp_path / "e.npz", **{k: v for k, v in d.items() if v is not None})
    return tmp_path / "e.npz"


@pytest.mark.parametrize("change, says", [
    ({"x": np.array(["a"] * 4)}, "'x' has dtype <U1, expected int"),
    ({"t": np.array([0.5] * 4)}, "'t' has dtype float64, expected int"),
    ({"labels": None}, "array 'labels' missing"),
    ({"x": np.array([0, 1, 2, 4], np.int16)}, "outside the 4×2 sensor"),
    ({"p": np.array([1, 0, 1, 1], np.int8)}, "polarity other than ±1"),
    ({"y": np.zeros(3, np.int16)}, "1-D arrays of one length"),
    ({"width": np.array(0)}, "positive scalars"),
    ({"offsets": np.array([0, 3, 2])}, "offsets do not match"),
    ({"offsets": np.array([1, 2, 4])}, "offsets do not match"),
])
def test_event_file_checked(tmp_path, change, says):
    from models.snn.events import EventSet

    assert len(EventSet.load(_events(tmp_path))) == 2
    with pytest.raises(HwsimError) as e:
        EventSet.load(_events(tmp_path, **change))
    assert says in _one_line(e)


@pytest.mark.parametrize("data, says", [
    (b"", "not a readable .npz file"), (b"PK\x03\x04junk", "not a readable .npz file")])
def test_event_and_image_archives_truncated(tmp_path, data, says):
    from models.snn.events import EventSet, load_images

    f = _events(tmp_path)
    f.write_bytes(data or f.read_bytes()[:0])
    with pytest.raises(HwsimError) as e:
        EventSet.load(f)
    assert says in _one_line(e)
    with pytest.raises(HwsimError, match="cannot read images from"):
        load_images(f)
