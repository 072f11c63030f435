"""Fetch a dataset the repository does not ship: ``python -m scripts.data cifar10`` (``make data-cifar10``).

Downloads the official CIFAR-10 python archive, checks its MD5, unpacks it under data/ (git-ignored) and prints
the CIFAR10= value for ``make figures``; ``--archive PATH`` unpacks a copy downloaded by hand instead. A copy
already complete is kept. What it checks and why: `lib.data.download`.
"""
from __future__ import annotations

from lib.core.checks import run_cli
from lib.data.download import CIFAR10_MD5, CIFAR10_URL, TIMEOUT_S, check_md5, check_url, fetch_cifar10
from scripts import Parser, arg_type, existing_file, out_dir, positive_float


def parser() -> Parser:
    """The arguments: the dataset, where to unpack it, an archive downloaded by hand, URL, MD5 and timeout."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", choices=["cifar10"],
                   help="cifar10: the python batches (about 163 MB) into DEST/cifar-10-batches-py")
    p.add_argument("--dest", type=out_dir, default="data", help="folder to unpack into (default: data)")
    p.add_argument("--archive", type=existing_file,
                   help="a cifar-10-python.tar.gz downloaded by hand: unpack it, no network")
    p.add_argument("--url", type=arg_type(check_url), default=CIFAR10_URL,
                   help=f"where to download from (default: {CIFAR10_URL})")
    p.add_argument("--md5", type=arg_type(check_md5), default=CIFAR10_MD5,
                   help=f"the archive's expected MD5 (default: {CIFAR10_MD5})")
    p.add_argument("--timeout", type=positive_float, default=TIMEOUT_S,
                   help=f"network timeout in seconds (default {TIMEOUT_S:g})")
    p.add_argument("--quiet", action="store_true", help="no download progress bar")
    return p


def main(argv=None):
    """Fetch or unpack the dataset, say which of the two it did (or that it was already there), then print the
    CIFAR10= value for `make figures`."""
    a = parser().parse_args(argv)
    got = fetch_cifar10(a.dest, url=a.url, md5=a.md5, archive=a.archive, timeout=a.timeout,
                        progress=False if a.quiet else None)
    print({"present": f"{got.path}: already present and complete; nothing downloaded",
           "downloaded": f"{got.path}: downloaded from {a.url}, MD5 {got.md5} verified, unpacked",
           "unpacked": f"{got.path}: unpacked from {a.archive}, MD5 {got.md5} verified"}[got.status])
    print(f"CIFAR10={got.spec}")


if __name__ == "__main__":
    run_cli(main)
