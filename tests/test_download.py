"""lib.data.download and ``python -m scripts.data cifar10``, offline: a small fake archive with the official
layout, served as a file:// URL or by a local http.server on 127.0.0.1, its MD5 passed with --md5."""
import functools
import hashlib
import http.server
import io
import pickle
import re
import tarfile
import threading
from pathlib import Path

import pytest

from lib.core.checks import run_cli
from lib.data.datasets import load_dataset
from lib.data.download import CIFAR10_DIR, CIFAR10_FILES, DownloadError, fetch_cifar10
from scripts import data as data_cli
from test_filedata import planar

UNREACHABLE = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # the discard port: nothing listens, refused at once


def _pickle(obj) -> bytes:
    return pickle.dumps(obj)


def fake_members() -> dict[str, bytes]:
    """The official archive's files (in small): 5 train batches of 2 images, a test batch of 3, the meta."""
    files = {}
    for i in range(1, 6):
        files[f"data_batch_{i}"] = _pickle({b"batch_label": b"x", b"data": planar(2, 32, 10 * i),
                                            b"labels": [(i + k) % 10 for k in range(2)]})
    files["test_batch"] = _pickle({b"batch_label": b"t", b"data": planar(3, 32, 100), b"labels": [0, 1, 2]})
    names = [s.encode() for s in "airplane automobile bird cat deer dog frog horse ship truck".split()]
    files["batches.meta"] = _pickle({b"label_names": names, b"num_vis": 3072})
    files["readme.html"] = b"<html></html>"
    return files


def make_archive(path: Path, files: dict[str, bytes] | None = None, extra=()) -> str:
    """A gzip tar at ``path`` holding cifar-10-batches-py/<files>, then the TarInfos of ``extra``; its MD5."""
    with tarfile.open(path, "w:gz") as tar:
        d = tarfile.TarInfo(CIFAR10_DIR)
        d.type, d.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(d)
        for name, blob in (fake_members() if files is None else files).items():
            info = tarfile.TarInfo(f"{CIFAR10_DIR}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
        for info, blob in extra:
            tar.addfile(info, io.BytesIO(blob) if blob is not None else None)
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture
def archive(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    path = src / "cifar-10-python.tar.gz"
    return path, make_archive(path)


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def cli(argv, capsys):
    """Run the command as its __main__ does; (exit code, stdout, stderr)."""
    try:
        run_cli(data_cli.main, argv)
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


# ------------------------------------------------------------------------------------------------ success
def test_download_from_file_url_then_present(tmp_path, archive, capsys):
    path, md5 = archive
    dest = tmp_path / "data"
    code, out, err = cli(["cifar10", "--dest", str(dest), "--url", path.as_uri(), "--md5", md5, "--quiet"], capsys)
    assert code == 0, err
    target = dest / CIFAR10_DIR
    assert out.splitlines()[-1] == f"CIFAR10=cifar10:{target}" and "verified" in out
    assert sorted(p.name for p in dest.iterdir()) == [CIFAR10_DIR]  # no temporaries, no archive left
    assert set(CIFAR10_FILES) <= {p.name for p in target.iterdir()}
    train = load_dataset(f"cifar10:{target}", size=32)
    assert train.images.shape == (10, 3, 32, 32) and train.class_names[0] == "airplane"
    assert len(load_dataset(out.splitlines()[-1].split("=", 1)[1], size=32, split="test")) == 3
    # a second run sees the complete copy and does not touch the network
    before = {p: p.stat().st_mtime_ns for p in target.iterdir()}
    code, out, err = cli(["cifar10", "--dest", str(dest), "--url", UNREACHABLE], capsys)
    assert code == 0, err
    assert "already present" in out and "nothing downloaded" in out
    assert out.splitlines()[-1] == f"CIFAR10=cifar10:{target}"
    assert {p: p.stat().st_mtime_ns for p in target.iterdir()} == before


def test_relative_dest_prints_a_relative_spec(tmp_path, archive, monkeypatch, capsys):
    path, md5 = archive
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["cifar10", "--archive", str(path), "--md5", md5], capsys)
    assert code == 0, err
    assert out.splitlines()[-1] == "CIFAR10=cifar10:data/cifar-10-batches-py"
    assert "unpacked from" in out
    assert path.is_file() and hashlib.md5(path.read_bytes()).hexdigest() == md5  # the user's archive is kept


def test_download_over_local_http(tmp_path, archive):
    path, md5 = archive
    with _serve(functools.partial(_Quiet, directory=str(path.parent))) as port:
        got = fetch_cifar10(tmp_path / "d", url=f"http://127.0.0.1:{port}/{path.name}", md5=md5, progress=False)
        assert got.status == "downloaded" and got.md5 == md5
        assert listing(tmp_path / "d") == [CIFAR10_DIR] + [f"{CIFAR10_DIR}/{n}" for n in sorted(fake_members())]
        with pytest.raises(DownloadError, match=r"could not download .*/missing\.tar\.gz \(HTTP 404 .*--archive PATH"):
            fetch_cifar10(tmp_path / "e", url=f"http://127.0.0.1:{port}/missing.tar.gz", md5=md5, progress=False)
    assert not (tmp_path / "e").exists()


# ------------------------------------------------------------------------------------------------ failures
def test_unreachable_url_is_one_clear_line_and_leaves_nothing(tmp_path, capsys):
    dest = tmp_path / "data"
    dest.mkdir()
    code, out, err = cli(["cifar10", "--dest", str(dest), "--url", UNREACHABLE], capsys)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: cifar10: could not download ") and "Traceback" not in err
    assert UNREACHABLE in err and "--archive PATH" in err and "by hand" in err
    assert listing(dest) == []
    # a dest that did not exist is not left behind either
    code, _, _ = cli(["cifar10", "--dest", str(tmp_path / "new" / "deeper"), "--url", UNREACHABLE], capsys)
    assert code == 1 and not (tmp_path / "new").exists()


def test_default_url_hint_names_the_official_archive(tmp_path, monkeypatch):
    monkeypatch.setattr("urllib.request.urlopen", _refuse)
    with pytest.raises(DownloadError, match=r"https://www\.cs\.toronto\.edu/~kriz/cifar-10-python\.tar\.gz by hand "
                                            r"\(MD5 c58f30108f718f92721af3b95e74349a\)"):
        fetch_cifar10(tmp_path)
    assert listing(tmp_path) == []


def test_wrong_checksum_removes_the_download(tmp_path, archive):
    path, md5 = archive
    with pytest.raises(ValueError, match=rf"MD5 of the download from .* is {md5}, expected 0{{32}}.*removed"):
        fetch_cifar10(tmp_path / "d", url=path.as_uri(), md5="0" * 32, progress=False)
    assert not (tmp_path / "d").exists()
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError,
                       match=r"MD5 of .*cifar-10-python\.tar\.gz is .* expected 0{32}.*nothing was unpacked"):
        fetch_cifar10(tmp_path / "d", archive=path, md5="0" * 32)
    assert listing(tmp_path / "d") == [] and path.is_file()
    with pytest.raises(ValueError, match="md5 must be 32 hexadecimal digits"):
        fetch_cifar10(tmp_path / "d", archive=path, md5="c58f")


def test_truncated_archive(tmp_path, archive):
    path, md5 = archive
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(ValueError, match=rf"expected {md5}"):  # the official MD5 catches it first
        fetch_cifar10(dest, url=cut.as_uri(), md5=md5, progress=False)
    assert listing(dest) == []
    cut_md5 = hashlib.md5(cut.read_bytes()).hexdigest()  # and were it to match: the unpacking refuses it
    with pytest.raises(ValueError, match=r"not a complete gzip tar archive"):
        fetch_cifar10(dest, url=cut.as_uri(), md5=cut_md5, progress=False)
    assert listing(dest) == []


def test_download_cut_short_by_the_server(tmp_path, archive):
    """The server announces more bytes than it sends, then closes: a short read, nothing left."""
    path, md5 = archive
    blob = path.read_bytes()

    class Short(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob) + 1000))
            self.end_headers()
            self.wfile.write(blob)
            self.close_connection = True

        def log_message(self, *a):
            pass

    dest = tmp_path / "d"
    dest.mkdir()
    with _serve(Short) as port:
        with pytest.raises(ValueError, match=rf"stopped (after {len(blob)} of {len(blob) + 1000} bytes|early)"):
            fetch_cifar10(dest, url=f"http://127.0.0.1:{port}/x.tar.gz", md5=md5, progress=False, timeout=10)
    assert listing(dest) == []


@pytest.mark.parametrize("kind", ["absolute", "dotdot", "symlink", "hardlink", "outside", "device"])
def test_unsafe_tar_members_are_refused(tmp_path, kind):
    info = tarfile.TarInfo({"absolute": "/tmp/evil", "dotdot": f"{CIFAR10_DIR}/../../evil",
                            "outside": "evil.txt"}.get(kind, f"{CIFAR10_DIR}/evil"))
    blob = None
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, f"{CIFAR10_DIR}/test_batch"
    elif kind == "device":
        info.type = tarfile.CHRTYPE
    else:
        blob = b"evil"
        info.size = len(blob)
    path = tmp_path / "evil.tar.gz"
    md5 = make_archive(path, extra=[(info, blob)])
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(ValueError, match=r"refused tar member .*nothing was unpacked"):
        fetch_cifar10(dest, archive=path, md5=md5)
    assert listing(dest) == [] and not (tmp_path / "evil").exists()


def test_interrupted_after_unpacking_leaves_nothing(tmp_path, archive, monkeypatch):
    """Ctrl-C (or any failure) between unpacking and the rename: the temporary folder and download go too."""
    path, md5 = archive

    def interrupt(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("lib.data.download.load_files", interrupt)
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(KeyboardInterrupt):
        fetch_cifar10(dest, url=path.as_uri(), md5=md5, progress=False)
    assert listing(dest) == []


def test_archive_without_the_batches(tmp_path):
    files = fake_members()
    del files["test_batch"]
    path = tmp_path / "a.tar.gz"
    md5 = make_archive(path, files)
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(ValueError, match=rf"lacks {CIFAR10_DIR}/test_batch"):
        fetch_cifar10(dest, archive=path, md5=md5)
    assert listing(dest) == []


def test_batches_that_do_not_read_are_not_put_in_place(tmp_path):
    files = fake_members()
    files["data_batch_1"] = b"not a pickle"
    path = tmp_path / "a.tar.gz"
    md5 = make_archive(path, files)
    dest = tmp_path / "d"
    dest.mkdir()
    with pytest.raises(ValueError, match=r"do not read as CIFAR-10 .*nothing was put in place"):
        fetch_cifar10(dest, archive=path, md5=md5)
    assert listing(dest) == []


def test_incomplete_existing_copy_is_not_overwritten(tmp_path, archive, capsys):
    path, md5 = archive
    target = tmp_path / "d" / CIFAR10_DIR
    target.mkdir(parents=True)
    (target / "data_batch_1").write_bytes(b"mine")
    code, _, err = cli(["cifar10", "--dest", str(tmp_path / "d"), "--archive", str(path), "--md5", md5], capsys)
    assert code == 1 and "exists but is incomplete" in err and "test_batch" in err and "move it away" in err
    assert listing(tmp_path / "d") == [CIFAR10_DIR, f"{CIFAR10_DIR}/data_batch_1"]
    assert (target / "data_batch_1").read_bytes() == b"mine"


@pytest.mark.parametrize("args, match", [
    (["--archive", "{tmp}/nope.tar.gz"], r"argument --archive: .*nope\.tar\.gz: no such file"),
    (["--md5", "c58f"], r"argument --md5: md5 must be 32 hexadecimal digits"),
    (["--url", "ftp:/x"], r"argument --url: expected an http://, https:// or file:// URL"),
    (["--timeout", "0"], r"argument --timeout: expected a finite number > 0"),
    (["--dest", "{tmp}/file"], r"argument --dest: .*exists and is not a folder"),
])
def test_bad_arguments_are_one_line_before_any_work(tmp_path, capsys, args, match):
    (tmp_path / "file").write_text("x")
    argv = ["cifar10", "--dest", str(tmp_path / "d"), *[a.format(tmp=tmp_path) for a in args]]
    code, out, err = cli(argv, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1 and re.match(rf"error: {match}", err), err
    assert not (tmp_path / "d").exists()
    with pytest.raises(FileNotFoundError, match=r"archive .*nope\.tar\.gz.* not found"):  # the library says so too
        fetch_cifar10(tmp_path / "d", archive=tmp_path / "nope.tar.gz")


# ------------------------------------------------------------------------------------------------ helpers
class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a):
        pass


def _refuse(*a, **k):
    raise ConnectionRefusedError(111, "Connection refused")


class _serve:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) for the duration of a with block; yields the port."""

    def __init__(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self.server.server_address[1]

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
