import json

import pytest

from hwsim.cli import main


def test_rtl_emit_attention_head(tmp_path, capsys):
    out = tmp_path / "rtl"
    assert main(["rtl", "emit", "attention-head", "--head-dim", "8", "--max-len", "4",
                 "--lanes", "4", "--multiplier", "booth", "-o", str(out)]) == 0
    man = json.loads((out / "attention_head.json").read_text())
    assert man["params"]["multiplier"] == "booth"
    assert man["cycles"]["ideal_at_max_len"] == 2 * 4 * 8 // 4
    assert "module attention_head" in (out / "attention_head.v").read_text()


@pytest.mark.parametrize("args, msg", [
    (["--lanes", "5"], "attention lanes (5) must divide head_dim (64)"),
    (["--multiplier", "wallace"], "attention multiplier must be one of dsp, booth, not 'wallace'"),
    (["--max-len", "0"], "attention max_len must be at least 1, not 0"),
    (["--exp-lanes", "200"], "attention exp_lanes (200) must be ≤ max_len (128)"),
])
def test_bad_parameters_exit_2_with_one_line(tmp_path, capsys, args, msg):
    out = tmp_path / "never"
    assert main(["rtl", "emit", "attention-head", *args, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"hwsim: error: {msg}"
    assert not out.exists()
    assert main(["sim", "attention-head", *args, "-o", str(out)]) == 2
    assert not out.exists()


def test_rmsnorm_cli(tmp_path, capsys):
    assert main(["rtl", "emit", "rmsnorm", "--n", "8", "--lanes", "4", "-o", str(tmp_path)]) == 0
    assert (tmp_path / "rmsnorm_int.v").exists()
    assert main(["rtl", "emit", "rmsnorm", "--n", "60", "-o", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.strip() == \
        "hwsim: error: rmsnorm lanes (16) must divide n (60)"
    assert not (tmp_path / "x").exists()
