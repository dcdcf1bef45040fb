"""Bad input: one clear line naming the field, exit status 2, nothing half-written."""

from pathlib import Path

import pytest
import yaml

from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.estimate import load_arch, load_tables
from hwsim.estimate.arch import ARCH_DIR
from hwsim.estimate.tables import TABLE_DIR
from hwsim.estimate.units import parse


@pytest.mark.parametrize("text, dim, value", [
    ("1 GHz", "frequency", 1e9), ("120 KB", "bits", 120 * 8192), ("59.91 GB/s", "bandwidth", 59.91 * 8e9),
    ("4 pJ/bit", "energy_per_bit", 4e-12), ("0.07 um2", "area", 0.07e-12), ("16nm", "length", 16e-9),
])
def test_units_parse(text, dim, value):
    assert parse(text, dim, "f") == pytest.approx(value, rel=1e-12)


@pytest.mark.parametrize("text, dim, message", [
    ("1 GHz", "energy", "'GHz' is a unit of frequency, not of energy"),
    ("3 furlongs", "length", "'furlongs' is an unknown unit"),
    ("-1 pJ", "energy", "must be > 0"),
    (5, "energy", "a number needs its unit"),
    ("fast", "frequency", "cannot read"),
])
def test_units_reject(text, dim, message):
    with pytest.raises(HwsimError, match=message) as e:
        parse(text, dim, "my.field")
    assert str(e.value).startswith("my.field:") and "\n" not in str(e.value)


def _mutated(tmp_path: Path, src: Path, edit) -> Path:
    data = yaml.safe_load(src.read_text())
    edit(data)
    out = tmp_path / src.name
    out.write_text(yaml.safe_dump(data, allow_unicode=True))
    return out


def _del_clock(d):
    del d["params"]["clock"]


def _neg_lanes(d):
    d["params"]["tint"]["lanes"]["value"] = -16


def _misspelt(d):
    d["params"]["tint"]["lanse"] = d["params"]["tint"].pop("lanes")


def _bad_unit(d):
    d["params"]["dram"]["peak_bandwidth"]["value"] = "60 GHz"


def _unknown_unit(d):
    d["params"]["dram"]["energy"]["value"] = "4 pJ/byte"


def _no_source(d):
    del d["params"]["sram"]["kv"]["source"]


def _fitted_without_figure(d):
    d["params"]["dram"]["peak_bandwidth"]["status"] = "fitted"


def _efficiency_over_one(d):
    d["params"]["dram"]["efficiency"]["random_read"]["value"] = 1.2


def _no_write_efficiency(d):
    del d["params"]["dram"]["efficiency"]["random_write"]


@pytest.mark.parametrize("edit, message", [
    (_del_clock, "missing field 'clock'"),
    (_neg_lanes, "tint.lanes: must be ≥ 1, not -16"),
    (_misspelt, "unknown field 'tint.lanse' \\(did you mean 'tint.lanes'\\?\\)"),
    (_bad_unit, "dram.peak_bandwidth: 'GHz' is a unit of frequency"),
    (_unknown_unit, "dram.energy: 'pJ/byte' is an unknown unit"),
    (_no_source, "missing field sram.kv.source"),
    (_fitted_without_figure, "dram.peak_bandwidth is fitted but names no figure"),
    (_efficiency_over_one, "dram.efficiency.random_read: must be ≤ 1, not 1.2"),
    (_no_write_efficiency, "missing field 'dram.efficiency.random_write'"),
])
def test_arch_yaml_errors(tmp_path, capsys, edit, message):
    path = _mutated(tmp_path, ARCH_DIR / "vitallm.yaml", edit)
    with pytest.raises(HwsimError, match=message):
        load_arch(path)
    out = tmp_path / "sweep-out"
    assert main(["estimate", "bitnet-tiny", "--target", str(path), "--sweep", "lanes=8,16",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwsim: error: vitallm.yaml:")
    assert not out.exists()


def test_table_yaml_errors(tmp_path):
    def neg(d):
        d["params"]["energy"]["add8"]["value"] = "-0.03 pJ"

    def unit(d):
        d["params"]["area"]["add8"]["value"] = "36 pJ"

    with pytest.raises(HwsimError, match=r"energy\.add8: must be > 0"):
        load_tables(_mutated(tmp_path, TABLE_DIR / "asic_horowitz45.yaml", neg))
    with pytest.raises(HwsimError, match=r"area\.add8: 'pJ' is a unit of energy"):
        load_tables(_mutated(tmp_path, TABLE_DIR / "asic_horowitz45.yaml", unit))


@pytest.mark.parametrize("argv, message", [
    (["estimate", "gpt-5", "--target", "vitallm"], "unknown model 'gpt-5'"),
    (["estimate", "bitnet-3b", "--target", "tpu9"], "unknown target 'tpu9'"),
    (["estimate", "bitnet-3b", "--target", "vitallm", "--sweep", "lanez=8"],
     "unknown parameter 'lanez'"),
    (["estimate", "bitnet-3b", "--target", "vitallm", "--sweep", "lanes=8,x"],
     "'x' is not an integer"),
    (["estimate", "bitnet-3b", "--target", "vitallm", "--set", "dram.peak_bandwidth=9 parsecs"],
     "'parsecs' is an unknown unit"),
])
def test_cli_bad_input_exit_2(capsys, tmp_path, argv, message):
    assert main([*argv, "--out", str(tmp_path / "o")] if "--sweep" in argv else argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()
