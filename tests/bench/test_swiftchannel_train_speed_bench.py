"""``hwsim bench swiftchannel-train-speed`` at a tiny size: both variants train, same maths."""

import json

from hwsim.bench import BENCHES
from hwsim.cli import main


def test_tiny_branches_vs_folded(capsys):
    assert BENCHES["swiftchannel-train-speed"] == "swiftchannel_train_speed"
    argv = ["bench", "swiftchannel-train-speed", "--batch", "2", "--steps", "1", "--rounds", "1",
            "--bs-ant", "4", "--subcarriers", "16", "--space-comp", "1"]
    assert main([*argv, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["geometry"]["bs_ant"] == 4 and r["steps"] == 1 and r["batch"] == 2
    assert r["ms_per_step_branches"] > 0 and r["ms_per_step_folded"] > 0
    assert r["speedup"] == r["ms_per_step_branches"] / r["ms_per_step_folded"]
    assert r["max_rel_weight_diff"] < 1e-3  # the same function: float32 reordering only
    assert main(argv) == 0
    assert "speed-up folded/branches" in capsys.readouterr().out


def test_bad_count_is_one_line(capsys):
    assert main(["bench", "swiftchannel-train-speed", "--steps", "0"]) == 2
    err = capsys.readouterr().err
    assert "steps must be a positive integer" in err and err.count("\n") == 1
