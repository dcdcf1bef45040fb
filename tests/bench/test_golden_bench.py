"""`hwsim bench golden`: every kernel beside its float32 form, on the command line."""

import json
import subprocess
import sys

from hwsim.bench import BENCHES


def test_registered():
    assert BENCHES["golden"] == "golden"


def _hwsim(*args):
    return subprocess.run([sys.executable, "-m", "hwsim.cli", *args], capture_output=True, text=True,
                          timeout=600)


def test_tiny_rows_and_ratios():
    r = _hwsim("bench", "golden", "--shapes", "tiny", "--min-time", "0.01", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    kernels = [row["kernel"] for row in out["rows"]]
    assert kernels == ["ternary-mvu", "ternary-mvu", "int8-matmul", "attention-head", "rmsnorm",
                       "norm-quant", "softmax"]
    for row in out["rows"]:
        assert row["golden_per_s"] > 0 and row["float32_per_s"] > 0
        assert row["golden_numpy_per_s"] > 0 and row["golden_int64_per_s"] > 0
        assert row["golden_over_float32"] == row["golden_per_s"] / row["float32_per_s"]
        assert row["numpy_over_float32"] == row["golden_numpy_per_s"] / row["float32_per_s"]
    matrix = [row["golden_over_float32"] for row in out["rows"] if row["matrix"]]
    assert out["min_matrix_golden_over_float32"] == min(matrix)
    assert out["threads"] == 1


def test_bad_options_are_one_line_exit_2():
    for args in (["--threads", "0"], ["--min-time", "0"]):
        r = _hwsim("bench", "golden", "--shapes", "tiny", *args)
        assert r.returncode == 2
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
