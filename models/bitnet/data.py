"""Byte-level text corpora: CPython's own standard library (embedded, no download) or a user file.

The default corpus is the ``.py`` source of the running interpreter's standard library
(``sysconfig.get_paths()["stdlib"]``, ``site-packages`` excluded), files in sorted path order.
Whole files are assigned to one split: every ``val_every``-th file (in that order) goes to
validation, the rest to training, and each split is capped at a byte budget so training stays
minutes on a CPU. The split is a pure function of the file list: the same interpreter gives
the same bytes every time (:attr:`Corpus.digest` names them).

A user text file is split by position: its last ``val_fraction`` of bytes is validation. It
must be UTF-8 text without NUL bytes; anything else is rejected with one clear line.
"""

from __future__ import annotations

import hashlib
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwsim.errors import HwsimError

__all__ = ["Corpus", "batches", "stdlib_corpus", "text_file_corpus", "validation_windows"]

#: Default byte budgets (training, validation) of the standard-library corpus.
STDLIB_TRAIN_BYTES = 4 << 20
STDLIB_VAL_BYTES = 256 << 10


@dataclass(frozen=True)
class Corpus:
    """Training and validation bytes (uint8 arrays) and where they came from."""

    train: np.ndarray
    val: np.ndarray
    source: str

    @property
    def digest(self) -> str:
        h = hashlib.sha256()
        h.update(self.train.tobytes())
        h.update(b"\0--val--\0")
        h.update(self.val.tobytes())
        return h.hexdigest()[:16]

    def describe(self) -> dict:
        return {"source": self.source, "train_bytes": int(self.train.size),
                "val_bytes": int(self.val.size), "sha256_16": self.digest}


def _stdlib_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [p for p in root.rglob("*.py")
             if "site-packages" not in p.parts and "dist-packages" not in p.parts]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def stdlib_corpus(train_bytes: int = STDLIB_TRAIN_BYTES, val_bytes: int = STDLIB_VAL_BYTES,
                  val_every: int = 10) -> Corpus:
    """The embedded default corpus (see the module docstring)."""
    if train_bytes < 1 or val_bytes < 1 or val_every < 2:
        raise HwsimError("corpus budgets must be positive and val_every at least 2")
    train, val, nt, nv = [], [], 0, 0
    for i, path in enumerate(_stdlib_files()):
        if nt >= train_bytes and nv >= val_bytes:
            break
        try:
            data = path.read_bytes()
        except OSError:
            continue  # an unreadable file is skipped the same way every time
        if i % val_every == val_every - 1:
            if nv < val_bytes:
                val.append(data)
                nv += len(data)
        elif nt < train_bytes:
            train.append(data)
            nt += len(data)
    if not train or not val:
        raise HwsimError(f"no standard-library source found under {sysconfig.get_paths()['stdlib']}")
    t = np.frombuffer(b"".join(train), dtype=np.uint8)[:train_bytes].copy()
    v = np.frombuffer(b"".join(val), dtype=np.uint8)[:val_bytes].copy()
    return Corpus(t, v, f"CPython {sysconfig.get_python_version()} stdlib .py files")


def text_file_corpus(path: Path, val_fraction: float = 0.1, min_bytes: int = 1024) -> Corpus:
    """A user's text file, split by position; non-text files raise :class:`HwsimError`."""
    path = Path(path)
    if not 0 < val_fraction < 1:
        raise HwsimError(f"validation fraction must be in (0, 1), not {val_fraction}")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise HwsimError(f"cannot read text file {path}: {e.strerror or e}") from None
    if b"\0" in data:
        raise HwsimError(f"{path} is not a text file (it contains NUL bytes)")
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise HwsimError(f"{path} is not a UTF-8 text file (invalid byte at offset {e.start})") \
            from None
    if len(data) < min_bytes:
        raise HwsimError(f"{path} holds {len(data)} bytes; at least {min_bytes} are needed")
    arr = np.frombuffer(data, dtype=np.uint8).copy()
    cut = round(len(arr) * (1 - val_fraction))
    return Corpus(arr[:cut], arr[cut:], f"text file {path.name}")


def batches(data: np.ndarray, batch: int, seq: int, rng: np.random.Generator):
    """Endless random (inputs, targets) windows of ``seq`` bytes, int64 (batch, seq) each."""
    if data.size < seq + 2:
        raise HwsimError(f"{data.size} bytes cannot make a window of {seq} + 1 bytes")
    while True:
        starts = rng.integers(0, data.size - seq - 1, batch)
        win = np.stack([data[s:s + seq + 1] for s in starts]).astype(np.int64)
        yield win[:, :-1], win[:, 1:]


def validation_windows(data: np.ndarray, seq: int, max_windows: int | None = None) -> np.ndarray:
    """Non-overlapping (n, seq + 1) windows from the start of ``data`` — deterministic."""
    n = (data.size - 1) // seq
    if n < 1:
        raise HwsimError(f"validation data of {data.size} bytes is shorter than one window")
    if max_windows is not None:
        n = min(n, max_windows)
    idx = np.arange(n)[:, None] * seq + np.arange(seq + 1)[None, :]
    return data[idx].astype(np.int64)
