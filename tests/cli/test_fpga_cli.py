"""``hwsim fpga``: argument handling and errors (the flow itself is tested in tests/fpga)."""

import json

import pytest

from hwsim.cli import main


def test_targets_json(capsys):
    assert main(["fpga", "targets", "--json"]) == 0
    targets = json.loads(capsys.readouterr().out)
    assert targets["rfsoc4x2"]["part"] == "xczu48dr-ffvg1517-2-e"
    assert targets["ecp5-ulx3s-85f"]["capacity"]["bram"] == 208
    assert "DS889" in targets["zcu111"]["capacity_source"]


def test_bad_parameter_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["fpga", "build", "ternary-mvu", "--lanes", "3", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "hwsim: error: ternary-mvu lanes (3) must divide cols (256)"
    assert not out.exists()


def test_unknown_target_is_one_line_exit_2(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["fpga", "build", "ternary-mvu", "--target", "zcu102", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hwsim: error: unknown FPGA target 'zcu102'; known: zcu111, rfsoc4x2")
    assert "\n" not in err and not out.exists()


def test_target_help_names_every_target(capsys):
    from fpga.platforms import TARGETS

    with pytest.raises(SystemExit) as e:
        main(["fpga", "build", "ternary-mvu", "--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    sizes = text.split("ecp5-ulx3s-{")[1].split("}")[0].split(",")
    listed = {f"ecp5-ulx3s-{s}" for s in sizes}
    listed |= {n for n in TARGETS
               if not n.startswith("ecp5") and (f"{n}," in text or f"{n} or" in text)}
    assert listed == set(TARGETS)


def test_build_folder_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    rc = main(["fpga", "build", "ternary-mvu", "--lanes", "4", "--rows", "8", "--cols", "16",
               "-o", str(f)])
    assert rc == 2
    assert "is not a folder" in capsys.readouterr().err
    assert f.read_text() == "x"
