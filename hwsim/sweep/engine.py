"""Resumable, parallel evaluation of sweep points.

A sweep is a list of *points* (plain dicts of JSON-able values, e.g. ``{"weights": 4,
"acts": 8, "method": "ptq", "target": "vitallm"}``) and one *evaluator*, named by its import
path ``"package.module:function"`` so that any worker process (local or on a Dask cluster) can
import it; it takes a point and returns a dict of figures.

Storage (``OUT`` is the sweep folder)::

    OUT/points/<key>.json     one finished point: {"point", "result", "seconds"}, written atomically
    OUT/results.json, .csv    every finished point, rewritten atomically after each completion

A point is finished exactly when its file exists, so an interrupted sweep (Ctrl-C, kill -9)
resumes without redoing finished points, and no reader ever sees a torn results file.
Results do not depend on the backend: local worker processes and a Dask cluster run the same
evaluator on the same points.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import importlib
import io
import json
import multiprocessing
import time
from collections.abc import Callable
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_text
from hwsim.loading import check_meta, number, read_json

__all__ = ["SweepStore", "point_key", "resolve", "run_sweep"]


def point_key(point: dict) -> str:
    """A stable, readable file name for a point: ``weights4-acts8-ptq-…-<hash8>``."""
    text = json.dumps(point, sort_keys=True, default=str)
    slug = "-".join(f"{k}{v}" for k, v in sorted(point.items()))
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in slug)[:80]
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def resolve(path: str) -> Callable[[dict], dict]:
    """Import ``"module:function"``."""
    module, _, name = path.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as e:
        raise HwsimError(f"cannot import sweep evaluator {path!r}: {e}") from None


def _evaluate(path: str, point: dict) -> tuple[dict, float]:
    t0 = time.perf_counter()
    result = resolve(path)(dict(point))
    if not isinstance(result, dict):
        raise TypeError(f"{path} returned {type(result).__name__}, not a dict")
    return result, time.perf_counter() - t0


#: a finished point's file
_RECORD = {"point": {}, "result": {}, "seconds": number(0)}


class SweepStore:
    """The sweep folder: one file per finished point plus the aggregated results."""

    def __init__(self, out: Path):
        self.out = Path(out)
        self.points = self.out / "points"
        self.points.mkdir(parents=True, exist_ok=True)

    def done(self, point: dict) -> bool:
        return (self.points / f"{point_key(point)}.json").exists()

    def save(self, point: dict, result: dict, seconds: float) -> None:
        record = {"point": point, "result": result, "seconds": round(seconds, 3)}
        atomic_write_text(self.points / f"{point_key(point)}.json",
                          json.dumps(record, indent=1, default=float))

    def records(self) -> list[dict]:
        """Every finished point's record, checked: a point file that is not JSON or not a
        ``{"point", "result", "seconds"}`` record is refused with one line naming it (it
        would count as finished yet hold no result)."""
        out = []
        for f in sorted(self.points.glob("*.json")):
            try:
                out.append(check_meta(read_json(f, "sweep point"), _RECORD, f))
            except HwsimError as e:
                raise HwsimError(f"{e}; delete it to run that point again") from None
        return out

    def write_aggregate(self) -> list[dict]:
        rows = [{**r["point"], **r["result"], "seconds": r["seconds"]} for r in self.records()]
        atomic_write_text(self.out / "results.json", json.dumps(rows, indent=1, default=float))
        cols: list[str] = []
        for r in rows:
            cols += [c for c in r if c not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols)
        w.writeheader()
        w.writerows(rows)
        atomic_write_text(self.out / "results.csv", buf.getvalue())
        return rows


def run_sweep(points: list[dict], evaluator: str, out: Path, jobs: int = 1,
              dask: str | None = None, progress: bool = True) -> list[dict]:
    """Evaluate every unfinished point; return all rows (finished earlier or now).

    ``jobs`` worker processes run points in parallel (``jobs=1`` runs in this process).
    ``dask`` dispatches to a Dask distributed scheduler instead: an address such as
    ``tcp://127.0.0.1:8786``, or ``"local"`` for a :class:`distributed.LocalCluster` of
    ``jobs`` worker processes on loopback.
    """
    if jobs < 1:
        raise HwsimError(f"--jobs must be at least 1, not {jobs}")
    resolve(evaluator)  # fail early, in this process, on a bad evaluator path
    store = SweepStore(out)
    store.records()  # a corrupt point file is refused before any point runs
    todo = [p for p in points if not store.done(p)]
    bar = _bar(len(points), len(points) - len(todo), progress)
    try:
        if not todo:
            pass
        elif dask is not None:
            _run_dask(todo, evaluator, store, jobs, dask, bar)
        elif jobs == 1:
            for p in todo:
                result, secs = _evaluate(evaluator, p)
                store.save(p, result, secs)
                store.write_aggregate()
                bar.update(1)
        else:
            ctx = multiprocessing.get_context("spawn")
            with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                futures = {pool.submit(_evaluate, evaluator, p): p for p in todo}
                try:
                    for fut in cf.as_completed(futures):
                        result, secs = fut.result()
                        store.save(futures[fut], result, secs)
                        store.write_aggregate()
                        bar.update(1)
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
    finally:
        bar.close()
    return store.write_aggregate()


def _run_dask(todo, evaluator, store, jobs, address, bar) -> None:
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise HwsimError("--dask needs the optional extra: pip install 'hwsim[distributed]'") \
            from None
    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        address = cluster.scheduler_address
    try:
        with Client(address, timeout="30s") as client:
            futures = {client.submit(_evaluate, evaluator, p, pure=False): i
                       for i, p in enumerate(todo)}
            for fut in as_completed(futures):
                result, secs = fut.result()
                store.save(todo[futures[fut]], result, secs)
                store.write_aggregate()
                bar.update(1)
    finally:
        if cluster is not None:
            cluster.close()


def _bar(total: int, done: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc="sweep", unit="point", disable=not enabled,
                dynamic_ncols=True)
