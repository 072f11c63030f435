"""Repository paths, so notebooks work whether the kernel starts in the repo root or in notebooks/."""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "figures"
CHECKPOINTS = ROOT / "data" / "checkpoints"


def resolve(path: str | os.PathLike) -> Path:
    """``path`` as given if it exists (or is absolute), else relative to the repository root."""
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists() or Path(f"{p}.json").exists():
        return p
    return ROOT / p
