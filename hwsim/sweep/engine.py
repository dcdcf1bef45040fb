"""Resumable, parallel evaluation of sweep points.

A sweep is a list of *points* (plain dicts of JSON-able values, e.g. ``{"weights": 4,
"acts": 8, "method": "ptq", "target": "vitallm"}``) and one *evaluator*, named by its import
path ``"package.module:function"`` so that any worker process (local or on a Dask cluster) can
import it; it takes a point and returns a dict of figures.

Storage (``OUT`` is the sweep folder)::

    OUT/points/<key>.json     one finished point: {"point", "result", "seconds"}, written atomically
    OUT/results.json, .csv    every finished point once, rewritten atomically after each completion

A point is finished exactly when a record of its key exists, so an interrupted sweep (Ctrl-C,
kill -9) resumes without redoing finished points, and no reader ever sees a torn results file.

A sweep's identity does not depend on where its folder is: a path inside ``OUT`` that a point
carries (say, the checkpoint its ``prepare`` trained into the folder) is stored and keyed as
``<sweep>/REL``, and handed to the evaluator as an absolute path under the folder's present
location. A renamed or copied sweep folder therefore resumes where it stopped, and the results
hold every point once (records are deduplicated by key).

One sweep at a time per folder (:func:`hwsim.files.folder_lock`). Worker processes die with
the sweep: they ask the kernel for SIGKILL when their parent dies (Linux ``PR_SET_PDEATHSIG``),
watch their parent besides, and are killed when the sweep stops on an exception or Ctrl-C.
Results do not depend on the backend: local worker processes and a Dask cluster run the same
evaluator on the same points.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import csv
import hashlib
import importlib
import io
import json
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_text, folder_lock, remove_stale_temps
from hwsim.loading import check_meta, number, read_json

__all__ = ["SWEEP_DIR", "SweepStore", "check_dask", "check_records", "point_key", "portable", "resolve",
           "run_sweep"]

#: how a path inside the sweep folder is written in a stored (and keyed) point
SWEEP_DIR = "<sweep>"
#: seconds to reach a Dask scheduler before giving up
DASK_CONNECT_S = 3.0


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


def portable(value, out: Path):
    """``value`` with every absolute path inside ``out`` written as ``<sweep>/REL``."""
    root = os.path.realpath(out)
    if isinstance(value, dict):
        return {k: portable(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(portable(v, root) for v in value)
    if isinstance(value, str) and os.path.isabs(value):
        real = os.path.realpath(value)
        if real == root:
            return SWEEP_DIR
        if real.startswith(root + os.sep):
            return f"{SWEEP_DIR}/{Path(os.path.relpath(real, root)).as_posix()}"
    return value


def _localize(value, root: str):
    """The inverse of :func:`portable` for the folder's present location ``root``."""
    if isinstance(value, dict):
        return {k: _localize(v, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_localize(v, root) for v in value)
    if isinstance(value, str) and (value == SWEEP_DIR or value.startswith(SWEEP_DIR + "/")):
        return os.path.join(root, *value[len(SWEEP_DIR) + 1:].split("/")) \
            if value != SWEEP_DIR else root
    return value


def _evaluate(path: str, point: dict) -> tuple[dict, float]:
    t0 = time.perf_counter()
    result = resolve(path)(dict(point))
    if not isinstance(result, dict):
        raise TypeError(f"{path} returned {type(result).__name__}, not a dict")
    return result, time.perf_counter() - t0


#: a finished point's file
_RECORD = {"point": {}, "result": {}, "seconds": number(0)}


def check_records(out: Path) -> list[tuple[Path, dict]]:
    """The finished points' records of the sweep folder ``out`` (none if it has none), each
    checked, without writing anything: a point file that is not a ``{"point", "result",
    "seconds"}`` record would count as finished yet hold no result, so it is refused with one
    line naming it. Sweeps call this before any expensive preparation (training)."""
    out_records = []
    for f in sorted((Path(out) / "points").glob("*.json")):
        try:
            out_records.append((f, check_meta(read_json(f, "sweep point"), _RECORD, f)))
        except HwsimError as e:
            raise HwsimError(f"{e}; delete it to run that point again") from None
    return out_records


class SweepStore:
    """The sweep folder: one record per finished point plus the aggregated results.

    Open it only while holding the folder's lock (:func:`run_sweep` does).
    """

    def __init__(self, out: Path):
        self.out = Path(out)
        self.points = self.out / "points"
        self.points.mkdir(parents=True, exist_ok=True)
        self.root = os.path.realpath(self.out)
        for folder in (self.out, self.points):  # left by a write that was killed
            remove_stale_temps(folder)
        self._index = self._load()

    def identity(self, point: dict) -> dict:
        """The point as it is stored and keyed: paths inside the folder made relative."""
        return portable(point, self.root)

    def local(self, point: dict) -> dict:
        """The point as an evaluator gets it: ``<sweep>/…`` paths under the present folder."""
        return _localize(point, self.root)

    def key(self, point: dict) -> str:
        return point_key(self.identity(point))

    def _load(self) -> dict[str, dict]:
        index: dict[str, dict] = {}
        for f, record in check_records(self.out):
            point = self.identity(record["point"])  # records of older releases: absolute
            key = point_key(point)
            if key not in index or f.stem == key:
                index[key] = {**record, "point": point}
        return index

    def done(self, point: dict) -> bool:
        return self.key(point) in self._index

    def save(self, point: dict, result: dict, seconds: float) -> None:
        point = self.identity(point)
        key = point_key(point)
        record = {"point": point, "result": result, "seconds": round(seconds, 3)}
        atomic_write_text(self.points / f"{key}.json", json.dumps(record, indent=1, default=float))
        self._index[key] = record

    def records(self) -> list[dict]:
        """Every finished point once, in key order."""
        return [self._index[k] for k in sorted(self._index)]

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
    ``jobs`` worker processes on loopback. Raises :class:`HwsimError` (before the folder is
    touched) for a bad evaluator or an unreachable scheduler, and when another sweep holds
    the folder.
    """
    if jobs < 1:
        raise HwsimError(f"--jobs must be at least 1, not {jobs}")
    resolve(evaluator)  # fail early, in this process, on a bad evaluator path
    if dask is not None:
        check_dask(dask)
    with folder_lock(out, "sweep folder"):
        store = SweepStore(out)
        todo, seen = [], set()
        for p in points:
            key = store.key(p)
            if key not in seen and not store.done(p):
                todo.append(store.local(store.identity(p)))
            seen.add(key)
        bar = _bar(len(seen), len(seen) - len(todo), progress)
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
                _run_pool(todo, evaluator, store, jobs, bar)
        finally:
            bar.close()
        return store.write_aggregate()


@contextlib.contextmanager
def _deferred_ctrl_c():
    """Within the block a SIGINT sets the returned event instead of raising KeyboardInterrupt,
    so Ctrl-C cannot land inside the executor's own code while it holds a future's lock (which
    hangs the shutdown that follows); the caller polls the event. Outside the main thread,
    where no handler can be installed, the event is never set and Ctrl-C behaves as usual."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_pool(todo, evaluator, store, jobs, bar) -> None:
    ctx = multiprocessing.get_context("spawn")
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_worker_init,
                                  initargs=(os.getpid(),))
    try:
        with _deferred_ctrl_c() as interrupted:
            futures = {pool.submit(_evaluate, evaluator, p): p for p in todo}
            pending = set(futures)
            while pending:
                done, pending = cf.wait(pending, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    result, secs = fut.result()
                    store.save(futures[fut], result, secs)
                    store.write_aggregate()
                    bar.update(1)
                if interrupted.is_set():
                    raise KeyboardInterrupt
    except BaseException:
        # a failed point or Ctrl-C: stop the points still running instead of waiting for them
        # (the executor has no public way to reach its processes)
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            if proc.is_alive():
                proc.kill()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _worker_init(parent: int) -> None:
    """A worker dies with the sweep that started it, however the sweep ends."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the sweep, which kills us
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the watchdog holds
            ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True,
                     name="hwsim-parent-watchdog").start()


def _watch_parent(parent: int, every_s: float = 0.5) -> None:
    while os.getppid() == parent:
        time.sleep(every_s)
    os._exit(1)


def check_dask(address: str, timeout: float = DASK_CONNECT_S) -> None:
    """One clear line, within ``timeout`` seconds, unless ``address`` can be used: ``"local"``
    needs the optional extra installed, a ``tcp://HOST:PORT`` scheduler must accept a
    connection."""
    try:
        import distributed  # noqa: F401 (only whether it is installed)
    except ImportError:
        raise HwsimError("--dask needs the optional extra: pip install 'hwsim[distributed]'") \
            from None
    if address == "local":
        return
    url = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = url.hostname, url.port
    except ValueError:
        host = port = None
    if url.scheme not in ("tcp", "tls") or not host or port is None:
        raise HwsimError(f"--dask address {address!r} is neither 'local' nor tcp://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        why = e.strerror or str(e) or type(e).__name__
        raise HwsimError(f"cannot reach the Dask scheduler at {address} ({why})") from None


def _run_dask(todo, evaluator, store, jobs, address, bar) -> None:
    from dask.distributed import Client, LocalCluster, as_completed  # check_dask: installed

    cluster = None
    if address == "local":
        cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=None)
        address = cluster.scheduler_address
    try:
        try:
            client = Client(address, timeout=f"{DASK_CONNECT_S * 3:g}s")
        except (OSError, TimeoutError) as e:
            raise HwsimError(f"cannot connect to the Dask scheduler at {address} ({e})") from None
        with client:
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
