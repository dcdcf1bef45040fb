"""`hwsim events convert`, `hwsim snn train|eval`: outputs, and bad input → one line, exit 2."""

import json

import numpy as np
import pytest

from hwsim.cli import main
from models.snn.events import EventSet


def _one_error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwsim: error: ")
    return err[0]


def test_events_convert_sign_mnist_csv(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = ["label," + ",".join(f"pixel{i}" for i in range(1, 785))]
    rows += [",".join(map(str, [lab, *rng.integers(0, 256, 784)])) for lab in (3, 7)]
    (tmp_path / "s.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "ev.npz"
    assert main(["events", "convert", str(tmp_path / "s.csv"), "-o", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    es = EventSet.load(out)
    assert summary["images"] == 2 and es.labels.tolist() == [3, 7]
    assert summary["events"] == es.t.size > 0 and (es.width, es.height) == (48, 48)


@pytest.mark.parametrize("content,msg", [
    (None, "(N, H, W)"),
    ("", "is empty"),
    ("label," + ",".join(f"pixel{i}" for i in range(1, 785)) + "\n", "no images"),
])
def test_events_convert_bad_input(tmp_path, capsys, content, msg):
    if content is None:
        src = tmp_path / "flat.npy"
        np.save(src, np.zeros((3, 64)))  # images of the wrong shape
    else:
        src = tmp_path / "bad.csv"
        src.write_text(content)
    out = tmp_path / "ev.npz"
    assert main(["events", "convert", str(src), "-o", str(out)]) == 2
    assert msg in _one_error_line(capsys)
    assert not out.exists()


def test_snn_train_and_eval(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["snn", "train", "--limit", "30", "--epochs", "1", "--qat-epochs", "1",
                 "--bits", "4", "-o", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {p.name for p in out.iterdir()} == {"float.safetensors", "int4.safetensors",
                                               "int4_step.onnx", "report.json"}
    n = report["data"]["test"]
    assert report["integer"]["int4"]["equal_spike_counts"] == n
    assert report["onnx"]["int4"]["equal_spike_counts"] == n
    assert main(["snn", "eval", str(out / "int4.safetensors"), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["test_samples"] == n and ev["accuracy"] == report["accuracy"]["int4"]
    assert ev["integer"]["equal_predictions"] == n


def test_snn_bad_input(tmp_path, capsys):
    np.save(tmp_path / "flat.npy", np.zeros((12, 64)))
    out = tmp_path / "run"
    assert main(["snn", "train", "--images", str(tmp_path / "flat.npy"), "-o", str(out)]) == 2
    assert "(N, H, W)" in _one_error_line(capsys)
    assert not out.exists()
    assert main(["snn", "eval", str(tmp_path / "missing.safetensors")]) == 2
    assert "does not exist" in _one_error_line(capsys)
    assert main(["snn", "train", "--canvas", "32", "-o", str(out)]) == 2
    assert "--canvas" in _one_error_line(capsys)
