"""A flow is a list of named steps; a finished step is not redone.

Each step gets its own folder ``BUILD/<step>/`` and returns an *artifact*: a JSON-able dict (paths
inside the step folder are stored relative to it). A step is keyed by a hash of its declared
inputs and of the keys of the steps before it; when ``BUILD/<step>/step.json`` holds the same
key, the step is skipped and its artifact reused. A step runs in a staging folder that replaces
``BUILD/<step>/`` only when the step succeeded, with ``step.json`` written last, so an
interrupted run never leaves a folder that a later run would take for finished.

Every step may verify its result against the previous steps' artifacts (FINN-style: one
expected output re-checked after every lowering); a failed check raises and the step is not
recorded as finished.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hwsim.errors import HwsimError
from hwsim.files import atomic_write_text

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
        self.build.mkdir(parents=True, exist_ok=True)
        for stale in self.build.glob(".*.staging"):  # left by an interrupted run
            shutil.rmtree(stale, ignore_errors=True)
        artifacts: dict[str, dict] = {}
        upstream, forced = "", False
        for i, step in enumerate(self.steps, 1):
            forced = forced or step.name == start
            key = self._key(step, upstream)
            folder = self.build / step.name
            record = folder / "step.json"
            head = f"[{i}/{len(self.steps)}] {step.title}"
            if not forced and record.exists():
                done = json.loads(record.read_text())
                if done.get("key") == key:
                    artifacts[step.name] = done["artifact"]
                    progress(f"{head} … done earlier (cached)")
                    upstream = key
                    continue
            progress(f"{head} …")
            stage = self.build / f".{step.name}.staging"
            shutil.rmtree(stage, ignore_errors=True)
            stage.mkdir()
            t0 = time.perf_counter()
            try:
                artifact = step.run(StepContext(self.build, stage, self.options, artifacts))
            except BaseException:
                shutil.rmtree(stage, ignore_errors=True)
                raise
            artifact = {**artifact, "seconds": round(time.perf_counter() - t0, 3)}
            shutil.rmtree(folder, ignore_errors=True)
            stage.rename(folder)
            atomic_write_text(record, json.dumps({"key": key, "artifact": artifact}, indent=1,
                                                 default=str))
            artifacts[step.name] = artifact
            progress(f"{head} ok ({artifact['seconds']:.1f} s)")
            upstream = key
        return artifacts
