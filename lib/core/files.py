"""Files written whole or not at all (a temporary file beside the target, fsynced, renamed over it), and the
advisory lock that keeps a second writer out of a folder (POSIX flock). JSON records that several processes
update (``times.json``) are merged under a lock (`merge_json`)."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

from lib.core.checks import read_json

UMASK = os.umask(0)
os.umask(UMASK)
FILE_MODE = 0o666 & ~UMASK  # what open() would give; mkstemp alone gives 0600


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; on success fsync it and rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed into place: readers see the old or the new file."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_json(path, obj) -> None:
    """`atomic_write_bytes` of ``obj`` as indented JSON with sorted keys."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


@contextlib.contextmanager
def exclusive_lock(folder, what: str = "folder", shared: bool = False):
    """Hold an advisory lock on ``folder/.lock`` for the duration of the block: exclusive for the one
    process that writes the folder, shared for readers (``shared=True``; no lock file, no lock). The kernel
    releases it when the process dies, so a killed run never leaves a stale lock. A held lock is a
    FileExistsError naming the folder and the holder's pid."""
    path = Path(folder) / ".lock"
    if shared and not path.is_file():
        yield
        return
    try:
        if not shared:
            path.parent.mkdir(parents=True, exist_ok=True)
        f = open(path, "r" if shared else "a+")
    except OSError as e:
        raise PermissionError(f"{folder}: cannot lock the {what}: {e}") from None
    with f:
        try:
            fcntl.flock(f, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "pid unknown"
            raise FileExistsError(f"{folder}: another process ({holder}) is writing this {what}; wait for it "
                                  f"to finish or use another folder") from None
        if not shared:
            f.seek(0)
            f.truncate()
            f.write(f"pid {os.getpid()}")
            f.flush()
        yield


@contextlib.contextmanager
def waiting_lock(path, timeout_s: float = 600.0):
    """A blocking exclusive advisory lock on the file ``path`` (created if absent), for a short read-modify-write
    of a shared record; waits up to ``timeout_s`` for another holder, then TimeoutError naming the file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 > timeout_s:
                    raise TimeoutError(f"{path}: still locked by another writer after {timeout_s:.0f} s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def merge_json(path, update: dict, what: str = "JSON record", lock_timeout_s: float = 600.0) -> dict:
    """Merge ``update`` into the JSON object in ``path`` under a lock (``.<name>.lock`` beside it) and write it
    atomically: concurrent writers each add their keys and lose none of the others'. An unreadable file is
    an error naming it (it is not silently replaced). Returns the merged object."""
    path = Path(path)
    with waiting_lock(path.with_name(f".{path.name}.lock"), lock_timeout_s):
        old = read_json(path, what) if path.is_file() else {}
        if not isinstance(old, dict):
            raise ValueError(f"{path}: {what}: expected a JSON object, got {type(old).__name__}")
        merged = {**old, **update}
        atomic_write_json(path, merged)
    return merged
