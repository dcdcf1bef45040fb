"""Output folders and argparse errors: one line ``hwsim: error: …``, exit 2, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwsim.cli import build_parser, main
from hwsim.errors import HwsimError
from hwsim.files import check_output_dir, check_output_file, staged_dir


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def place(tmp_path):
    """tmp_path with a file, a folder and a symbolic link to that folder."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    return tmp_path


BAD_DIRS = {"afile": r"is not a folder \(an existing file\)",
            "afile/sub": r"is not writable \(.*afile is a file, not a folder\)",
            "/dev/null": "is a device", "/proc/hwsim-out": r"is not writable \(/proc: ",
            "link": "is a symbolic link"}


@pytest.mark.parametrize("path", BAD_DIRS)
def test_check_output_dir_refuses(place, path):
    before = _tree(place)
    with pytest.raises(HwsimError, match=BAD_DIRS[path]) as e:
        check_output_dir(place / path)
    assert "\n" not in str(e.value) and path in str(e.value)
    assert _tree(place) == before


def test_check_output_dir_accepts(place):
    before = _tree(place)
    assert check_output_dir(place / "real") == place / "real"
    assert check_output_dir(place / "new" / "deeper") == place / "new" / "deeper"
    assert _tree(place) == before  # the writability probe leaves nothing


@pytest.mark.parametrize("path,why", [("real", "is a folder"), ("link", "symbolic link"),
                                      ("/dev/null", "is a device"),
                                      ("afile/x.npz", "is a file, not a folder")])
def test_check_output_file(place, path, why):
    with pytest.raises(HwsimError, match=why):
        check_output_file(place / path)
    assert check_output_file(place / "afile") == place / "afile"  # replaced, not refused


@pytest.mark.parametrize("target", ["afile", "link", "afile/sub"])
def test_staged_dir_refuses_before_the_work(place, target):
    before = _tree(place)
    ran = []
    with pytest.raises(HwsimError), staged_dir(place / target):
        ran.append(True)
    assert not ran and _tree(place) == before
    assert not any(p.name.startswith(".") for p in place.iterdir())


def test_staged_dir_still_writes(tmp_path):
    with staged_dir(tmp_path / "out") as stage:
        (stage / "a.txt").write_text("a")
    assert (tmp_path / "out" / "a.txt").read_text() == "a"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# every command that writes, with its output option last
WRITERS = [
    ("rtl", "emit", "ternary-mvu", "-o"),
    ("events", "convert", "digits", "-o"),
    ("estimate", "bitnet-tiny", "--target", "vitallm", "--sweep", "lanes=8,16", "--out"),
    ("sweep", "bitnet", "-o"),
    ("train", "bitnet", "-o"),
    ("train", "snn", "-o"),
    ("snn", "train", "-o"),
    ("airfm", "train", "-o"),
    ("airfm", "eval", "run", "-o"),
    ("swiftchannel", "train", "-o"),
    ("swiftchannel", "eval", "run", "-o"),
    ("export", "bitnet", "-o"),
    ("run", "ternary-mvu", "-o"),
    ("fpga", "build", "ternary-mvu", "-o"),
    ("sim", "ternary-mvu", "-o"),
    ("bench", "ternary-mvu", "--out"),
]


@pytest.mark.parametrize("bad", ["afile", "afile/sub", "/dev/null", "link"])
@pytest.mark.parametrize("argv", WRITERS, ids=lambda a: " ".join(a[:2]))
def test_cli_refuses_output(place, argv, bad, capsys, monkeypatch):
    monkeypatch.chdir(place)
    before = _tree(place)
    if argv[0] == "events" and bad in ("afile", "afile/sub"):
        bad = bad + "/x.npz"
    assert main([*argv, bad]) == 2  # checked after parsing, before the command runs
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hwsim: error:") and bad in err[0], err
    assert _tree(place) == before


def test_default_output_under_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "build").write_text("not a folder")
    assert main(["run", "ternary-mvu"]) == 2  # default -o build/run
    err = capsys.readouterr().err
    assert err.startswith("hwsim: error: build folder build/run is not writable (")


# ---- argparse ------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [
    [], ["frob"], ["rtl", "emit", "ternary-mvu"], ["rtl", "emit", "ternary-mvu", "--rows", "x",
                                                   "-o", "o"],
    ["sim", "ternary-mvu", "--sim", "modelsim"], ["estimate", "m", "--target", "t", "--frob"],
    ["fpga", "build", "ternary-mvu", "--vivado", "--no-vivado"],
    ["fpga", "build", "ternary-mvu", "--no-vivado", "--vivado"],
    ["estimate", "bitnet-3b", "--target", "vitallm", "--validate", "--sweep", "lanes=8"],
])
def test_argparse_errors_are_one_line(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        main(argv)
    out = capsys.readouterr()
    lines = out.err.strip().splitlines()
    assert e.value.code == 2 and out.out == ""
    assert len(lines) == 1 and lines[0].startswith("hwsim: error:"), lines
    assert "usage:" not in out.err
    assert os.listdir(tmp_path) == []


def test_onoff_once_is_fine_and_help_still_has_usage(capsys):
    args = build_parser().parse_args(["fpga", "build", "ternary-mvu", "--no-vivado",
                                      "--no-vivado"])
    assert args.vivado is False
    with pytest.raises(SystemExit) as e:
        main(["rtl", "emit", "ternary-mvu", "--help"])
    assert e.value.code == 0 and "usage:" in capsys.readouterr().out
