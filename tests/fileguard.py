"""Snapshots of files on disk (sha256 per file), to assert that a refused input changed nothing."""
import hashlib
from pathlib import Path


def snapshot(*roots, skip=()) -> dict:
    """{path: sha256} of every file under ``roots`` (files or folders), except under the ``skip`` folders."""
    skip = [Path(s) for s in skip]
    out = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for f in files:
            if not any(s == f or s in f.parents for s in skip):
                out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def run_command(main, argv, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a scripts.* ``main`` run in-process through ``lib.core.checks.run_cli``."""
    from lib.core.checks import run_cli
    capsys.readouterr()
    try:
        run_cli(main, [str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err
