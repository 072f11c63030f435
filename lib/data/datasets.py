"""Datasets behind one small interface.

    ds = load_dataset("tuxphoto", n=2000, size=32, seed=0, split="test")
    ds.images      # uint8 (N, C, H, W)
    ds.labels      # int64 (N,)
    ds.class_names # list[str]
    ds.factors     # dict name -> (N,) array (instance, background, pose...; may be empty)
    ds.float()     # float32 torch tensor in [0, 1]

Specs: "tuxphoto" (embedded photo composites), "tuxphoto-object" (the same objects, larger, on soft
low-contrast backgrounds), "shapes" (procedural), "imagenet64:/dir" (downsampled
ImageNet npz batches), "cifar10:/dir" (python batches), "folder:/dir" (class sub-folders),
"fashion-mnist[:/dir]" (Debian's dataset-fashion-mnist, padded to 32x32).
Generated datasets use disjoint seeds for the "train" and "test" splits.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from lib.data import files as filedata
from lib.data import shapes, tuxphoto
from lib.data.files import FASHION_DIR, imagenet_files
from lib.data.imageset import DATASETS, SPLIT_SEED_OFFSET, ImageSet, parse_spec
from lib.data.tuxphoto import DEFAULT_BANK_DIR


def load_dataset(spec: str, n: int | None = None, size: int = 32, seed: int = 0, split: str = "train") -> ImageSet:
    """Load ``n`` images (all, for file datasets, when None) of ``spec`` at ``size`` x ``size``."""
    name, path = parse_spec(spec)
    if split not in SPLIT_SEED_OFFSET:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if n is not None and int(n) < 0:
        raise ValueError(f"n: expected a count >= 0, got {n!r}")
    if int(size) < 8:
        raise ValueError(f"size: expected >= 8, got {size!r}")
    gseed = int(seed) + SPLIT_SEED_OFFSET[split]
    if name in ("tuxphoto", "tuxphoto-object"):
        style = "object" if name == "tuxphoto-object" else "photo"
        d = tuxphoto.generate(2000 if n is None else int(n), size=size, seed=gseed, bank_dir=path, style=style)
        return ImageSet(d["images"], d["labels"], d["class_names"], d["factors"], name)
    if name == "shapes":
        d = shapes.generate(2000 if n is None else int(n), size=size, seed=gseed)
        return ImageSet(d["images"], d["labels"], d["class_names"], d["factors"], "shapes")
    if name in ("imagenet64", "cifar10", "folder", "fashion-mnist"):
        return filedata.load(name, path, n=n, size=size, seed=int(seed), split=split)
    raise ValueError(f"dataset: unknown dataset {name!r}; expected one of {DATASETS}")


def source_files(spec: str, split: str = "train") -> list[Path]:
    """The files ``spec`` is built from: the batches of ``split`` for imagenet64, every file under the
    directory otherwise (the image bank for tuxphoto; none for shapes). Empty when the directory is missing
    (loading then raises the clear error)."""
    name, path = parse_spec(spec)
    if name == "shapes":
        return []
    if name in ("tuxphoto", "tuxphoto-object"):
        root = Path(path) if path else DEFAULT_BANK_DIR
    elif name == "fashion-mnist":
        root = Path(path or FASHION_DIR)
    else:
        root = Path(path).expanduser() if path else None
    if root is None or not root.is_dir():
        return []
    if name == "imagenet64":
        return imagenet_files(root, split)
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))


def source_fingerprint(spec: str, split: str = "train") -> dict:
    """Number of source files and a sha256 over their paths, sizes and mtimes: a cache built from them is
    stale once any file is added, removed, replaced or touched."""
    files = source_files(spec, split)
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return {"files": len(files), "sha256": h.hexdigest()}
