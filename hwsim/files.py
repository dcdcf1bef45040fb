"""Output files that are never half-written, and paths that stay inside the build folder.

Every command that writes artifacts stages them in a hidden folder beside the target and moves
them in only when the whole step succeeded (:func:`staged_dir`); a crash or a bad input leaves
the target as it was.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hwsim.errors import HwsimError

__all__ = ["atomic_write_bytes", "atomic_write_text", "check_output_dir", "check_output_file",
           "folder_lock", "inside", "remove_stale_temps", "staged_dir"]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent)
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


def _existing_ancestor(path: Path) -> Path:
    """The nearest ancestor of ``path`` (or ``path`` itself) that exists."""
    p = Path(os.path.abspath(path))
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _probe_writable(folder: Path, what: str) -> None:
    """Create and remove an empty folder in ``folder``: the only test that holds for root, for
    read-only mounts and for /proc alike."""
    try:
        probe = tempfile.mkdtemp(prefix=".hwsim-probe-", dir=folder)
    except OSError as e:
        raise HwsimError(f"{what} is not writable ({folder}: {e.strerror or e})") from None
    os.rmdir(probe)


def _check_output(path: Path, kind: str, want_dir: bool) -> Path:
    path = Path(path)
    what = f"{kind} {path}"
    if str(path) == "":
        raise HwsimError(f"{kind} must not be empty")
    if path.is_symlink():
        raise HwsimError(f"{what} is a symbolic link; give the real path (links are not "
                         f"followed)")
    if os.path.lexists(path):
        if path.is_dir():
            if not want_dir:
                raise HwsimError(f"{what} is a folder, not a file")
            _probe_writable(path, what)
            return path
        if path.is_file():
            if want_dir:
                raise HwsimError(f"{what} is not a folder (an existing file)")
            _probe_writable(path.parent if str(path.parent) else Path("."), what)
            return path
        raise HwsimError(f"{what} is a device or special file, not a "
                         f"{'folder' if want_dir else 'regular file'}")
    anc = _existing_ancestor(path)
    if not anc.is_dir():
        raise HwsimError(f"{what} is not writable ({anc} is a file, not a folder)")
    _probe_writable(anc, what)
    return path


def check_output_dir(path: Path, kind: str = "output folder") -> Path:
    """Refuse, with one line, an output folder that cannot be written, before any work.

    ``path`` must not be a symbolic link (it is never followed), an existing file, a device
    or other special file, or lie under a file or a folder that cannot be written (read-only
    mounts, ``/proc``); a folder that does not exist yet is fine if its nearest existing
    ancestor can be written. Nothing is left behind. Returns ``path``.
    """
    return _check_output(path, kind, want_dir=True)


def check_output_file(path: Path, kind: str = "output file") -> Path:
    """:func:`check_output_dir` for one output file: an existing regular file may be replaced;
    a folder, a device, a symbolic link or an unwritable place is refused."""
    return _check_output(path, kind, want_dir=False)


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
    target = check_output_dir(Path(target))  # one line, before any work, for a bad target
    parent = target.resolve().parent
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(parent, target.name)
    stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-{os.getpid()}-", dir=parent))
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


# ---------------------------------------------------------------------------------------------
# leftovers of killed writes, and one writer per folder

#: ``.NAME.staging-PID-XXXX`` (staged_dir) and ``.NAME.tmp-PID-XXXX`` (atomic writes); the
#: staging folders of releases before the PID was named (``.NAME.staging-XXXXXXXX``) too
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?:staging-(?:(?P<pid>\d+)-)?|tmp-(?P<tmp_pid>\d+)-)[^-]+$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_temps(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the staging folders and temporary files that a killed write left in ``folder``.

    Only leftovers whose writer is no longer running are removed (their name holds the PID
    that made them), so a write in progress in another process is never touched. ``name``
    limits the sweep to the leftovers of that one target. Returns what was removed.
    """
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is None or (name is not None and m["name"] != name):
            continue
        pid = m["pid"] or m["tmp_pid"]
        if pid is not None and _alive(int(pid)):
            continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        removed.append(path)
    return removed


#: lock file in every folder that :func:`folder_lock` guards
LOCK_NAME = ".hwsim.lock"
_held: dict[Path, list] = {}  # folder → [open lock file, depth]: re-entrant within a process


@contextlib.contextmanager
def folder_lock(folder: Path, what: str = "folder") -> Iterator[Path]:
    """Hold ``folder``'s lock (``folder/.hwsim.lock``, created with the folder) for the block.

    A second holder — another process, or another ``hwsim`` command — gets one line,
    :class:`~hwsim.errors.HwsimError` ``"<what> FOLDER is busy: … (pid N)"``, at once. The lock
    is an ``flock`` on the open file, so the operating system releases it when its holder
    exits, however it exits: a lock file left by a killed run never blocks. Re-entrant within
    one process. A folder that the lock created and that holds nothing but the lock file when
    the block ends (say, the block failed before writing) is removed again.
    """
    folder = Path(folder)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        real = folder.resolve()
    except OSError as e:
        raise HwsimError(f"{what} {folder} cannot be created ({e.strerror})") from None
    if real in _held:
        _held[real][1] += 1
        try:
            yield real
        finally:
            _held[real][1] -= 1
        return
    import fcntl

    path = real / LOCK_NAME
    try:
        f = open(path, "a+")  # noqa: SIM115 (held open for the whole block, closed below)
    except OSError as e:
        raise HwsimError(f"{what} {folder} is not writable ({e.strerror})") from None
    try:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "?"
            raise HwsimError(f"{what} {folder} is busy: another hwsim command is working in it "
                             f"(pid {owner})") from None
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()}\n")
        f.flush()
        _held[real] = [f, 1]
        try:
            yield real
        finally:
            del _held[real]
            if created:  # still holding the lock, so no other process is in the folder
                with contextlib.suppress(OSError):
                    if os.listdir(real) == [LOCK_NAME]:
                        path.unlink()
                        real.rmdir()
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    finally:
        f.close()
