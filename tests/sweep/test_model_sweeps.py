"""`hwsim sweep swiftchannel|airfm|snn`: a tiny real sweep per model, and bad input."""

import json

import numpy as np
import pytest

from hwsim.cli import main
from hwsim.sweep.run import model_sweep

#: the smallest float models the points start from (prepare options)
TINY = {"swiftchannel": {"steps": 1, "n_train": 48, "n_test": 16}, "airfm": {"steps": 1, "per": 8},
        "snn": {"steps": 1, "limit": 20}}
METRIC = {"swiftchannel": "nmse_db", "airfm": "nmse_db", "snn": "accuracy"}
COST = {"swiftchannel": "energy_uj", "airfm": "energy_uj", "snn": "energy_nj"}


@pytest.mark.parametrize("model", ["swiftchannel", "airfm", "snn"])
def test_tiny_sweep(tmp_path, model):
    acts = (8,) if model != "snn" else (16,)
    res = model_sweep(model, tmp_path / "s", weights=(2, 8), acts=acts, progress=False,
                      options=TINY[model])
    rows = {r["weights"]: r for r in res["rows"]}
    assert set(rows) == {2, 8}
    for r in rows.values():
        assert np.isfinite(r[METRIC[model]]) and r[COST[model]] > 0
    if model == "snn":
        assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows.values())
    else:  # two-bit weights cost fewer weight bits than eight-bit ones: less energy
        assert rows[2]["energy_uj"] < rows[8]["energy_uj"]
        assert rows[2]["weight_kbits"] * 4 == pytest.approx(rows[8]["weight_kbits"])
    for f in ("results.csv", "results.json", "sweep.md", "sweep.html", "pareto.png"):
        assert (tmp_path / "s" / f).exists(), f
    again = model_sweep(model, tmp_path / "s", weights=(2, 8), acts=acts, progress=False,
                        options=TINY[model])
    assert json.dumps(again["rows"], sort_keys=True) == json.dumps(res["rows"], sort_keys=True)


@pytest.mark.parametrize("args, message", [
    (["swiftchannel", "--weights", "7"],
     "swiftchannel cannot run 7-bit weights; supported: 2, 3, 4, 5, 6, 8"),
    (["swiftchannel", "--target", "vitallm"],
     "swiftchannel does not map to target 'vitallm'; targets: xczu49dr, xczu48dr, xczu28dr"),
    (["airfm", "--acts", "3"], "airfm cannot run 3-bit activations; supported: 4, 5, 6, 8"),
    (["airfm", "--target", "ecp5"], "airfm does not map to target 'ecp5'"),
    (["snn", "--acts", "4"], "snn cannot run 4-bit activations; supported: 6, 8, 10, 12, 16"),
    (["snn", "--weights", "1"], "snn cannot run 1-bit weights"),
])
def test_bad_input_exit_2(tmp_path, capsys, args, message):
    assert main(["sweep", *args, "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hwsim: error: {message}") and err.count("\n") == 1
    assert not (tmp_path / "s").exists()


def test_qat_point_fine_tunes(tmp_path):
    model = "airfm"  # (the tiny SNN's 4 test samples cannot show a change of accuracy)
    kw = {"weights": (2,), "acts": (8,), "progress": False, "options": TINY[model]}
    ptq = model_sweep(model, tmp_path / "s", method="ptq", **kw)["rows"][0]
    qat = model_sweep(model, tmp_path / "s", method="qat", **kw)["rows"][0]
    assert qat["method"] == "qat" and np.isfinite(qat[METRIC[model]])
    # same float start and the same quantizers; the fine-tune moves the metric
    assert qat[f"float_{METRIC[model]}"] == ptq[f"float_{METRIC[model]}"]
    assert qat[METRIC[model]] != ptq[METRIC[model]]
