"""Sweep engine: resume after kill -9, atomic results, parallel and Dask give identical rows."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwsim.errors import HwsimError
from hwsim.sweep import pareto_front, point_key, run_sweep

ROOT = Path(__file__).resolve().parents[2]
EVAL = "tests.sweep.evaluators:logged_product"


def grid(log, delay=0.0):
    return [{"weights": w, "acts": a, "log": str(log), "delay": delay}
            for w in (2, 3, 4, 8) for a in (4, 8)]


def strip(rows):
    return sorted(({k: v for k, v in r.items() if k not in ("seconds", "log", "delay")}
                   for r in rows), key=lambda r: (r["weights"], r["acts"]))


def test_point_keys_are_stable_and_distinct():
    a = {"weights": 4, "acts": 8}
    assert point_key(a) == point_key({"acts": 8, "weights": 4})
    assert point_key(a) != point_key({"weights": 8, "acts": 4})


def test_runs_and_resumes_without_redoing(tmp_path):
    log = tmp_path / "calls.log"
    rows = run_sweep(grid(log), EVAL, tmp_path / "out", progress=False)
    assert len(rows) == 8 and len(log.read_text().splitlines()) == 8
    again = run_sweep(grid(log), EVAL, tmp_path / "out", progress=False)
    assert strip(again) == strip(rows)
    assert len(log.read_text().splitlines()) == 8  # nothing evaluated twice
    csv = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert csv[0].startswith("weights,acts") and len(csv) == 9


def test_kill_9_mid_sweep_then_resume(tmp_path):
    log, out = tmp_path / "calls.log", tmp_path / "out"
    code = (f"from hwsim.sweep import run_sweep; "
            f"run_sweep({grid(log, delay=0.4)!r}, {EVAL!r}, {str(out)!r}, progress=False)")
    # `python -c` imports from its working folder: the repository root
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((out / "points").glob("*.json"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {json.loads(f.read_text())["point"]["weights"] * 100
                + json.loads(f.read_text())["point"]["acts"]
                for f in (out / "points").glob("*.json")}
    assert 3 <= len(finished) < 8
    json.loads((out / "results.json").read_text())  # never torn
    run_sweep(grid(log, delay=0.4), EVAL, out, progress=False)
    calls = [tuple(map(int, line.split(","))) for line in log.read_text().splitlines()]
    for key in finished:  # a point finished before the kill was evaluated exactly once
        assert calls.count((key // 100, key % 100)) == 1
    assert len(json.loads((out / "results.json").read_text())) == 8


def test_parallel_and_dask_match_serial(tmp_path):
    serial = run_sweep(grid(tmp_path / "a.log"), EVAL, tmp_path / "serial", progress=False)
    parallel = run_sweep(grid(tmp_path / "b.log"), EVAL, tmp_path / "par", jobs=2,
                         progress=False)
    dask = run_sweep(grid(tmp_path / "c.log"), EVAL, tmp_path / "dask", jobs=2, dask="local",
                     progress=False)
    assert strip(serial) == strip(parallel) == strip(dask)


@pytest.mark.parametrize("evaluator, message", [
    ("tests.sweep.nope:f", "cannot import sweep evaluator"),
    ("tests.sweep.evaluators:missing", "cannot import sweep evaluator"),
])
def test_bad_evaluator(tmp_path, evaluator, message):
    with pytest.raises(HwsimError, match=message):
        run_sweep(grid(tmp_path / "x.log"), evaluator, tmp_path / "o", progress=False)


def test_failing_point_keeps_finished_ones(tmp_path):
    with pytest.raises(RuntimeError, match="evaluation failed"):
        run_sweep([{"weights": 2, "acts": 4}], "tests.sweep.evaluators:failing", tmp_path,
                  progress=False)
    assert not list((tmp_path / "points").glob("*.json"))


def test_pareto_front():
    rows = [{"m": 1.0, "c": 1}, {"m": 2.0, "c": 2}, {"m": 1.5, "c": 3}, {"m": 3.0, "c": 3},
            {"m": 3.0, "c": 4}]
    assert pareto_front(rows, "m", "c", higher_is_better=True) == [rows[0], rows[1], rows[3]]
    assert pareto_front(rows, "m", "c", higher_is_better=False) == [rows[0]]
