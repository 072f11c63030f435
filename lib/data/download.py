"""A user's own copy of CIFAR-10 in one call: the official python archive, verified, unpacked whole or not at all.

    fetch_cifar10(dest="data") -> Fetched(path=data/cifar-10-batches-py, spec="cifar10:data/...", status=...)
    fetch_cifar10(dest, archive="~/Downloads/cifar-10-python.tar.gz")    (no network: a copy fetched by hand)

``python -m scripts.data cifar10`` (``make data-cifar10``) is the command. The steps, and why:
1. an already complete ``DEST/cifar-10-batches-py`` (every batch file present and non-empty) is kept as it
   is: status "present", nothing is read from the network;
2. the archive is downloaded into a temporary file inside DEST (same file system, so that nothing is copied
   twice and the last step is a rename), its MD5 computed while it streams; a short read (fewer bytes than
   the server announced) or a wrong MD5 is an error. ``archive=PATH`` skips the download and checks PATH's MD5;
3. every tar member is checked before anything is written: only regular files and folders under
   ``cifar-10-batches-py/``; absolute names, ``..``, links and devices are refused (and tarfile's ``data``
   filter is applied on top, where this Python has it);
4. the members are unpacked into a temporary folder inside DEST, fsynced, read back once through the
   ``cifar10:`` loader (one image of each split), and the folder renamed into place.
A failure at any step removes the temporaries (a downloaded archive too; a user's ``archive=`` never) and
leaves DEST as it was. A network failure is a ``DownloadError`` naming the URL and the manual alternative.
"""
from __future__ import annotations

import dataclasses
import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

from lib.data.files import load as load_files

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_DIR = "cifar-10-batches-py"
CIFAR10_FILES = ("batches.meta", *(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
CHUNK = 1 << 20
TIMEOUT_S = 60.0
SPACE_FACTOR = 2.2  # the archive and its unpacked copy side by side (163 MB -> 178 MB for the real one)


class DownloadError(FileNotFoundError):
    """The archive could not be fetched (no network, refused, HTTP error, timeout): a FileNotFoundError, so
    that commands report it as one line."""


@dataclasses.dataclass(frozen=True)
class Fetched:
    """What `fetch_cifar10` did: where the batches are, the spec to use, how they got there and the MD5 checked."""
    path: Path    # DEST/cifar-10-batches-py
    spec: str     # the dataset spec to use: "cifar10:" + path
    status: str   # "present" (kept as it was), "downloaded" (from url) or "unpacked" (from archive=)
    md5: str | None  # the archive's verified MD5 (None when present)


def missing_files(folder) -> list[str]:
    """The CIFAR-10 batch files that ``folder`` lacks (or holds empty); [] for a complete copy."""
    folder = Path(folder)
    return [f for f in CIFAR10_FILES if not ((folder / f).is_file() and (folder / f).stat().st_size > 0)]


def fetch_cifar10(dest="data", url: str = CIFAR10_URL, md5: str = CIFAR10_MD5, archive=None,
                  timeout: float = TIMEOUT_S, progress: bool | None = None) -> Fetched:
    """Make ``DEST/cifar-10-batches-py`` a complete, verified copy of the CIFAR-10 python batches (module
    docstring). ``archive``: a local copy of the archive instead of ``url``. ``progress``: a download bar
    (None: only on a terminal)."""
    dest = Path(dest).expanduser()
    target = dest / CIFAR10_DIR
    md5 = check_md5(md5)
    url = check_url(url)
    found = _complete(target)
    if found is not None:
        return found
    if archive is not None:
        archive = Path(archive).expanduser()
        if not archive.is_file():
            raise FileNotFoundError(f"cifar10: archive {str(archive)!r} not found")
    made = [p for p in (dest, *dest.parents) if not p.exists()]  # folders to remove again on a failure
    dest.mkdir(parents=True, exist_ok=True)
    download = tmpdir = None
    done = False
    try:
        if archive is None:
            fd, download = tempfile.mkstemp(dir=dest, prefix=".cifar-10-python.", suffix=".part")
            os.close(fd)
            got = _download(url, Path(download), dest, timeout, progress)
            source = Path(download)
        else:
            source, got = archive, _md5_of(archive)
        if got != md5:
            where = f"the download from {url}" if archive is None else str(source)
            raise ValueError(f"cifar10: MD5 of {where} is {got}, expected {md5} (truncated or corrupt archive); "
                             f"{'removed it' if archive is None else 'nothing was unpacked'}")
        tmpdir = Path(tempfile.mkdtemp(dir=dest, prefix=f".{CIFAR10_DIR}.", suffix=".tmp"))
        _unpack(source, tmpdir)
        unpacked = tmpdir / CIFAR10_DIR
        if missing_files(unpacked):
            raise ValueError(f"cifar10: {source}: the archive lacks {CIFAR10_DIR}/{', '.join(missing_files(unpacked))}")
        for split in ("train", "test"):  # the loader reads what we unpacked, before it is put in place
            try:
                load_files("cifar10", str(unpacked), n=1, split=split)
            except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise ValueError(f"cifar10: {source}: the unpacked batches do not read as CIFAR-10 ({e}); "
                                 f"nothing was put in place") from None
        _fsync_tree(unpacked)
        try:
            os.rename(unpacked, target)
        except OSError:
            found = _complete(target)  # another process put a complete copy there meanwhile: keep it
            if found is None:
                raise FileExistsError(f"cifar10: {target} appeared while unpacking and is incomplete; "
                                      f"move it away and run again") from None
            done = True
            return found
        _fsync_dir(dest)
        done = True
        return Fetched(target, f"cifar10:{target}", "downloaded" if archive is None else "unpacked", got)
    finally:
        if download is not None and os.path.exists(download):
            os.unlink(download)
        if tmpdir is not None and tmpdir.exists():
            shutil.rmtree(tmpdir, ignore_errors=True)
        for folder in [] if done else made:  # deepest first; only if still empty
            try:
                folder.rmdir()
            except OSError:
                break


# ---------------------------------------------------------------------------------------------- helpers
def check_md5(md5: str) -> str:
    """An MD5 digest as 32 lower-case hexadecimal digits; anything else is a ValueError."""
    m = str(md5).strip().lower()
    if len(m) != 32 or any(c not in "0123456789abcdef" for c in m):
        raise ValueError(f"md5 must be 32 hexadecimal digits, got {md5!r}")
    return m


def check_url(url: str) -> str:
    """A URL urllib can fetch from: http(s)://host/... or file:///path; anything else is a ValueError."""
    parts = urllib.parse.urlsplit(str(url).strip())
    if parts.scheme not in ("http", "https", "file") or (parts.scheme != "file" and not parts.netloc):
        raise ValueError(f"expected an http://, https:// or file:// URL, got {url!r}")
    return str(url).strip()


def _complete(target: Path) -> Fetched | None:
    """A Fetched for a complete copy at ``target``, None when there is none; an incomplete one is an error
    (it is not ours to overwrite: this module never leaves one behind)."""
    if not target.exists():
        return None
    if not target.is_dir():
        raise FileExistsError(f"cifar10: {target} exists and is not a folder; move it away and run again")
    missing = missing_files(target)
    if missing:
        raise FileExistsError(f"cifar10: {target} exists but is incomplete (missing or empty: {', '.join(missing)}); "
                              f"move it away and run again")
    return Fetched(target, f"cifar10:{target}", "present", None)


def _md5_of(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def _manual_hint(url: str) -> str:
    md5 = f" (MD5 {CIFAR10_MD5})" if url == CIFAR10_URL else ""
    return (f"download {url} by hand{md5} and pass it with --archive PATH (python -m scripts.data cifar10 "
            f"--archive PATH, or make data-cifar10 ARCHIVE=PATH)")


def _download(url: str, out: Path, dest: Path, timeout: float, progress) -> str:
    """Stream ``url`` into ``out``; the MD5 of what was received. Network failures raise DownloadError, a
    short read ValueError."""
    h, done = hashlib.md5(), 0
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r, open(out, "wb") as f:
            size = r.headers.get("Content-Length")
            size = int(size) if size and size.isdigit() else None
            if size is not None:
                free = shutil.disk_usage(dest).free
                if free < SPACE_FACTOR * size:
                    raise ValueError(f"cifar10: {dest} has {free / 1e6:.0f} MB free; the archive and its "
                                     f"unpacked copy need about {SPACE_FACTOR * size / 1e6:.0f} MB")
            from tqdm.auto import tqdm
            with tqdm(total=size, unit="B", unit_scale=True, desc="cifar-10-python.tar.gz",
                      disable=(None if progress is None else not progress)) as bar:
                while block := r.read(CHUNK):
                    _write(f, block, out)
                    h.update(block)
                    done += len(block)
                    bar.update(len(block))
            f.flush()
            os.fsync(f.fileno())
    except http.client.IncompleteRead as e:
        raise ValueError(f"cifar10: the download from {url} stopped early ({e!r}); run again, or "
                         f"{_manual_hint(url)}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:  # refused, reset, timeout, HTTP 4xx/5xx
        reason = (f"HTTP {e.code} {e.reason}" if isinstance(e, urllib.error.HTTPError) else
                  getattr(e, "reason", None) or str(e) or type(e).__name__)
        raise DownloadError(f"cifar10: could not download {url} ({reason}); without network, "
                            f"{_manual_hint(url)}") from None
    if size is not None and done != size:
        raise ValueError(f"cifar10: the download from {url} stopped after {done} of {size} bytes; run again, or "
                         f"{_manual_hint(url)}")
    return h.hexdigest()


def _write(f, block: bytes, out: Path) -> None:
    """f.write, with a full disk or a refused write reported as the local error it is (not a network one)."""
    try:
        f.write(block)
    except OSError as e:
        raise ValueError(f"cifar10: cannot write {out}: {e}") from None


def _safe_members(tar: tarfile.TarFile, source: Path) -> list[tarfile.TarInfo]:
    """Every member, each checked: a regular file or folder named inside cifar-10-batches-py/."""
    members = tar.getmembers()
    for m in members:
        p = PurePosixPath(m.name)
        bad = ("an absolute name" if p.is_absolute() or m.name.startswith(("/", "\\")) else
               "'..' in its name" if ".." in p.parts else
               "a link" if m.issym() or m.islnk() else
               "not a regular file or folder" if not (m.isfile() or m.isdir()) else
               f"outside {CIFAR10_DIR}/" if p.parts[:1] != (CIFAR10_DIR,) else None)
        if bad:
            raise ValueError(f"cifar10: {source}: refused tar member {m.name!r} ({bad}); nothing was unpacked")
    return members


def _unpack(source: Path, into: Path) -> None:
    """Unpack the checked members of the gzip tar ``source`` into the folder ``into``."""
    try:
        with tarfile.open(source, "r:gz") as tar:
            members = _safe_members(tar, source)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.12
                tar.extractall(into, members=members, filter="data")
            else:
                tar.extractall(into, members=members)
    except (tarfile.TarError, EOFError, zlib.error) as e:
        raise ValueError(f"cifar10: {source}: not a complete gzip tar archive ({e})") from None


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

