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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

SPLIT_SEED_OFFSET = {"train": 0, "test": 1_000_003}


@dataclass
class ImageSet:
    images: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    factors: dict[str, np.ndarray] = field(default_factory=dict)
    name: str = ""

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"ImageSet.images: expected uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}")
        n = len(self.images)
        if len(self.labels) != n:
            raise ValueError(f"ImageSet.labels: expected {n} labels, got {len(self.labels)}")
        if n and (np.min(self.labels) < 0 or np.max(self.labels) >= len(self.class_names)):
            raise ValueError(f"ImageSet {self.name}: labels must lie in 0..{len(self.class_names) - 1} "
                             f"({len(self.class_names)} classes), got {np.min(self.labels)}..{np.max(self.labels)}")
        for k, v in self.factors.items():
            if len(v) != n:
                raise ValueError(f"ImageSet.factors[{k!r}]: expected {n} values, got {len(v)}")

    def __len__(self):
        return len(self.images)

    @property
    def size(self) -> int:
        return self.images.shape[-1]

    @property
    def channels(self) -> int:
        return self.images.shape[1]

    def float(self, idx=None) -> torch.Tensor:
        x = self.images if idx is None else self.images[idx]
        return torch.from_numpy(np.ascontiguousarray(x)).float().div_(255.0)

    def subset(self, idx) -> "ImageSet":
        idx = np.asarray(idx)
        return ImageSet(self.images[idx], self.labels[idx], self.class_names,
                        {k: v[idx] for k, v in self.factors.items()}, self.name)


def _parse(spec: str) -> tuple[str, str | None]:
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"dataset: expected a spec like 'tuxphoto' or 'imagenet64:/path', got {spec!r}")
    name, _, path = spec.partition(":")
    return name.lower(), (path or None)


DATASETS = ("tuxphoto", "tuxphoto-object", "shapes", "imagenet64", "cifar10", "folder", "fashion-mnist")


def load_dataset(spec: str, n: int | None = None, size: int = 32, seed: int = 0, split: str = "train") -> ImageSet:
    """Load ``n`` images (all, for file datasets, when None) of ``spec`` at ``size`` x ``size``."""
    name, path = _parse(spec)
    if split not in SPLIT_SEED_OFFSET:
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    if n is not None and int(n) < 0:
        raise ValueError(f"n: expected a count >= 0, got {n!r}")
    if int(size) < 8:
        raise ValueError(f"size: expected >= 8, got {size!r}")
    gseed = int(seed) + SPLIT_SEED_OFFSET[split]
    if name in ("tuxphoto", "tuxphoto-object"):
        from . import tuxphoto
        style = "object" if name == "tuxphoto-object" else "photo"
        d = tuxphoto.generate(2000 if n is None else int(n), size=size, seed=gseed, bank_dir=path, style=style)
        return ImageSet(d["images"], d["labels"], d["class_names"], d["factors"], name)
    if name == "shapes":
        from . import shapes
        d = shapes.generate(2000 if n is None else int(n), size=size, seed=gseed)
        return ImageSet(d["images"], d["labels"], d["class_names"], d["factors"], "shapes")
    if name in ("imagenet64", "cifar10", "folder", "fashion-mnist"):
        from . import filedata
        return filedata.load(name, path, n=n, size=size, seed=int(seed), split=split)
    raise ValueError(f"dataset: unknown dataset {name!r}; expected one of {DATASETS}")


def source_files(spec: str, split: str = "train") -> list[Path]:
    """The files ``spec`` is built from: the batches of ``split`` for imagenet64, every file under the
    directory otherwise (the image bank for tuxphoto; none for shapes). Empty when the directory is missing
    (loading then raises the clear error)."""
    name, path = _parse(spec)
    if name == "shapes":
        return []
    if name in ("tuxphoto", "tuxphoto-object"):
        from .tuxphoto import DEFAULT_BANK_DIR
        root = Path(path) if path else DEFAULT_BANK_DIR
    elif name == "fashion-mnist":
        from .filedata import FASHION_DIR
        root = Path(path or FASHION_DIR)
    else:
        root = Path(path).expanduser() if path else None
    if root is None or not root.is_dir():
        return []
    if name == "imagenet64":
        from .filedata import imagenet_files
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
