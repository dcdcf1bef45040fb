"""A flow is a list of named steps; a finished step is not redone.

Each step gets its own folder ``BUILD/<step>/`` and returns an *artifact*: a JSON-able dict (paths
inside the step folder are stored relative to it). A step is keyed by a hash of its declared
inputs and of the keys and outputs of the steps before it; when ``BUILD/<step>/step.json`` holds
the same key and every output file the step wrote still has the SHA-256 recorded in
``step.json``, the step is skipped and its artifact reused; a changed,
truncated or removed output makes the step run again. A step runs in a staging folder that
replaces ``BUILD/<step>/`` only when the step succeeded, with ``step.json`` written last, so an
interrupted run never leaves a folder that a later run would take for finished; staging folders
left by a killed run are removed by the next one.

One run at a time: a run holds ``BUILD/.hwsim.lock`` (:func:`hwsim.files.folder_lock`), and a
second run on the same folder stops at once with one line saying the folder is busy.

Every step may verify its result against the previous steps' artifacts (FINN-style: one
expected output re-checked after every lowering); a failed check raises and the step is not
recorded as finished.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.files import LOCK_NAME, atomic_write_text, folder_lock, remove_stale_temps

__all__ = ["Flow", "Step", "StepContext"]


@dataclass
class StepContext:
    """What a running step sees: its folder, the flow's options and earlier artifacts."""

    build: Path
    folder: Path                      # the step's (staging) folder: write outputs here
    options: dict
    artifacts: dict[str, dict]        # finished steps' artifacts, by step name

    def path_of(self, step: str, rel: str) -> Path:
        """Absolute path of a file another step recorded in its artifact."""
        return self.build / step / rel


@dataclass(frozen=True)
class Step:
    name: str
    title: str
    run: Callable[[StepContext], dict]
    #: option names whose values key this step (besides the keys of the earlier steps)
    uses: tuple[str, ...] = ()


@dataclass
class Flow:
    name: str
    steps: list[Step]
    build: Path
    options: dict = field(default_factory=dict)

    def _key(self, step: Step, upstream: str) -> str:
        payload = {"flow": self.name, "step": step.name, "upstream": upstream,
                   "options": {k: self.options.get(k) for k in step.uses}}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def run(self, start: str | None = None, progress: Callable[[str], None] = print) -> dict:
        """Run the steps in order; ``start`` reruns from that step on. Returns all artifacts."""
        names = [s.name for s in self.steps]
        if start is not None and start not in names:
            raise HwsimError(f"unknown step {start!r}; steps are: {', '.join(names)}")
        try:
            self.build.mkdir(parents=True, exist_ok=True)
            # a probe of its own: a second run's probe must not look like an unwritable folder
            tempfile.TemporaryFile(dir=self.build).close()
        except OSError as e:
            raise HwsimError(f"build folder {self.build} is not writable ({e.strerror})") from None
        with folder_lock(self.build, "build folder"):
            return self._run_locked(start, progress)

    def _run_locked(self, start: str | None, progress: Callable[[str], None]) -> dict:
        for stale in self.build.glob(".*.staging"):  # left by an interrupted run
            shutil.rmtree(stale, ignore_errors=True)
        remove_stale_temps(self.build)
        artifacts: dict[str, dict] = {}
        upstream, forced = "", False
        for i, step in enumerate(self.steps, 1):
            forced = forced or step.name == start
            key = self._key(step, upstream)
            folder = self.build / step.name
            record = folder / "step.json"
            head = f"[{i}/{len(self.steps)}] {step.title}"
            done = None if forced else _finished(folder, key)
            if isinstance(done, dict):
                artifacts[step.name] = done["artifact"]
                progress(f"{head} … done earlier (cached)")
                upstream = _chain(key, done["outputs"])
                continue
            progress(f"{head} …" if done is None else f"{head} … ({done}; redoing it)")
            stage = self.build / f".{step.name}.staging"
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir()
            t0 = time.perf_counter()
            try:
                artifact = step.run(StepContext(self.build, stage, self.options, artifacts))
                outputs = _hash_outputs(stage)
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            artifact = {**artifact, "seconds": round(time.perf_counter() - t0, 3)}
            shutil.rmtree(folder, ignore_errors=True)
            stage.rename(folder)
            atomic_write_text(record, json.dumps({"key": key, "artifact": artifact,
                                                  "outputs": outputs}, indent=1, default=str))
            artifacts[step.name] = artifact
            progress(f"{head} ok ({artifact['seconds']:.1f} s)")
            upstream = _chain(key, outputs)
        return artifacts


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _hash_outputs(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder`` but the step's record and folder locks (which
    record who holds a folder, not what a step made), by POSIX relative path."""
    return {p.relative_to(folder).as_posix(): _sha256(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != LOCK_NAME
            and p.relative_to(folder).as_posix() != "step.json"}


def _chain(key: str, outputs: dict[str, str]) -> str:
    """What the next step's key depends on: this step's key and the digests of its outputs."""
    return hashlib.sha256(json.dumps([key, outputs], sort_keys=True).encode()).hexdigest()


def _finished(folder: Path, key: str) -> dict | str | None:
    """The done-record of the step in ``folder`` if it is finished for ``key`` with every output
    intact; else why not (a short phrase), or None when the step never finished here."""
    try:
        done = json.loads((folder / "step.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return "its record is unreadable"
    if not isinstance(done, dict) or done.get("key") != key:
        return None
    outputs = done.get("outputs")
    if not isinstance(outputs, dict) or not isinstance(done.get("artifact"), dict):
        return "its outputs were not recorded"
    now = _hash_outputs(folder)
    for rel, digest in outputs.items():
        if rel not in now:
            return f"output {rel} was removed"
        if now[rel] != digest:
            return f"output {rel} changed since it was written"
    return done
