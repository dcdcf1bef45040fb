"""What a sweep guarantees: identity independent of its folder's path, every point once in the
results, one sweep per folder, workers that die with the sweep, a quick clear Dask failure."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from hwsim.cli import main
from hwsim.errors import HwsimError
from hwsim.sweep import run_sweep

ROOT = Path(__file__).resolve().parents[2]
EVAL = "tests.sweep.evaluators:reads_checkpoint"


def points(out: Path, log: Path, weights=(2, 3, 4, 8)):
    """A grid whose points carry a file inside the sweep folder, as the models' points do."""
    ckpt = out / "float" / "offset.txt"
    if not ckpt.exists():
        ckpt.parent.mkdir(parents=True)
        ckpt.write_text("1000")
    return [{"weights": w, "acts": a, "log": str(log),
             "context": {"checkpoint": str(ckpt.resolve())}} for w in weights for a in (4, 8)]


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_copied_half_done_sweep_resumes_where_it_stopped(tmp_path):
    first, log = tmp_path / "first", tmp_path / "calls.log"
    run_sweep(points(first, log, weights=(2, 3)), EVAL, first, progress=False)  # half: 4 of 8
    assert len(calls(log)) == 4
    moved = tmp_path / "elsewhere" / "renamed"
    shutil.copytree(first, moved)
    shutil.rmtree(first)  # the evaluator can only read the copy's checkpoint
    rows = run_sweep(points(moved, log), EVAL, moved, progress=False)
    assert len(calls(log)) == 8  # only the 4 unfinished points were evaluated
    assert sorted((r["weights"], r["acts"]) for r in rows) == \
        [(w, a) for w in (2, 3, 4, 8) for a in (4, 8)]
    assert all(r["metric"] == 1000 + r["weights"] * 10 + r["acts"] for r in rows)
    # stored relative to the folder, not at the path it was made under
    assert {r["context"]["checkpoint"] for r in rows} == {"<sweep>/float/offset.txt"}


def test_results_hold_every_point_once_after_two_resumes(tmp_path):
    out, log = tmp_path / "s", tmp_path / "calls.log"
    for _ in range(3):
        run_sweep(points(out, log), EVAL, out, progress=False)
    # a second record of one point (e.g. from a copy made by hand) is still one point
    one = next((out / "points").glob("*.json"))
    shutil.copy(one, out / "points" / "copy-of-a-point.json")
    rows = run_sweep(points(out, log), EVAL, out, progress=False)
    assert len(calls(log)) == 8
    keys = [(r["weights"], r["acts"]) for r in rows]
    assert len(keys) == len(set(keys)) == 8
    assert len(json.loads((out / "results.json").read_text())) == 8
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 8


def test_a_point_given_twice_is_evaluated_once(tmp_path):
    out, log = tmp_path / "s", tmp_path / "calls.log"
    grid = points(out, log, weights=(2,))
    rows = run_sweep(grid + grid, EVAL, out, progress=False)
    assert len(rows) == 2 and len(calls(log)) == 2


@pytest.mark.parametrize("flag, value, message", [
    ("--weights", "", "weight list is empty"),
    ("--acts", " ", "activation list is empty"),
    ("--weights", ",", "weight must be a comma-separated list of integers, not ','"),
    ("--weights", "2,,4", "weight must be a comma-separated list of integers, not '2,,4'"),
    ("--weights", "4,8,4", "weight list '4,8,4' repeats 4"),
])
def test_empty_or_garbage_grid_is_one_line_exit_2(tmp_path, capsys, flag, value, message):
    assert main(["sweep", "bitnet", flag, value, "-o", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert err == f"hwsim: error: {message}\n"
    assert not (tmp_path / "s").exists()


def _holder(code: str) -> subprocess.Popen:
    """A Python process that runs ``code`` and then prints ``ready`` and sleeps."""
    proc = subprocess.Popen([sys.executable, "-c", code + "\nprint('ready', flush=True)\n"
                             "import time; time.sleep(120)"], cwd=ROOT, stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_one_sweep_per_folder_and_a_dead_holder_leaves_nothing_in_the_way(tmp_path):
    out, log = tmp_path / "s", tmp_path / "calls.log"
    holder = _holder("from hwsim.files import folder_lock\n"
                     f"lock = folder_lock({str(out)!r}, 'sweep folder'); lock.__enter__()")
    try:
        with pytest.raises(HwsimError, match=r"^sweep folder .* is busy: another hwsim command "
                                             rf"is working in it \(pid {holder.pid}\)$"):
            run_sweep(points(out, log), EVAL, out, progress=False)
        assert calls(log) == []
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".hwsim.lock").exists()  # left by the killed holder: the OS released it
    # what atomic writes of the dead holder would leave behind
    (out / "points").mkdir()
    leftovers = [out / f".results.json.tmp-{holder.pid}-k1ll3d",
                 out / "points" / f".x.json.tmp-{holder.pid}-k1ll3d"]
    for f in leftovers:
        f.write_text("{")
    assert len(run_sweep(points(out, log), EVAL, out, progress=False)) == 8
    assert not any(f.exists() for f in leftovers)


def _alive(procs) -> list:
    out = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _shell_signals() -> None:
    """The sweep starts as from a shell: SIGINT and SIGTERM at their defaults and no signal
    blocked, whatever the test process inherited (a disposition set to ignore, or a mask,
    survives exec and would make the sweep deaf to the signal under test)."""
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_workers_die_with_the_sweep(tmp_path, sig):
    out, log = tmp_path / "s", tmp_path / "calls.log"
    grid = [{"weights": w, "acts": 8, "log": str(log), "delay": 120} for w in (2, 3, 4, 8)]
    code = (f"from hwsim.sweep import run_sweep; run_sweep({grid!r}, "
            f"'tests.sweep.evaluators:logged_product', {str(out)!r}, jobs=2, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=_shell_signals)
    try:
        deadline = time.time() + 60
        while time.time() < deadline and len(calls(log)) < 2:  # both workers are evaluating
            time.sleep(0.05)
        assert len(calls(log)) == 2
        family = psutil.Process(proc.pid).children(recursive=True)
        assert len(family) >= 2
        t0 = time.time()
        os.kill(proc.pid, sig)
        # the sweep stops at once (alone: well under a second); 30 s leaves room for a machine
        # whose two cores are taken by a parallel test run compiling Verilator models
        proc.wait(timeout=30)
        while _alive(family) and time.time() - t0 < 5:
            time.sleep(0.02)
        assert _alive(family) == [], f"still running {time.time() - t0:.1f} s after {sig!r}"
    finally:
        for p in _alive(psutil.Process(proc.pid).children(recursive=True)
                        if proc.poll() is None else []):
            p.kill()
        proc.kill()
        proc.wait()
    assert list((out / "points").glob("*.json")) == []


def _unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_dask_scheduler_is_one_line_at_once(tmp_path, capsys):
    address = f"tcp://127.0.0.1:{_unused_port()}"
    t0 = time.perf_counter()
    code = main(["sweep", "bitnet", "--dask", address, "-o", str(tmp_path / "s")])
    seconds = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"hwsim: error: cannot reach the Dask scheduler at {address} (")
    assert err.count("\n") == 1
    assert seconds < 10
    assert not (tmp_path / "s").exists()  # nothing trained or written


@pytest.mark.parametrize("address", ["tcp://127.0.0.1", "udp://host:1", "tcp://:80"])
def test_malformed_dask_address(tmp_path, address):
    with pytest.raises(HwsimError, match="is neither 'local' nor tcp://HOST:PORT"):
        run_sweep(points(tmp_path / "s", tmp_path / "log"), EVAL, tmp_path / "o", dask=address,
                  progress=False)
    assert not (tmp_path / "o").exists()


def test_a_moved_model_sweep_resumes(tmp_path):
    from hwsim.sweep.run import model_sweep

    kw = {"weights": (2,), "acts": (8,), "progress": False,
          "options": {"steps": 1, "per": 8}}  # the tiny AirFM of test_model_sweeps
    first = model_sweep("airfm", tmp_path / "a", **kw)["rows"]
    (tmp_path / "a").rename(tmp_path / "b")
    again = model_sweep("airfm", tmp_path / "b", **kw)["rows"]
    assert again == first  # read back, not evaluated again (same "seconds")
    assert len(json.loads((tmp_path / "b" / "results.json").read_text())) == 1
    assert len(list((tmp_path / "b" / "points").glob("*.json"))) == 1
