"""`hwsim sweep bitnet`: a real (tiny) sweep end to end, and bad input."""

import json
import subprocess
import sys

import pytest


def hwsim(*args):
    return subprocess.run([sys.executable, "-m", "hwsim.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("args, message", [
    (["bitnet", "--weights", "7"], "bitnet cannot run 7-bit weights; supported: 2, 3, 4, 5, 6, 8"),
    (["bitnet", "--acts", "4,x"], "activation must be a comma-separated list of integers, not '4,x'"),
    (["bitnet", "--weights", "0"], "impossible weight bit width in '0' (1 … 32)"),
    (["bitnet", "--target", "ecp5"],
     "bitnet does not map to target 'ecp5'; targets: vitallm, xczu28dr, xczu48dr, xczu49dr"),
    (["resnet"], "unknown sweep model 'resnet'; known: bitnet, swiftchannel, airfm, snn"),
])
def test_bad_input_exit_2(tmp_path, args, message):
    r = hwsim("sweep", *args, "-o", tmp_path / "s")
    assert r.returncode == 2
    assert r.stderr.strip() == f"hwsim: error: {message}"
    assert not (tmp_path / "s").exists()


def test_tiny_sweep_end_to_end(tmp_path):
    out = tmp_path / "s"
    args = ["sweep", "bitnet", "--weights", "2,8", "--acts", "8", "--train-steps", "3",
            "-o", out, "--json"]
    r = hwsim(*args)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = {(x["weights"], x["acts"]): x for x in json.loads(r.stdout)}
    assert set(rows) == {(2, 8), (8, 8)}
    for x in rows.values():
        assert 1.0 < x["ppl"] < 256.0  # a byte-level model: better than uniform over 256 bytes
    # ternary weights move 2 bits per weight off chip instead of 8: less energy per token
    assert rows[(2, 8)]["energy_per_token_mj"] < rows[(8, 8)]["energy_per_token_mj"]
    for f in ("results.csv", "results.json", "sweep.md", "sweep.html", "metric_vs_bits.png",
              "pareto.png"):
        assert (out / f).exists(), f
    again = hwsim(*args)  # every point is finished: nothing is evaluated again
    assert json.loads(again.stdout) == json.loads(r.stdout)
