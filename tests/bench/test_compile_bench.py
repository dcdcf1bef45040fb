"""``hwsim bench compile``: one example model through the command, the figures measured."""

import json

from hwsim.bench import BENCHES
from hwsim.cli import main


def test_compile_bench_runs_an_example_and_reports_its_figures(capsys, tmp_path):
    from hwsim.bench.compile import EXAMPLE_NAMES
    from hwsim.compile.examples import EXAMPLES
    assert BENCHES["compile"] == "compile" and tuple(EXAMPLES) == EXAMPLE_NAMES
    rc = main(["bench", "compile", "--examples", "mlp", "--formats", "qonnx", "--sim", "none",
               "-o", str(tmp_path / "b"), "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    (row,) = r["rows"]
    assert row["example"] == "mlp" and row["rtl_equals_golden"] is None
    assert row["kernels"] == 3 and row["cycles"] > 0 and row["compile_s"] > 0
    assert row["max_error_lsb"] <= row["bound_lsb"]
    # 16·32 + 32·24 + 24·8 MACs per vector, two vectors, on three 8-lane MVUs
    assert row["macs"] == 2 * (16 * 32 + 32 * 24 + 24 * 8) and row["mvu_lanes"] == 24
    assert 0 < row["mac_utilization"] <= 1
    assert (tmp_path / "b" / "mlp_qonnx" / "report.md").is_file()
