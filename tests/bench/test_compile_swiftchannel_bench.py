"""``hwsim bench compile-swiftchannel``: a small student through the command, its cycles next to
the ``swiftchannel-pipeline`` formula."""

import json

import pytest

from hwsim.bench import BENCHES
from hwsim.cli import main


@pytest.mark.slow  # elaborates a student (~50 s); test_compile_student_icarus covers the compile
def test_compile_swiftchannel_bench_reports_cycles_against_the_pipeline(capsys, tmp_path):
    assert BENCHES["compile-swiftchannel"] == "compile_swiftchannel"
    rc = main(["bench", "compile-swiftchannel", "--rows", "3", "--cols", "4", "--blocks", "1",
               "--rf", "2", "--sim", "none", "-o", str(tmp_path / "b"), "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["rtl_equals_golden"] is None and r["kernels"] == 6 and r["compile_s"] > 0
    assert r["pipeline_cycles"] > 0 and r["ratio"] == round(r["compiled_cycles"]
                                                            / r["pipeline_cycles"], 4)
    assert r["ratio"] <= 1.2
    assert json.loads((tmp_path / "b" / "figures.json").read_text()) == r
