"""Published silicon points and the DRAM model by access pattern (peak × efficiency, AXI ports)."""

import json

import pytest
import yaml

from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.estimate import estimate_arch, load_arch
from hwsim.estimate.engine import PATTERNS
from hwsim.estimate.validate import (
    SILICON_DIR,
    known_points,
    load_point,
    points_for,
    sensitivity,
    validation_table,
)


@pytest.mark.parametrize("name", known_points())
def test_every_point_is_a_prediction(name):
    """Every published figure is set beside an estimate of its own prompt and context, and no
    parameter of any target was fitted to it."""
    point = load_point(name)
    arch = load_arch(point.target)
    assert arch.kind == point.kind
    rows = validation_table(point)
    assert len(rows) == len(point.figures)
    for row, fig in zip(rows, point.figures, strict=True):
        assert row["published"] == fig.value and row["metric"] == fig.metric
        assert row["estimated"] > 0 and row["status"] == "predicted"
        assert row["error_pct"] == pytest.approx(100 * (row["estimated"] / fig.value - 1))
    assert not [p.path for p in arch.params.values() if p.status == "fitted"]


def test_points_cover_an_fpga_with_ddr4_and_two_asics():
    kinds = {load_point(n).target: load_point(n).kind for n in known_points()}
    assert kinds["xck26"] == "fpga" and kinds["vitallm"] == "asic"
    assert kinds["slim-llama"] == "asic"
    assert [p.name for p in points_for("bitnet-700m", "xck26")] == ["tellme", "tellme-v2"]


def test_weight_bound_decode_of_slim_llama_within_30_percent():
    rows = {r["metric"]: r for r in validation_table("slim-llama")}
    assert abs(rows["decode_ms_per_token"]["error_pct"]) <= 30


def test_sequential_and_random_traffic_use_their_efficiencies():
    arch = load_arch("vitallm")
    clock = arch["clock"]
    est = estimate_arch("bitnet-3b", arch, context=512)
    sparse = estimate_arch("bitnet-3b", arch, context=512,
                           workloads=_workloads("bitnet-3b", 512, keep=64))
    peak = arch["dram.peak_bandwidth"]

    def ops(e):
        return {o.name: o for o in e.decode.layers[0].ops}

    from hwsim.estimate.workload import bitnet_workload
    wl = {o.name: o for o in bitnet_workload("bitnet-3b", "decode", 1, 512).layers[0].ops}
    wq = ops(est)["wq"]
    assert wq.memory_cycles == pytest.approx(
        wl["wq"].weights * arch["dram.weight_bits"] / (peak * 0.9 / clock))
    # dense decode: the cached rows stream (sequential), the new row is a random write
    qk = wl["qk"]
    assert ops(est)["qk"].memory_cycles == pytest.approx(
        qk.kv_read_bits / (peak * 0.9 / clock) + qk.kv_write_bits / (peak * 0.6 / clock))
    # sparse decode: the selected rows are scattered (random reads)
    swl = {o.name: o for o in bitnet_workload("bitnet-3b", "decode", 1, 512,
                                              keep=64).layers[0].ops}
    sq = swl["qk"]
    assert sq.kv_read_random and not qk.kv_read_random
    assert ops(sparse)["qk"].memory_cycles == pytest.approx(
        (sq.kv_read_bits + sq.kv_write_bits) / (peak * 0.6 / clock))
    # every pattern at efficiency 1 is the peak: halving one efficiency doubles its traffic time
    ideal = arch.with_values({f"dram.efficiency.{p}": 1.0 for p in PATTERNS})
    half = ideal.with_values({"dram.efficiency.sequential_read": 0.5})
    a = ops(estimate_arch("bitnet-3b", ideal, context=512))["wq"].memory_cycles
    b = ops(estimate_arch("bitnet-3b", half, context=512))["wq"].memory_cycles
    assert b == pytest.approx(2 * a)


def _workloads(model, context, keep):
    from hwsim.estimate.workload import model_workloads
    return model_workloads(model, 64, context, keep=keep)


def test_fpga_axi_ports_bound_the_sustained_bandwidth():
    arch = load_arch("xck26")
    # four 128-bit ports at 200 MHz carry 12.8 GB/s, below 0.9 × 19.2 GB/s of DDR4
    assert arch.dram_bandwidth("sequential_read") == pytest.approx(4 * 128 * 200e6)
    wide = arch.with_values({"dram.axi_ports": 8})
    assert wide.dram_bandwidth("sequential_read") == pytest.approx(0.9 * 19.2e9 * 8)
    assert wide.dram_bandwidth("random_read") == pytest.approx(0.6 * 19.2e9 * 8)
    slow = estimate_arch("bitnet-700m", arch, context=1024).metrics()
    fast = estimate_arch("bitnet-700m", wide, context=1024).metrics()
    assert slow["decode_bound"] == "memory"
    assert fast["decode_tokens_per_s"] > slow["decode_tokens_per_s"]
    with pytest.raises(HwsimError, match=r"dram\.efficiency\.random_read must be ≤ 1"):
        arch.with_values({"dram.efficiency.random_read": 1.5})


def test_sensitivity_varies_only_unpublished_parameters():
    rows = sensitivity("slim-llama")
    params = {r["parameter"] for r in rows}
    # clock, node and the external bandwidth are published for Slim-Llama: not varied
    assert "clock" not in params and "dram.peak_bandwidth" not in params
    assert "dram.efficiency.sequential_read" in params
    assert set(rows[0]) == {"parameter", "value", "decode_ms_per_token", "power_mw", "area_mm2"}
    tell = {r["parameter"] for r in sensitivity("tellme")}
    assert {"clock", "dram.axi_ports"} <= tell


def test_cli_validate_each_point(capsys):
    assert main(["estimate", "bitnet-700m", "--target", "xck26", "--validate", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [p["point"] for p in d["points"]] == ["tellme", "tellme-v2"]
    assert [r["published"] for r in d["points"][0]["validation"]] == [9, 0.55, 1.15]
    assert d["points"][0]["model_status"] == "assumption"
    assert main(["estimate", "bitnet-3b", "--target", "slim-llama", "--validate"]) == 0
    out = capsys.readouterr().out
    assert "Slim-Llama" in out and "decode_ms_per_token (context 128)" in out


def test_cli_validate_without_a_point_is_one_line(capsys):
    assert main(["estimate", "bitnet-tiny", "--target", "vitallm", "--validate"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no published silicon ran bitnet-tiny on vitallm" in err[0]
    assert "tellme: bitnet-700m on xck26" in err[0]


def _edited(tmp_path, edit):
    data = yaml.safe_load((SILICON_DIR / "tellme.yaml").read_text())
    edit(data)
    path = tmp_path / "point.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda d: d["figures"][0].update(metric="joy"), "metric 'joy' is not one of"),
    (lambda d: d["figures"][0].update(value=-9), "value must be a positive number"),
    (lambda d: d["figures"][1].update(prompt=0), r"figures\[1\]: prompt must be an integer"),
    (lambda d: d["figures"][0].pop("source"), "missing field 'source'"),
    (lambda d: d["figures"][0].update(colour="red"), "unknown field 'colour'"),
    (lambda d: d["model"].update(value="gpt-5"), "model 'gpt-5' is not one of"),
    (lambda d: d.update(figures=[]), "figures must be a non-empty list"),
    (lambda d: d.update(schema="hwsim-silicon/9"), "schema must be 'hwsim-silicon/1'"),
])
def test_point_yaml_errors(tmp_path, edit, message):
    with pytest.raises(HwsimError, match=message):
        load_point(_edited(tmp_path, edit))


def test_point_kind_must_match_its_target(tmp_path):
    point = load_point(_edited(tmp_path, lambda d: d.update(target="vitallm")))
    with pytest.raises(HwsimError, match="a fpga point, but vitallm is asic"):
        validation_table(point)
