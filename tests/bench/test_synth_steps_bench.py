"""``hwsim bench synth-steps`` on a tiny design: one time per synth_xilinx step, shares sum to 1."""

import json

import pytest

from hwsim.bench.synth_steps import LABELS
from hwsim.cli import main

TINY = "module acc(input clk, input [3:0] a, output reg [7:0] y);\n" \
       "  always @(posedge clk) y <= y + a;\nendmodule\n"


def test_tiny_design_steps_and_shares(tmp_path, capsys):
    v = tmp_path / "acc.v"
    v.write_text(TINY)
    log = tmp_path / "yosys.log"
    assert main(["bench", "synth-steps", str(v), "acc", "--log", str(log), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert [s["step"] for s in r["steps"]] == LABELS
    assert all(s["seconds"] >= 0 for s in r["steps"])
    assert sum(s["share"] for s in r["steps"]) == pytest.approx(1.0)
    assert r["total_s"] == pytest.approx(sum(s["seconds"] for s in r["steps"]))
    assert "synth_xilinx" in log.read_text()


def test_missing_top_is_one_line(tmp_path, capsys):
    v = tmp_path / "acc.v"
    v.write_text(TINY)
    assert main(["bench", "synth-steps", str(v), "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "Module `nosuch' not found" in err and err.count("\n") == 1
