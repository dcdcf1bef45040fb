"""`hwsim bench vitallm`: bad input → one line, exit 2, before any training; a short real run."""

import json

import pytest

from hwsim.cli import main


@pytest.mark.parametrize("extra, msg", [
    (["--tokens", "64", "--keep", "65"], "cannot exceed"),
    (["--keep", "0,8"], "at least 1"),
    (["--weight-kib", "16"], "weight memory"),
    (["--kv-kib", "8"], "KV memory"),
    (["--tokens", "300"], "exceed the KV cache"),
    (["--keep", "8,x"], "comma-separated integers"),
    (["--tokens", "32", "--rtl-model", "--rtl-keep", "40"], "cannot exceed"),
    (["--tokens", "8", "--rtl-generate", "2", "--rtl-prompt", "9"], "--rtl-prompt"),
    (["--rtl-model", "--dram-bytes-per-cycle", "0"], "--dram-bytes-per-cycle"),
    (["--rtl-model", "--lanes", "24"], "lanes (24) must divide head_dim"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, extra, msg):
    ck = tmp_path / "ck"
    rc = main(["bench", "vitallm", "--checkpoints", str(ck), "--steps", "1", *extra])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("hwsim: error:") and msg in err and "\n" not in err
    assert not ck.exists()  # nothing trained, nothing written


def test_short_real_run(tmp_path, capsys):
    ck = tmp_path / "ck"
    rc = main(["bench", "vitallm", "--json", "--checkpoints", str(ck), "--steps", "2",
               "--windows", "1", "--calib-windows", "1", "--tokens", "32", "--keep", "4,16"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["trained_in_this_run"]
    rows = {x["keep"]: x for x in r["rows"]}
    assert sorted(rows) == [4, 16, 32]
    dense = rows[32]
    assert dense["greedy_agreement_vs_dense"] == 1.0 and dense["kv_reduction"] == 0.0
    assert dense["kept_fraction"] == 1.0
    for k in (4, 16):
        x = rows[k]
        assert x["kept_fraction"] < 1.0
        assert x["estimator_kv_read_bytes"] == x["kv_read_bytes"]
        assert x["estimator_lo_table_bytes"] == x["lo_table_bytes"] > 0
        assert x["decode_cycles"] < dense["decode_cycles"]


@pytest.mark.slow
def test_whole_model_decode_token_on_rtl(tmp_path, capsys):
    """``--rtl-model``: the decode token after 8 real tokens through every layer of the
    (briefly trained) BitNet-tiny and its head on the decode-model RTL under Icarus, at 32
    lanes (twice the default)."""
    ck = tmp_path / "ck"
    rc = main(["bench", "vitallm", "--json", "--checkpoints", str(ck), "--steps", "2",
               "--windows", "1", "--calib-windows", "1", "--tokens", "8", "--keep", "4",
               "--rtl-model", "--rtl-keep", "4", "--lanes", "32", "--out", str(tmp_path / "rtl")])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    x = r["rtl_decode_model"]
    assert x["lanes"] == 32
    assert x["golden_equals_integer_model"] and r["rtl_tokens_equal_golden"]
    assert r["rtl_tokens"] == 1
    assert r["sim_cycles_per_token"] == r["formula_cycles_per_token"]
    assert r["dram_bytes_per_token"] == x["dram_bytes"]["total"]
    bound = r["weight_stream_bound_cycles_per_token"]
    assert (bound - 1) * 16 < r["dram_bytes_per_token"] <= bound * 16  # default 16 B/cycle
    assert r["cycles_over_stream_bound"] == r["sim_cycles_per_token"] / bound
    assert r["est_cycles_per_token"] == x["est_cycles_per_token"] > 0


@pytest.mark.slow
def test_tokens_generated_on_rtl(tmp_path, capsys):
    """``--rtl-generate``: two greedy tokens after two real tokens of the (briefly trained)
    BitNet-tiny on the decode-model RTL under Icarus, the host feeding back tokens and KV rows."""
    ck = tmp_path / "ck"
    rc = main(["bench", "vitallm", "--json", "--checkpoints", str(ck), "--steps", "2",
               "--windows", "1", "--calib-windows", "1", "--tokens", "8", "--keep", "4",
               "--rtl-generate", "2", "--rtl-prompt", "2", "--rtl-keep", "2",
               "--rtl-sim", "icarus", "--out", str(tmp_path / "rtl")])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert r["rtl_tokens"] == 2 and r["rtl_tokens_equal_golden"]
    g = r["rtl_generate"]
    assert g["step_cycles"] == g["formula_step_cycles"] and len(g["step_cycles"]) == 3
    assert r["sim_prefill_cycles"] == r["formula_prefill_cycles"]
    # the one decode step (the third) sees L = 3 tokens
    assert g["dram_bytes_per_token"] == r["dram_bytes_per_token"] > 0
    assert r["weight_stream_bound_cycles_per_token"] == -(-r["dram_bytes_per_token"] // 16)
    assert r["est_cycles_per_token"] > 0 and r["est_prefill_cycles"] > r["est_cycles_per_token"]
