"""Design-space sweeps: grid, Pareto fronts, files."""

import csv
import json

import pytest

from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.estimate import load_arch
from hwsim.estimate.sweep import pareto_front, parse_sweep, run_sweep


def test_pareto_front():
    # maximize x[0] (tokens/s), minimize x[1] (cost)
    pts = [(10, 1.0), (20, 2.0), (15, 3.0), (20, 1.5), (5, 0.5)]
    assert pareto_front(pts) == [0, 3, 4]


def test_sram_kb_keeps_the_split():
    arch = load_arch("vitallm")
    (_, _, values), = parse_sweep(arch, ["sram_kb=240"])
    v = values[0]
    assert sum(v.values()) == pytest.approx(240 * 8192)
    assert v["sram.weights"] / v["sram.kv"] == pytest.approx(arch["sram.weights"] / arch["sram.kv"])


def test_sweep_grid_and_files(tmp_path, capsys):
    out = tmp_path / "sw"
    assert main(["estimate", "bitnet-3b", "--target", "vitallm", "--sweep", "lanes=8,16,32",
                 "sram_kb=60,120,240", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "Pareto" in text
    rows = list(csv.DictReader((out / "sweep.csv").open()))
    assert len(rows) == 9
    assert {(r["lanes"], r["sram_kb"]) for r in rows} == {
        (a, b) for a in ("8", "16", "32") for b in ("60", "120", "240")}
    data = json.loads((out / "sweep.json").read_text())
    front = [p for p in data["points"] if p["pareto_area_mm2"]]
    assert front and all(p["decode_tokens_per_s"] > 0 for p in front)
    for name in ("pareto_cost.png", "pareto_energy.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the configuration of the file is one of the points and matches a plain estimate
    mid = next(p for p in data["points"] if p["lanes"] == "16" and p["sram_kb"] == "120")
    assert main(["estimate", "bitnet-3b", "--target", "vitallm", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    assert mid["area_mm2"] == pytest.approx(plain["area_mm2"])
    assert mid["decode_tokens_per_s"] == pytest.approx(plain["decode_tokens_per_s"])


def test_fpga_sweep_reports_fit():
    r = run_sweep("bitnet-3b", "xczu28dr", ["tiles=16,1024"])
    fits = {p["tiles"]: p["fits"] for p in r["points"]}
    assert fits == {"16": True, "1024": False}


def test_bad_sweep_values():
    arch = load_arch("vitallm")
    with pytest.raises(HwsimError, match="--sweep lanes: must be ≥ 1"):
        parse_sweep(arch, ["lanes=0"])
    with pytest.raises(HwsimError, match="given twice"):
        parse_sweep(arch, ["lanes=8", "lanes=16"])
    with pytest.raises(HwsimError, match=r"dram\.peak_bandwidth: 'GHz' is a unit of frequency"):
        parse_sweep(arch, ["dram.peak_bandwidth=5GHz"])
