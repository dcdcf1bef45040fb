"""``hwsim swiftchannel train|eval`` end to end on a tiny geometry, and its bad-input errors."""

import csv
import json

import numpy as np
import pytest

from hwsim.cli import main
from models.swiftchannel.ablation import points, uint8_output_floor
from models.swiftchannel.pipeline import load_run

TINY = ["--bs-ant", "4", "--subcarriers", "16", "--space-comp", "1", "--train", "48",
        "--epochs", "1", "--qat-epochs", "1"]


def test_train_then_eval_writes_table_csv_png(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["swiftchannel", "train", "-o", str(run), *TINY]) == 0
    assert {p.name for p in run.iterdir()} == {"run.json", "float.safetensors",
                                              "int8.safetensors", "lmmse.npz",
                                              "int8.qonnx.onnx", "int8.qcdq.onnx"}
    meta = json.loads((run / "run.json").read_text())
    # both integer ONNX graphs and the golden reproduce the QAT model's output codes exactly
    d = meta["onnx"]
    assert d["codes"] > 0 and d["qonnx_mismatches"] == d["qcdq_mismatches"] == 0
    assert d["golden_mismatches"] == 0
    assert meta["qat_lr"] == 1e-3 and meta["qat_snrs_db"] == [5, 10, 15, 20, 25, 30]
    assert main(["swiftchannel", "eval", str(run), "--snr", "0:20:10", "--test", "16",
                 "-o", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr().out
    assert "LMMSE" in out and "int8" in out
    rows = list(csv.DictReader((tmp_path / "ev" / "nmse.csv").open()))
    assert [float(r["snr_db"]) for r in rows] == [0.0, 10.0, 20.0]
    # the baselines improve with SNR (noise at the pilots falls by 10 dB per step)
    assert float(rows[2]["lmmse_db"]) < float(rows[0]["lmmse_db"]) - 5
    # the Sionna-rule LS beside hwsim's: a number per SNR (which one wins depends on how much
    # of the grid lies past the edge pilots: here 3 of 16 subcarriers)
    assert all(-60 < float(r["ls_sionna_db"]) < 10 for r in rows)
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
    assert -15 < r["nmse_db_ls_sionna"] < 5
    assert all(isinstance(r[k], float) for k in ("nmse_db_int8", "nmse_db_float"))
    # QAT only, from this run's float student, into a new folder
    run2 = tmp_path / "run2"
    assert main(["swiftchannel", "train", "-o", str(run2), "--from-float", str(run), "--train",
                 "48", "--qat-epochs", "1", "--qat-snrs", "10,20", "--qat-distill", "0.05"]) == 0
    meta2 = json.loads((run2 / "run.json").read_text())
    assert meta2["from_float"] == str(run) and meta2["qat_snrs_db"] == [10, 20]
    assert meta["qat_distill"] == 0 and meta2["qat_distill"] == 0.05
    assert meta2["loss_db"] == meta["loss_db"] and meta2["onnx"]["qcdq_mismatches"] == 0
    assert (run2 / "float.safetensors").read_bytes() == (run / "float.safetensors").read_bytes()
    # the rounding ablation of the run's integer model (it checks itself against the golden)
    capsys.readouterr()
    assert main(["swiftchannel", "ablate", str(run2), "--test", "4", "--snr", "10",
                 "--json"]) == 0
    row = json.loads(capsys.readouterr().out)["snrs"][0]
    assert set(row["points"]) == set(points(load_run(run2)[2]))
    assert "block0.out" in row["points"] and "block0.sum" not in row["points"]  # fused gate
    assert row["output_floor"]["best_grid_db"] <= row["output_floor"]["run_grid_db"] + 1e-9
    assert main(["swiftchannel", "ablate", str(run2), "--test", "4", "--snr", "10"]) == 0
    out = capsys.readouterr().out
    assert "every activation exact" in out and "uint8 output floor" in out


def test_uint8_output_floor_matches_uniform_rounding_noise():
    """A float estimate 30 dB below the channel, rounded to step s: the per-sample NMSE grows by
    the rounding noise s²/12 per real component against a channel power of 1 (0.5 per
    component), i.e. by 10·log10(1 + (s²/6) / 10⁻³) dB; 64 × 24 × 32 channels make the sample
    mean's spread ≪ the 0.03 dB tolerance, and at z = 127 the grid spans ±4.5σ (no clipping
    worth counting)."""
    from models.channels import pack_real

    rng = np.random.default_rng(0)
    shape = (64, 24, 32)
    H = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    E = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * np.sqrt(1e-3 / 2)
    s = 0.025
    floor = uint8_output_floor(H, pack_real(H + E), s, 127)
    assert floor["float"] == pytest.approx(-30.0, abs=0.1)
    assert floor["run_grid_db"] == pytest.approx(10 * np.log10(1 + s * s / 6 / 1e-3), abs=0.03)
    # a finer grid rounds less; the best one still pays something
    assert 0 < floor["best_grid_db"] < floor["run_grid_db"]
    assert floor["best_scale"] < s


@pytest.mark.parametrize("scalars, old", [({"s_in": 1.0}, "power-of-two"),
                                           ({"format": "multiplier-v1"}, "multiplier-v1")])
def test_older_int8_model_fails_with_one_line(tmp_path, capsys, scalars, old):
    from safetensors.numpy import save_file

    run = tmp_path / "old"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"geometry": {}, "config": {}}))
    save_file({"head.exp": np.zeros(2, np.int64)}, str(run / "int8.safetensors"),
              metadata={"scalars": json.dumps(scalars)})
    from hwsim.errors import HwsimError
    from models.swiftchannel.pipeline import load_int_model

    with pytest.raises(HwsimError, match="--from-float") as e:
        load_int_model(run / "int8.safetensors")
    assert f"older format ({old}" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("argv, msg", [
    (["train", "-o", "{tmp}/x", "--subcarriers", "50"], "freq_comp (4) must divide subcarriers"),
    (["train", "-o", "{tmp}/x", "--bs-ant", "6", "--space-comp", "4"], "space_comp (4) must divide"),
    (["eval", "{tmp}", "--snr", "10:0:5"], "is empty"),
    (["eval", "{tmp}", "--snr", "abc"], "not start:stop:step"),
    (["eval", "{tmp}/none", "--snr", "0:10:5"], "not a SwiftChannel run folder"),
    (["ablate", "{tmp}/none"], "not a SwiftChannel run folder"),
    (["ablate", "{tmp}", "--snr", "abc"], "not start:stop:step"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, msg):
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert main(["swiftchannel", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwsim: error:") and msg in err and "\n" not in err
    assert not (tmp_path / "x").exists()


def test_qat_loss_choices_are_the_training_losses(tmp_path):
    """The CLI spells the loss names without importing torch; they must be train.LOSSES."""
    import torch

    from hwsim.cli.swiftchannel import QAT_LOSSES
    from hwsim.errors import HwsimError
    from models.channels import Geometry
    from models.swiftchannel.pipeline import QAT_LOSS, train_run
    from models.swiftchannel.train import LOSSES

    assert set(QAT_LOSSES) == set(LOSSES) and QAT_LOSS in LOSSES
    with pytest.raises(HwsimError, match="unknown QAT loss"):
        train_run(tmp_path / "x", Geometry(), qat_loss="mse")
    with pytest.raises(HwsimError, match="unknown loss 'l1'"):
        train_run(tmp_path / "x", Geometry(), loss="l1")
    with pytest.raises(HwsimError, match="distillation weight must be 0 or more"):
        train_run(tmp_path / "x", Geometry(), qat_distill=-1.0)
    assert not (tmp_path / "x").exists()
    # the losses on one batch: geo ≤ balanced ≤ nmse (geometric ≤ arithmetic mean)
    y = torch.randn(4, 2, 8, 4)
    p = y + torch.randn(4, 2, 8, 4) * torch.tensor([0.01, 0.1, 0.3, 1.0]).reshape(4, 1, 1, 1)
    g, b, n = (float(LOSSES[k](p, y)) for k in ("geo", "balanced", "nmse"))
    assert g < b < n and b == pytest.approx((g * n) ** 0.5, rel=1e-5)
