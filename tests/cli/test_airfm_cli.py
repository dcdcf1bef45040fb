"""``hwsim airfm``: bad input is one line and exit 2 with nothing written; a tiny run works."""

import pytest

from hwsim.cli import main


@pytest.mark.parametrize("argv, msg", [
    (["train", "--profiles", "CDL-Z"], "unknown channel profile 'CDL-Z'"),
    (["train", "--speeds", "fast"], "speeds must be comma-separated numbers"),
    (["train", "--window", "3x8"], "must tile the 8×32"),
    (["train", "--window", "big"], "window must be ANGLExDELAY"),
    (["train", "--past", "1"], "past frames must be at least 2"),
])
def test_train_bad_input(tmp_path, capsys, argv, msg):
    out = tmp_path / "run"
    assert main(["airfm", *argv, "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwsim: error:") and msg in err[0]
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_eval_bad_run(tmp_path, capsys):
    assert main(["airfm", "eval", str(tmp_path / "nope")]) == 2
    assert "not an AirFM run folder" in capsys.readouterr().err
    assert main(["airfm", "eval", str(tmp_path), "--profiles", "UMa"]) == 2
    assert list(tmp_path.iterdir()) == []


def test_tiny_train_then_eval(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["airfm", "train", "-o", str(run), "--profiles", "CDL-B", "--speeds", "30",
                 "--per", "8", "--epochs", "1", "--qat-epochs", "1", "--past", "4",
                 "--future", "1", "--antennas", "4", "--subcarriers", "8", "--dim", "8",
                 "--layers", "1", "--window", "2x4", "--no-global"]) == 0
    assert (run / "run.json").is_file() and not (run / "global.safetensors").exists()
    capsys.readouterr()
    assert main(["airfm", "eval", str(run), "--profiles", "CDL-B,TDL-C", "--speeds", "30",
                 "--test", "4"]) == 0
    out = capsys.readouterr().out
    assert "| CDL-B | 30 | 100 | seen |" in out and "| TDL-C | 30 | 100 | held out |" in out
    assert (run / "eval" / "nmse.png").is_file()
    assert main(["airfm", "eval", str(run), "--profiles", "CDL-B", "--speeds", "30",
                 "--test", "4", "--delay-spread-ns", "300", "-o", str(tmp_path / "ds")]) == 0
    assert "| CDL-B | 30 | 300 | held out |" in capsys.readouterr().out
    assert main(["airfm", "eval", str(run), "--delay-spread-ns", "-5"]) == 2


def test_bench_airfm_cost_without_simulation(capsys):
    import json

    assert main(["bench", "airfm", "--sim", "none", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["trained"] is False and "rtl" not in r
    assert r["cost"]["ratio_mac"] == 8.0 and 1 < r["cost"]["ratio_cycles"] < 8.0
    assert main(["bench", "airfm", "--sim", "none", "--layer", "5"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "layer must be 0 … 1" in err[0]
