"""``hwsim swiftchannel train|eval`` end to end on a tiny geometry, and its bad-input errors."""

import csv
import json

import pytest

from hwsim.cli import main

TINY = ["--bs-ant", "4", "--subcarriers", "16", "--space-comp", "1", "--train", "48",
        "--epochs", "1", "--qat-epochs", "1"]


def test_train_then_eval_writes_table_csv_png(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["swiftchannel", "train", "-o", str(run), *TINY]) == 0
    assert {p.name for p in run.iterdir()} == {"run.json", "float.safetensors",
                                              "int8.safetensors", "lmmse.npz",
                                              "int8.qonnx.onnx", "int8.qcdq.onnx"}
    meta = json.loads((run / "run.json").read_text())
    # exports vs the torch model with the gate as float sigmoid(clip(x)) − 0.5: qonnx's Quant
    # rounds x/s + zp as Brevitas does (exact); onnxruntime's QuantizeLinear adds the zero point
    # after rounding, so exact ties land one code apart and that step can carry through later
    # layers: outputs may differ by a few codes, on average by less than half a code
    diff = meta["onnx_max_abs_diff"]
    assert diff["qonnx"] == 0.0
    assert diff["qcdq_mean_abs_lsb"] < 0.5
    assert main(["swiftchannel", "eval", str(run), "--snr", "0:20:10", "--test", "16",
                 "-o", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert "LMMSE" in out and "int8" in out
    rows = list(csv.DictReader((tmp_path / "ev" / "nmse.csv").open()))
    assert [float(r["snr_db"]) for r in rows] == [0.0, 10.0, 20.0]
    # the baselines improve with SNR (noise at the pilots falls by 10 dB per step)
    assert float(rows[2]["lmmse_db"]) < float(rows[0]["lmmse_db"]) - 5
    assert (tmp_path / "ev" / "nmse.png").stat().st_size > 1000
    # the benchmark on the same run: the composed pipeline's latency is its cycle formula
    capsys.readouterr()
    assert main(["bench", "swiftchannel", "--run", str(run), "--test", "8", "--no-synth",
                 "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    rows_, cols_ = r["input_shape"]
    assert (rows_, cols_) == (4, 8)  # 16 subcarriers / 4, 4 BS × 2 UE antennas
    S = 3  # taps = 3
    assert r["latency_cycles"] == cols_ + 9 + S * rows_ * cols_ + 9 * (S * (cols_ + 2) + 3) + 8
    assert r["latency_us"] == pytest.approx(r["latency_cycles"] / 200)
    assert r["latency_us"] < r["latency_us_layer_sequential"]
    assert -12 < r["nmse_db_ls"] < -8  # LS at 10 dB SNR: noise power 0.1 at the pilots
    assert all(isinstance(r[k], float) for k in ("nmse_db_int8", "nmse_db_float"))


@pytest.mark.parametrize("argv, msg", [
    (["train", "-o", "{tmp}/x", "--subcarriers", "50"], "freq_comp (4) must divide subcarriers"),
    (["train", "-o", "{tmp}/x", "--bs-ant", "6", "--space-comp", "4"], "space_comp (4) must divide"),
    (["eval", "{tmp}", "--snr", "10:0:5"], "is empty"),
    (["eval", "{tmp}", "--snr", "abc"], "not start:stop:step"),
    (["eval", "{tmp}/none", "--snr", "0:10:5"], "not a SwiftChannel run folder"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, msg):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["swiftchannel", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwsim: error:") and msg in err and "\n" not in err
    assert not (tmp_path / "x").exists()
