"""The flow framework's promises: a changed output is not taken for finished, one run per build
folder, and what a killed run left behind is cleaned up."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.files import remove_stale_temps, staged_dir
from hwsim.flow.core import Flow, Step

ROOT = Path(__file__).resolve().parents[2]


def two_step_flow(build: Path, runs: list[str], salt: list[int] | None = None) -> Flow:
    """``make`` writes a JSON table (``salt`` varies its content per run); ``use`` parses it."""
    def make(ctx):
        runs.append("make")
        extra = salt.pop(0) if salt else 0
        (ctx.folder / "table.json").write_text(json.dumps({"n": ctx.options["n"], "x": extra}))
        (ctx.folder / "sub").mkdir()
        (ctx.folder / "sub" / "note.txt").write_text("kept")
        return {"table": "table.json"}

    def use(ctx):
        runs.append("use")
        table = json.loads(ctx.path_of("make", "table.json").read_text())
        (ctx.folder / "sum.txt").write_text(str(table["n"] * 2))
        return {"sum": table["n"] * 2}

    return Flow("demo", [Step("make", "make the table", make, uses=("n",)),
                         Step("use", "use the table", use)], build, {"n": 21})


def run(flow: Flow, start=None) -> list[str]:
    lines: list[str] = []
    flow.run(start, progress=lines.append)
    return lines


def test_finished_steps_are_cached_with_their_output_hashes(tmp_path):
    runs: list[str] = []
    run(two_step_flow(tmp_path, runs))
    record = json.loads((tmp_path / "make" / "step.json").read_text())
    assert set(record["outputs"]) == {"table.json", "sub/note.txt"}
    assert all(len(h) == 64 for h in record["outputs"].values())
    lines = run(two_step_flow(tmp_path, runs))
    assert runs == ["make", "use"]
    assert all(line.endswith("done earlier (cached)") for line in lines)


@pytest.mark.parametrize("damage, why", [
    (lambda f: f.write_text(f.read_text()[:5]), "output table.json changed since it was written"),
    (lambda f: f.write_text(f.read_text().replace("21", "22")),
     "output table.json changed since it was written"),
    (lambda f: f.unlink(), "output table.json was removed"),
])
def test_a_damaged_output_makes_its_step_run_again(tmp_path, damage, why):
    runs: list[str] = []
    run(two_step_flow(tmp_path, runs))
    damage(tmp_path / "make" / "table.json")
    lines = run(two_step_flow(tmp_path, runs))
    assert lines[0] == f"[1/2] make the table … ({why}; redoing it)"
    # the redone step wrote the same table: the step after it is still finished
    assert runs == ["make", "use", "make"]
    assert lines[-1] == "[2/2] use the table … done earlier (cached)"
    assert json.loads((tmp_path / "make" / "table.json").read_text())["n"] == 21


def test_from_a_later_step_redoes_a_truncated_earlier_one(tmp_path):
    runs: list[str] = []
    run(two_step_flow(tmp_path, runs))
    table = tmp_path / "make" / "table.json"
    table.write_text(table.read_text()[:3])  # `use` cannot parse this
    run(two_step_flow(tmp_path, runs), start="use")
    assert runs == ["make", "use", "make", "use"]
    assert (tmp_path / "use" / "sum.txt").read_text() == "42"


def test_steps_after_a_redone_step_with_new_outputs_run_again(tmp_path):
    runs: list[str] = []
    run(two_step_flow(tmp_path, runs, salt=[1]))
    (tmp_path / "make" / "table.json").unlink()
    run(two_step_flow(tmp_path, runs, salt=[2]))  # the redone step writes a different table
    assert runs == ["make", "use", "make", "use"]


def test_a_record_without_output_hashes_is_not_finished(tmp_path):
    runs: list[str] = []
    run(two_step_flow(tmp_path, runs))
    record = tmp_path / "make" / "step.json"
    old = json.loads(record.read_text())
    del old["outputs"]
    record.write_text(json.dumps(old))
    lines = run(two_step_flow(tmp_path, runs))
    assert lines[0] == "[1/2] make the table … (its outputs were not recorded; redoing it)"
    assert runs == ["make", "use", "make"]


def _python(code: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)


def test_second_run_on_a_busy_folder_is_one_line_and_a_dead_run_does_not_block(tmp_path, capsys):
    build = tmp_path / "b"
    # a real run, stopped inside its first step
    holder = _python(
        "import sys, time\n"
        "from pathlib import Path\n"
        "from hwsim.flow.core import Flow, Step\n"
        "def slow(ctx):\n"
        "    print('ready', flush=True); time.sleep(120); return {}\n"
        f"Flow('demo', [Step('make', 'make', slow)], Path({str(build)!r})).run(progress=len)\n",
        stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(HwsimError, match=rf"^build folder {build} is busy: another hwsim "
                                             rf"command is working in it \(pid {holder.pid}\)$"):
            run(two_step_flow(build, []))
        assert main(["run", "ternary-mvu", "-o", str(build), "--rows", "4", "--cols", "4",
                     "--lanes", "4", "--sim", "icarus", "--no-synth"]) == 2
        err = capsys.readouterr().err
        assert err == (f"hwsim: error: build folder {build} is busy: another hwsim command is "
                       f"working in it (pid {holder.pid})\n")
    finally:
        holder.kill()  # killed inside its step: lock file and staging folder stay behind
        holder.wait()
    assert (build / ".hwsim.lock").exists() and (build / ".make.staging").is_dir()
    runs: list[str] = []
    run(two_step_flow(build, runs))
    assert runs == ["make", "use"]
    assert not (build / ".make.staging").exists()


def test_staging_folder_of_a_killed_staged_write_is_removed_by_the_next(tmp_path):
    target = tmp_path / "out"
    writer = _python(
        "import time\nfrom hwsim.files import staged_dir\n"
        f"with staged_dir({str(target)!r}) as stage:\n"
        "    (stage / 'half.txt').write_text('half')\n"
        "    print('ready', flush=True); time.sleep(120)\n", stdout=subprocess.PIPE)
    assert writer.stdout.readline().strip() == "ready"
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    left = list(tmp_path.glob(".out.staging-*"))
    assert len(left) == 1 and (left[0] / "half.txt").exists() and not target.exists()
    mine = tmp_path / f".out.staging-{os.getpid()}-live0000"  # a write still in progress
    mine.mkdir()
    other = tmp_path / f".other.staging-{writer.pid}-x"  # another target's: not this write's
    other.mkdir()
    with staged_dir(target) as stage:
        (stage / "whole.txt").write_text("whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["out", mine.name, other.name])
    assert [p.name for p in target.iterdir()] == ["whole.txt"]
    assert remove_stale_temps(tmp_path) == [other]  # the whole folder: the live one stays
    assert mine.is_dir()
