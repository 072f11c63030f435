"""Where a notebook's seconds go: wall time per stage (extraction, probes, k-means, sampling, plotting).

    with stage("probes"): ...            # or @timed("probes") on a function
    totals()                             # {"probes": 12.3, ...} of this process

Only the outermost stage counts (a probe fitted inside a sampling stage is sampling time), so the stages of
one process add up to at most its wall time; what no stage covers (imports, setup, the kernel) is the rest.
When the environment variable LIB_PROFILE names a file (the notebook runner sets it for each kernel), the
totals are written there as JSON at the end of the process and after every outermost stage, so a kernel that
is shut down without exiting cleanly still leaves its numbers.
"""
from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import time
from pathlib import Path

STAGES = ("extraction", "probes", "kmeans", "sampling", "plotting", "cache")

_totals: dict[str, float] = {}
_depth = 0


@contextlib.contextmanager
def stage(name: str):
    """Add the wall time of the block to ``name``'s total, unless another stage is already open."""
    global _depth
    if name not in STAGES:
        raise ValueError(f"stage: {name!r} is not one of {STAGES}")
    _depth += 1
    t0 = time.perf_counter()
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0:
            _totals[name] = _totals.get(name, 0.0) + time.perf_counter() - t0
            _write()


def timed(name: str):
    """Decorator form of `stage`."""
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            with stage(name):
                return fn(*args, **kwargs)
        return inner
    return wrap


def totals() -> dict[str, float]:
    """Seconds per stage so far in this process."""
    return dict(_totals)


def reset() -> None:
    """Forget the seconds recorded so far in this process."""
    _totals.clear()


def _write() -> None:
    path = os.environ.get("LIB_PROFILE")
    if not path or not _totals:
        return
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({k: round(v, 2) for k, v in sorted(_totals.items())}, indent=1) + "\n")
        os.replace(tmp, p)
    except OSError:  # a profile is never worth failing a notebook for
        pass


atexit.register(_write)
