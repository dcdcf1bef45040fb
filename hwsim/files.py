"""Output files that are never half-written, and paths that stay inside the build folder.

Every command that writes artifacts stages them in a hidden folder beside the target and moves
them in only when the whole step succeeded (:func:`staged_dir`); a crash or a bad input leaves
the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hwsim.errors import HwsimError

__all__ = ["atomic_write_bytes", "atomic_write_text", "inside", "staged_dir"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def inside(root: Path, *parts: str) -> Path:
    """``root / parts`` resolved, refusing anything that escapes ``root``."""
    root = Path(root).resolve()
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise HwsimError(f"path {'/'.join(parts)!r} leaves the build folder {root}")
    return path


@contextlib.contextmanager
def staged_dir(target: Path) -> Iterator[Path]:
    """Yield an empty staging folder; on success move its entries into ``target``.

    Entries replace same-named entries in ``target``; on any exception the staging folder is
    removed and ``target`` is untouched (not even created if it did not exist).
    """
    target = Path(target)
    parent = target.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=parent))
    try:
        yield stage
        target.mkdir(parents=True, exist_ok=True)
        for entry in sorted(stage.iterdir()):
            dest = target / entry.name
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            os.replace(entry, dest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
