"""Command-line entry points: thin commands over lib (``python -m scripts.NAME --help``).

Every command has the same guard: its ``parser()`` is a `Parser` whose argument types below check each value
when it is parsed (types, ranges, paths, names), checks that need several arguments run before any work, and
``main`` runs under `lib.core.checks.run_cli`: a user error is one line ``error: ...`` naming the argument or
file, with a non-zero exit and no traceback (tests/test_cli_sweep.py tries every argument of every command).
"""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path


class Parser(argparse.ArgumentParser):
    """argparse whose errors are one line, ``error: argument --n: ...``, exit status 2 (no usage block)."""

    def error(self, message):
        """Print ``error: MESSAGE`` on one line (without the argument's name twice) and exit with status 2."""
        head, _, rest = message.partition(": ")
        if head.startswith("argument ") and rest.startswith(tuple(head[9:].split("/")[0] + c for c in " :")):
            message = rest  # the check named the argument already
        print("error: " + " ".join(message.split("\n")), file=sys.stderr)
        sys.exit(2)


def arg_type(check):
    """An argparse type from ``check(text) -> value`` that raises ValueError (argparse names the argument)."""
    def convert(text):
        try:
            return check(text)
        except (ValueError, OSError) as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    convert.__name__ = getattr(check, "__name__", "value")
    return convert


def _int(text, lo: int, what: str) -> int:
    try:
        v = int(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected {what}, got {text!r}") from None
    if v < lo:
        raise ValueError(f"expected {what}, got {v}")
    return v


positive_int = arg_type(lambda s: _int(s, 1, "an integer >= 1"))
nonneg_int = arg_type(lambda s: _int(s, 0, "an integer >= 0"))


def _float(text, lo: float = 0.0, strict: bool = False) -> float:
    try:
        v = float(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v < lo or (strict and v == lo):
        raise ValueError(f"expected a finite number {'>' if strict else '>='} {lo:g}, got {text!r}")
    return v


nonneg_float = arg_type(lambda s: _float(s, 0.0))
positive_float = arg_type(lambda s: _float(s, 0.0, strict=True))


def sigma(text) -> float:
    """A noise level in image units ([0, 1] images): finite, >= 0 and not in 0-255 units."""
    from lib.core import checks
    if hasattr(checks, "check_sigma"):  # its home once lib.representation.phi's check moves into lib.core.checks
        check_sigma = checks.check_sigma
    else:
        from lib.representation.phi import check_sigma
    v = _float(text, 0.0)
    try:
        return check_sigma(v, "sigma")
    except ValueError as e:
        raise ValueError(str(e).removeprefix("sigma: ")) from None


sigma_arg = arg_type(sigma)


def _device(text: str) -> str:
    import torch
    if text == "auto":
        return text
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise ValueError(f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"expected auto, cpu, cuda, cuda:N or mps, got {text!r}")
    return text


device_arg = arg_type(_device)


def _no_dangling(p: Path) -> None:
    if p.is_symlink() and not p.exists():
        raise ValueError(f"{p} is a dangling symbolic link (to {os.readlink(p)})")


def _existing_dir(text: str) -> str:
    p = Path(text).expanduser()
    _no_dangling(p)
    if not p.exists():
        raise FileNotFoundError(f"{text}: no such folder")
    if not p.is_dir():
        raise ValueError(f"{text}: not a folder")
    return text


def _existing_file(text: str) -> str:
    p = Path(text).expanduser()
    _no_dangling(p)
    if not p.exists():
        raise FileNotFoundError(f"{text}: no such file")
    if not p.is_file():
        raise ValueError(f"{text}: not a file")
    return text


def _out_dir(text: str) -> str:
    """A folder to write into: absent (created later) or a folder; never a file or a dangling link, and its
    nearest existing parent must be a folder."""
    if not text or not str(text).strip():
        raise ValueError("expected a folder, got an empty name")
    p = Path(text).expanduser()
    _no_dangling(p)
    if p.exists() and not p.is_dir():
        raise ValueError(f"{text}: exists and is not a folder")
    q = p
    while not q.exists():
        _no_dangling(q)
        q = q.parent
    if not q.is_dir():
        raise ValueError(f"{text}: {q} is not a folder")
    return text


def _checkpoint(text: str) -> str:
    """A checkpoint stem whose .safetensors and .json exist (relative to the repository root as a fallback)."""
    from lib.core.paths import resolve
    from lib.model.checkpoint import checkpoint_file
    p = resolve(text)
    for ext in (".safetensors", ".json"):
        f = checkpoint_file(p, ext)
        _no_dangling(f)
        if not f.is_file():
            raise FileNotFoundError(f"{text}: {f} not found (give a checkpoint stem such as data/checkpoints/tux32)")
    return text


def _dataset(text: str) -> str:
    """A dataset spec with a known name; the folder of a file-backed one must exist."""
    from lib.data.imageset import DATASETS, parse_spec
    name, path = parse_spec(text)
    if name not in DATASETS:
        import difflib
        close = difflib.get_close_matches(name, DATASETS, n=1)
        raise ValueError(f"unknown dataset {name!r}" + (f" (did you mean {close[0]}?)" if close else "")
                         + f"; expected one of {', '.join(DATASETS)}")
    if name in ("imagenet64", "cifar10", "folder") and not path:
        raise ValueError(f"{name} needs a folder: {name}:/path/to/it")
    if path:
        p = Path(path).expanduser()
        _no_dangling(p)
        if not p.is_dir():
            raise FileNotFoundError(f"{text}: folder {path} does not exist")
    return text


existing_dir = arg_type(_existing_dir)
existing_file = arg_type(_existing_file)
out_dir = arg_type(_out_dir)
checkpoint_arg = arg_type(_checkpoint)
dataset_arg = arg_type(_dataset)


def no_duplicates(p: argparse.ArgumentParser, flag: str, values, key=lambda v: v) -> None:
    """p.error naming ``flag`` when two of ``values`` are the same (by ``key``)."""
    seen = {}
    for v in values or ():
        k = key(v)
        if k in seen:
            p.error(f"argument {flag}: {v!r} given twice" + (f" (same as {seen[k]!r})" if seen[k] != v else ""))
        seen[k] = v


def resolved(path) -> str:
    """``path`` absolute, ``~`` expanded and links resolved: the key under which two spellings of a path are equal."""
    return str(Path(path).expanduser().resolve())


def tracked_outputs():
    """The folders and files only the full pipeline may write: figures/, data/checkpoints/, the README."""
    from lib.core.paths import CHECKPOINTS, FIGURES, ROOT
    return FIGURES, CHECKPOINTS, ROOT / "README.md"


def inside(path, folder) -> bool:
    """Whether ``path`` is ``folder`` or lies under it, both resolved."""
    path, folder = Path(path).expanduser().resolve(), Path(folder).expanduser().resolve()
    return path == folder or folder in path.parents


def check(p: argparse.ArgumentParser, flag: str, convert, value):
    """``convert(value)`` (an argument type above) for a value checked after parsing; p.error naming ``flag``."""
    try:
        return convert(value)
    except argparse.ArgumentTypeError as e:
        p.error(f"argument {flag}: {e}")
