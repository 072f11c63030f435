"""A content-keyed on-disk cache for what is expensive and deterministic given its inputs (phi, probe fits,
samples), shared by every notebook of a `make figures` run and by later runs.

    key = {"weights": weights_sha256(model), "images": digest(x), "sigma": 0.2, "n_noise": 4, "seed": 0}
    arrays = memo_arrays("phi", key, lambda: {"mid": compute()})      # {name: ndarray}
    record = memo_json("readout", key, lambda: {...})                  # a JSON-able value

The key holds the inputs themselves (their content digests: weights, image bytes, labels), never names or
paths, so an entry cannot be stale: other weights or other images are another key. Each entry stores its
key and is refused (reported, recomputed and replaced) when it does not load, is truncated, holds another
key or non-finite numbers where the computation gave finite ones. Entries are written to a temporary file and
moved into place; a lock per key makes a second process that asks for the same entry wait for the first
instead of computing it again (two notebooks at once). Nothing here changes a result: a hit returns what the
computation returned when the entry was written.

Where: LIB_CACHE (a folder; "off" or "0" disables the cache), else ``data/cache/memo`` under the repository
(git-ignored). `make clean-cache` removes it. Small computations are not worth a file: callers cache only
above a size (`phi` from 256 images up).
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sys
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from lib.core.hashing import digest
from lib.core.paths import ROOT
from lib.core.profile import stage

DEFAULT = ROOT / "data" / "cache" / "memo"
FORMAT = 1  # bump when what an entry holds changes meaning


def cache_dir() -> Path | None:
    """The cache folder, or None when LIB_CACHE turns the cache off."""
    v = os.environ.get("LIB_CACHE", "").strip()
    if v.lower() in ("off", "0", "false", "no"):
        return None
    return Path(v) if v else DEFAULT


def _paths(kind: str, key: dict, suffix: str):
    d = cache_dir()
    if d is None:
        return None, None
    k = digest({"format": FORMAT, "kind": kind, **key})
    folder = d / kind
    return folder / f"{k}{suffix}", folder / f".{k}.lock"


@contextlib.contextmanager
def _locked(lock: Path):
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _refuse(path: Path, why: str) -> None:
    print(f"cache: refused {path} ({why}); computing it again", file=sys.stderr)
    path.unlink(missing_ok=True)


def _plain(v):
    """JSON for numpy scalars and arrays (a readout's np.bool_ or np.float64)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"cannot store a {type(v).__name__} as JSON")


def _key_json(key: dict) -> str:
    return json.dumps(key, sort_keys=True, default=_plain)


def memo_arrays(kind: str, key: dict, compute: Callable[[], dict]) -> dict:
    """``compute()`` (a dict of name -> array) from the cache if there, else computed and stored.

    key: JSON-able values and content digests (see `digest`), no arrays. Returns numpy arrays."""
    path, lock = _paths(kind, key, ".npz")
    if path is None:
        return {k: np.asarray(v) for k, v in compute().items()}
    want = _key_json(key)
    with _locked(lock):
        if path.is_file():
            with stage("cache"):
                try:
                    with np.load(path, allow_pickle=False) as z:
                        got = {k: z[k] for k in z.files}
                except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
                    _refuse(path, f"does not load: {e}")
                else:
                    meta = got.pop("__key__", None)
                    finite = got.pop("__finite__", None)
                    if meta is None or str(meta) != want:
                        _refuse(path, "holds another key")
                    elif finite is not None and any(bool(f) and not np.isfinite(got[k]).all()
                                                    for k, f in zip(sorted(got), finite)):
                        _refuse(path, "non-finite numbers where the computation gave finite ones")
                    else:
                        return got
        out = {k: np.asarray(v) for k, v in compute().items()}
        if "__key__" in out or "__finite__" in out:
            raise ValueError("memo_arrays: __key__ and __finite__ are reserved names")
        finite = np.array([bool(np.isfinite(out[k]).all()) if out[k].dtype.kind in "fc" else False
                           for k in sorted(out)])

        def write(tmp: Path):
            with open(tmp, "wb") as f:
                np.savez(f, __key__=np.array(want), __finite__=finite, **out)
        with stage("cache"):
            _write_atomic(path, write)
        return out


def memo_json(kind: str, key: dict, compute: Callable[[], object]):
    """``compute()`` (a JSON-able value) from the cache if there, else computed and stored.

    The value comes back as JSON reads it (tuples become lists, dict keys strings), on a hit and a miss alike."""
    path, lock = _paths(kind, key, ".json")
    if path is None:
        return json.loads(json.dumps(compute(), default=_plain))
    want = json.loads(_key_json(key))
    with _locked(lock):
        if path.is_file():
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError) as e:
                _refuse(path, f"does not load: {e}")
            else:
                if not isinstance(rec, dict) or rec.get("key") != want or "value" not in rec:
                    _refuse(path, "holds another key or no value")
                else:
                    return rec["value"]
        value = json.loads(json.dumps(compute(), default=_plain))
        _write_atomic(path, lambda tmp: tmp.write_text(json.dumps({"key": want, "value": value}) + "\n"))
        return value
