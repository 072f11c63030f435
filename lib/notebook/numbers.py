"""Each notebook's key numbers as JSON next to its figures, so that no result is ever typed by hand.

    write_numbers(ctx, {"mid_pr_median_in": 0.24, "claim_mid_sparsifies": False, ...})
    # -> figures/<notebook>/numbers.json: {"numbers": {...}, "run": {checkpoint, dataset, N, seed, ...}}

The file is stable: sorted keys, floats rounded to `SIGNIFICANT` significant digits, numpy scalars and
arrays converted, NaN and infinities written as null, no timestamps, no absolute paths, and never wall
times (pass only what the same run reproduces). `lib.publish.readme` builds the README's generated blocks and the
paper-vs-ours scorecard from these files; `lib.publish.site` shows them on the results site.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from lib.core.checks import read_json
from lib.core.hashing import file_sha256
from lib.core.paths import FIGURES, ROOT

SIGNIFICANT = 4
FILENAME = "numbers.json"


def clean(value, significant: int = SIGNIFICANT):
    """``value`` as plain JSON types: floats rounded to ``significant`` digits (non-finite -> None),
    numpy scalars/arrays and tuples to Python numbers/lists, dict keys to strings."""
    try:
        if isinstance(value, np.generic):
            value = value.item()
        elif isinstance(value, np.ndarray):
            value = value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if hasattr(value, "tolist") and not isinstance(value, (list, tuple, dict, str)):  # torch tensors
        value = value.tolist()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value == 0:
            return 0.0
        r = round(value, significant - 1 - int(math.floor(math.log10(abs(value)))))
        return float(r)
    if isinstance(value, dict):
        return {str(k): clean(v, significant) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v, significant) for v in value]
    raise TypeError(f"write_numbers: cannot store {type(value).__name__} {value!r} as a number")


def _short_path(p) -> str:
    p = Path(p)
    try:
        return p.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return p.name


def checkpoint_sha256(checkpoint) -> str | None:
    """First 12 hex digits of the SHA-256 of <checkpoint>.safetensors (None if it is not there)."""
    w = Path(checkpoint).with_suffix(".safetensors")
    if not w.is_file():
        return None
    return file_sha256(w, 12)


def run_info(ctx) -> dict:
    """What the numbers came from: checkpoint (name, path in the repository, weights hash, images seen),
    dataset, number of held-out images, seed, SMOKE."""
    meta = getattr(ctx, "meta", {}) or {}
    return {"notebook": ctx.name, "checkpoint": Path(ctx.checkpoint).name,
            "checkpoint_path": _short_path(ctx.checkpoint), "checkpoint_sha256": checkpoint_sha256(ctx.checkpoint),
            "images_seen": meta.get("images_seen"), "dataset": ctx.dataset, "n_images": len(ctx.images),
            "image_size": ctx.size, "seed": ctx.seed, "smoke": bool(ctx.smoke)}


def dumps(obj) -> str:
    """``obj`` as the stable JSON of numbers.json: cleaned, sorted keys, one-space indent, no NaN, a final newline."""
    return json.dumps(clean(obj), indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def write_numbers(ctx, numbers: dict, path=None) -> Path:
    """Write ``numbers`` (flat {key: value}; keys snake_case; booleans for claims) with the run's
    provenance to <ctx.fig_dir>/numbers.json (or ``path``); returns the path. Prints the file's content
    so that the executed notebook shows what was written."""
    if not isinstance(numbers, dict) or not numbers:
        raise ValueError("write_numbers: expected a non-empty dict of key numbers")
    bad = [k for k in numbers if not isinstance(k, str) or not k or k != k.strip()]
    if bad:
        raise ValueError(f"write_numbers: keys must be non-empty strings, got {bad}")
    path = Path(path) if path else Path(ctx.fig_dir) / FILENAME
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dumps({"numbers": numbers, "run": run_info(ctx)})
    path.write_text(text)
    print(f"key numbers -> {_short_path(path)}")
    return path


def read_numbers(path) -> dict:
    """A numbers.json; a torn or corrupt file is a ValueError naming it and the line."""
    return read_json(path, "key numbers (numbers.json)")


def run_of(rel) -> str | None:
    """The run id of a numbers.json given by its path relative to a figures folder ("02_x/numbers.json" ->
    "02_x", "cifar10/06_y/numbers.json" -> "cifar10/06_y"); None when it is not a notebook run's (deeper, another
    file name, or under rendered/ or site/)."""
    parts = Path(rel).as_posix().split("/")
    if parts[-1] != FILENAME or len(parts) not in (2, 3):
        return None
    run = "/".join(parts[:-1])
    return None if run.startswith(("rendered", "site")) else run


def numbers_files(root=FIGURES) -> dict:
    """{run id: path} of every figures/<notebook>/numbers.json and figures/<variant>/<notebook>/numbers.json,
    without reading them (`run_of` says which paths count)."""
    root = Path(root)
    out = {}
    for p in sorted(root.glob(f"*/{FILENAME}")) + sorted(root.glob(f"*/*/{FILENAME}")):
        run = run_of(p.relative_to(root))
        if run is not None:
            out[run] = p
    return dict(sorted(out.items()))


def find_numbers(root=FIGURES) -> dict:
    """{run id: numbers.json content} for every figures/<notebook>/numbers.json and
    figures/<variant>/<notebook>/numbers.json; the run id is the folder path relative to ``root``
    ("01_denoising_sparsity", "tuxobj32/01_denoising_sparsity")."""
    return {run: read_numbers(p) for run, p in numbers_files(root).items()}
