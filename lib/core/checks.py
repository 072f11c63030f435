"""Checks of user input, with errors that name the file, field or argument.

    parse_bool("off", "--channels-last")  -> False   (true/false, yes/no, on/off, 1/0; anything else: error)
    parse_amp("auto")                     -> "auto"  ("auto" or a parse_bool value)
    check_field_types(cfg, "configs/x.json")         (dataclass fields against their annotations)
    read_json(path, "phi cache manifest")            (missing, truncated or invalid JSON: error naming path and line)
    read_jsonl(path, "curve records")                (JSON lines; a bad line: error naming path and line number)
    load_npy(path, mmap_mode="r")                    (truncated or foreign .npy: error naming path)
    run_cli(main)                                    (a command's expected errors as one line, no traceback)
    check_sigma(0.1, "sigma0")  -> 0.1                 (finite, >= 0, at most SIGMA_LIMIT: 25 is named a units mistake)
    check_images(x, "target", channels=3, multiple=4)  (a float (N, C, H, W) batch in [0, 1]: error naming "target")
    finite_images(x, "samples") -> float CPU tensor    (an (N, C, H, W) batch without NaN/inf, any range)
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

TRUE = ("true", "yes", "on", "1")
FALSE = ("false", "no", "off", "0")


def parse_bool(value, name: str = "value") -> bool:
    """A strict boolean: True/False, 1/0 or one of the words of TRUE / FALSE (any case)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    s = str(value).strip().lower()
    if s in TRUE:
        return True
    if s in FALSE:
        return False
    raise ValueError(f"{name}: expected one of {'/'.join(TRUE)} or {'/'.join(FALSE)}, got {value!r}")


def parse_amp(value, name: str = "amp"):
    """bf16 autocast setting: "auto" (where the hardware is fast at it), or a strict boolean."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        return parse_bool(value, name)
    except ValueError:
        raise ValueError(f"{name}: expected auto, {'/'.join(TRUE)} or {'/'.join(FALSE)}, got {value!r}") from None


def amp_name(value) -> str:
    """The canonical spelling of an amp setting, as configs record it: "auto", "true" or "false"."""
    v = parse_amp(value)
    return v if v == "auto" else ("true" if v else "false")


def _type_ok(value, annotation: str) -> bool | None:
    """Whether ``value`` fits a simple annotation string; None when the annotation is not checked."""
    scalar = {"int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
              "str": lambda v: isinstance(v, str), "bool": lambda v: isinstance(v, bool),
              "dict": lambda v: isinstance(v, dict)}
    a = annotation.replace(" ", "")
    if a in scalar:
        return scalar[a](value)
    if a.startswith("tuple[") and a.endswith(",...]") and a[6:-5] in scalar:
        return isinstance(value, (list, tuple)) and all(scalar[a[6:-5]](v) for v in value)
    return None


def check_field_types(obj, where: str) -> None:
    """Raise ValueError naming the first field of dataclass ``obj`` whose value does not fit its annotation
    (e.g. a JSON string "32" for an int field), instead of a TypeError deep inside the code."""
    for f in dataclasses.fields(obj):
        t = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
        v = getattr(obj, f.name)
        if _type_ok(v, t) is False:
            raise ValueError(f"{where}: {f.name}: expected {t}, got {type(v).__name__} {v!r}")


def read_json(path, what: str = "JSON file"):
    """Parse a JSON file; missing -> FileNotFoundError, unparsable (e.g. truncated) -> ValueError, both
    naming ``what`` and the path (and the line it failed on)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: {what} is not valid JSON (truncated or corrupt?) at line {e.lineno} column "
                         f"{e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: {what} is not valid JSON (not UTF-8 text: {e.reason})") from None


def read_jsonl(path, what: str = "JSON lines file", skip_torn_last: bool = False) -> list:
    """The records of a JSON-lines file (blank lines skipped); a line that is not JSON -> ValueError naming the
    path and line number. ``skip_torn_last``: drop an unparsable last line without a newline (a writer killed
    mid-line) instead of failing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    try:
        text = path.read_text()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: {what} is not UTF-8 text ({e.reason})") from None
    lines = text.splitlines()
    out = []
    for i, ln in enumerate(lines, 1):
        if not ln.strip():
            continue
        try:
            out.append(json.loads(ln))
        except json.JSONDecodeError as e:
            if skip_torn_last and i == len(lines) and not text.endswith("\n"):
                break
            raise ValueError(f"{path}: {what}: line {i} is not a JSON record (truncated or corrupt?): {e.msg} "
                             f"({ln[:60]!r})") from None
    return out


def load_npy(path, mmap_mode: str | None = None) -> np.ndarray:
    """np.load of a .npy without pickles; a missing, truncated or foreign file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"array file not found: {path}")
    try:
        return np.load(path, mmap_mode=mmap_mode, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy array (truncated or corrupt?): {e}") from None



# Images are in [0, 1] and the networks are trained with sigma up to sigma_max = 1 (the samplers start at
# most at 3, as some of the authors' figures do): a larger sigma is a units mistake (25 in 0-255 units is
# 25/255 = 0.098 here) or garbage, and is refused rather than silently giving meaningless numbers.
SIGMA_LIMIT = 3.0


def check_sigma(sigma, name="sigma") -> float:
    """A noise level as a float: finite, >= 0 and at most SIGMA_LIMIT (a larger one is named as a units mistake)."""
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number >= 0, got {sigma!r}") from None
    if not (s >= 0) or s != s or s == float("inf"):
        raise ValueError(f"{name}: expected a finite number >= 0, got {sigma!r}")
    if s > SIGMA_LIMIT:
        raise ValueError(f"{name}: {sigma!r} is far above the trained range (images are in [0, 1], at most "
                         f"{SIGMA_LIMIT:g}); in 0-255 units divide by 255 (e.g. 25 -> {25 / 255:.3f})")
    return s


def check_images(x, name="images", channels=None, multiple=None, range01=True) -> None:
    """Validate an N x C x H x W float batch; raise ValueError naming ``name`` and what was expected."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor of shape (N, C, H, W), got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected shape (N, C, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name}: expected a float tensor in [0, 1], got dtype {x.dtype}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name}: expected {channels} channels, got {x.shape[1]} (shape {tuple(x.shape)})")
    if multiple is not None and (x.shape[2] % multiple or x.shape[3] % multiple):
        raise ValueError(f"{name}: height and width must be divisible by {multiple} (2^levels of the "
                         f"network), got {x.shape[2]}x{x.shape[3]}")
    if x.numel() and not torch.isfinite(x).all():
        raise ValueError(f"{name}: contains NaN or inf")
    if range01 and x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"{name}: expected values in [0, 1], got [{x.min().item():.3g}, {x.max().item():.3g}]")


def finite_images(x, name) -> torch.Tensor:
    """``x`` as a float CPU tensor after checking that it is an (N, C, H, W) tensor without NaN/inf (any range:
    samples before a clamp, images of another scale)."""
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"{name}: expected an image tensor (N, C, H, W), got {type(x).__name__} "
                         f"{getattr(x, 'shape', '')}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name}: holds NaN/inf values")
    return x.float().cpu()

EXPECTED_ERRORS = (ValueError, FileNotFoundError, FileExistsError, PermissionError, TimeoutError, NotADirectoryError,
                   IsADirectoryError)


def run_cli(main, argv=None) -> None:
    """Call ``main(argv)``; an expected error (bad input, missing or refused file) is printed as one line
    ``error: ...`` and exits 1. LIB_TRACEBACK=1 shows the traceback instead."""
    try:
        main(argv)
    except EXPECTED_ERRORS as e:
        if os.environ.get("LIB_TRACEBACK"):
            raise
        print("error: " + " ".join(str(e).split("\n")), file=sys.stderr)
        sys.exit(1)
