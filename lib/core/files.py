"""Files written whole or not at all (a temporary file beside the target, fsynced, renamed over it), and the
advisory lock that keeps a second writer out of a folder (POSIX flock)."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from pathlib import Path

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
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        f.write(data)


def atomic_write_json(path, obj) -> None:
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
