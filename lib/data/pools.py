"""A memory-mapped uint8 image pool on disk: the training data of lib.training.trainer, and datasets too big to hold
in RAM (ImageNet 64x64).

    images, labels = open_pool("imagenet64:/data/imagenet64", split="train", size=64)
    images             # np.memmap uint8 (N, 3, size, size), read-only; images[idx] reads only those rows
    labels             # int64 (N,)

The first call converts the source once into ``<cache_dir>/<name>-<size>-<split>-<N>.u8.npy`` (+ ``.labels.npy``
and a ``.json`` stamp holding every setting and a fingerprint of the source files: paths, sizes and mtimes,
``lib.data.datasets.source_fingerprint``, and their content, `content_fingerprint`); later calls only map it, and
a pool whose stamp differs (a file of a ``folder:`` dataset replaced, even keeping its size and modification
time; another seed...) is converted again.
ImageNet 64x64 npz batches are streamed row chunk by row chunk (``lib.data.files``), so the conversion needs
a few MB of RAM, not the 15.7 GB of the 1.28 M training images. Other datasets go through
``lib.data.datasets.load_dataset`` (in RAM) and are saved the same way. Writes go to a temporary name and are
renamed into place, so an interrupted conversion is redone, never half-used; several processes
(torchrun ranks) converting at once each write their own temporary file and the last rename wins
(the contents are identical).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

import numpy as np

from lib.core.checks import load_npy
from lib.core.files import atomic_write_json
from lib.data import files as filedata
from lib.data.datasets import load_dataset, source_files, source_fingerprint
from lib.data.imageset import parse_spec

# content_fingerprint reads every byte of sources up to this size in all, else SAMPLE_BLOCKS blocks per file
ALL_BYTES_UP_TO = 256 << 20
SAMPLE_BLOCKS, BLOCK = 16, 4096


def content_fingerprint(files: list[Path]) -> str:
    """sha256 over the files' names, sizes and bytes: every byte when they hold at most ALL_BYTES_UP_TO in all
    (a folder of images), else each file's first and last block and SAMPLE_BLOCKS - 2 evenly spaced ones (the
    ImageNet batches). Unlike the paths/sizes/mtimes of `source_fingerprint`, it tells apart a file replaced
    with another of the same size whose modification time was kept (a copy with ``cp -p``, a restore, a sync)."""
    sizes = [f.stat().st_size for f in files]
    every = sum(sizes) <= ALL_BYTES_UP_TO
    h = hashlib.sha256()
    for f, n in zip(files, sizes):
        h.update(f"{f.name}\t{n}\n".encode())
        with open(f, "rb") as fh:
            if every or n <= SAMPLE_BLOCKS * BLOCK:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            else:
                for k in range(SAMPLE_BLOCKS):
                    fh.seek((n - BLOCK) * k // (SAMPLE_BLOCKS - 1))
                    h.update(fh.read(BLOCK))
    return f"{'all' if every else 'sampled'}:{h.hexdigest()}"


def _source_stamp(spec: str, split: str, size: int, n: int | None, seed: int) -> dict:
    """Every setting that changes the pool's rows, and the fingerprints (stat and content) of the files it is
    built from."""
    n, seed = _normalize(spec, split, n, seed)
    return {"spec": spec, "split": split, "size": int(size), "n": n, "seed": int(seed), "format": "u8pool/2",
            "source": {**source_fingerprint(spec, split), "content": content_fingerprint(source_files(spec, split))}}


def _normalize(spec: str, split: str, n: int | None, seed: int) -> tuple[int | None, int]:
    """ImageNet: the seed plays no part and n >= the number of images means all of them, so that
    ``n=None`` and ``n=1281167`` (or another seed) share one pool instead of two 15.7 GB copies."""
    name, path = parse_spec(spec)
    if name != "imagenet64" or not path:
        return n, seed
    if n is not None:
        total = sum(filedata.npz_data_header(f)[0][0] for f in filedata.imagenet_files(Path(path), split))
        if int(n) >= total:
            n = None
    return n, 0


def pool_paths(spec: str, split: str = "train", size: int = 64, n: int | None = None, seed: int = 0,
               cache_dir: str | os.PathLike = "data/cache") -> dict[str, Path]:
    """{"images", "labels", "stamp"}: the files of the pool of these settings under ``cache_dir``."""
    n, seed = _normalize(spec, split, n, seed)
    name, path = parse_spec(spec)
    tag = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{name}_{path or ''}").strip("_")
    stem = Path(cache_dir) / f"{tag}-{size}-{split}-{'all' if n is None else int(n)}-{seed}"
    return {"images": stem.with_suffix(".u8.npy"), "labels": stem.with_suffix(".labels.npy"),
            "stamp": stem.with_suffix(".json")}


def _tmp(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def build_pool(spec: str, split: str = "train", size: int = 64, n: int | None = None, seed: int = 0,
               cache_dir: str | os.PathLike = "data/cache", progress: bool = True) -> dict[str, Path]:
    """Convert ``spec`` once into a uint8 .npy pool (memory-mappable); returns its paths."""
    paths = pool_paths(spec, split, size, n, seed, cache_dir)
    stamp = _source_stamp(spec, split, size, n, seed)
    paths["images"].parent.mkdir(parents=True, exist_ok=True)
    name, path = parse_spec(spec)
    t_img, t_lab = _tmp(paths["images"]), _tmp(paths["labels"])
    try:
        if name == "imagenet64":
            labels = _convert_imagenet64(Path(path), split, size, n, t_img, progress)
        else:
            ds = load_dataset(spec, n=n, size=size, seed=seed, split=split)
            with open(t_img, "wb") as f:
                np.save(f, ds.images)
            labels = ds.labels
        with open(t_lab, "wb") as f:
            np.save(f, np.asarray(labels, np.int64))
        for t in (t_img, t_lab):
            with open(t, "rb") as f:
                os.fsync(f.fileno())
        os.replace(t_lab, paths["labels"])
        os.replace(t_img, paths["images"])
    finally:
        for t in (t_img, t_lab):
            if t.exists():
                t.unlink()
    stamp["N"] = int(len(labels))
    atomic_write_json(paths["stamp"], stamp)  # written last: its presence means the pool is complete
    return paths


def _convert_imagenet64(root: Path, split: str, size: int, n: int | None, out: Path, progress: bool) -> np.ndarray:
    filedata._check_size(size, 64, "imagenet64")
    plan, left = [], (1 << 62) if n is None else int(n)
    for f in filedata.imagenet_files(root, split):
        if left == 0:
            break
        shape, _ = filedata.npz_data_header(f)
        plan.append((f, min(shape[0], left)))
        left -= plan[-1][1]
    total = sum(k for _, k in plan)
    images = np.lib.format.open_memmap(out, mode="w+", dtype=np.uint8, shape=(total, 3, size, size))
    labels = np.empty(total, np.int64)
    from tqdm.auto import tqdm
    bar = tqdm(total=total, desc=f"convert imagenet64 {split} -> {out.parent}", unit="img", disable=not progress)
    at = 0
    for f, k in plan:
        with np.load(f, allow_pickle=False) as z:
            lab = np.asarray(z["labels"]).reshape(-1)
        if len(lab) < k or lab[:k].min(initial=1) < 1 or lab[:k].max(initial=1) > 1000:
            raise ValueError(f"imagenet64: {f}: expected {k} labels in 1..1000")
        labels[at:at + k] = lab[:k].astype(np.int64) - 1
        for rows in filedata._npz_data_chunks(f, k):
            images[at:at + len(rows)] = filedata._planar_to_images(rows, 64, size, f"imagenet64: {f}")
            at += len(rows)
            bar.update(len(rows))
    bar.close()
    images.flush()
    del images
    return labels


def pool_ready(spec: str, split: str = "train", size: int = 64, n: int | None = None, seed: int = 0,
               cache_dir: str | os.PathLike = "data/cache") -> bool:
    """Whether the pool of these settings exists and its stamp matches the source as it is now."""
    paths = pool_paths(spec, split, size, n, seed, cache_dir)
    if not all(p.is_file() for p in paths.values()):
        return False
    try:
        old = json.loads(paths["stamp"].read_text())
    except (OSError, json.JSONDecodeError):
        return False
    old.pop("N", None)
    return old == json.loads(json.dumps(_source_stamp(spec, split, size, n, seed)))


def open_pool(spec: str, split: str = "train", size: int = 64, n: int | None = None, seed: int = 0,
              cache_dir: str | os.PathLike = "data/cache", build: bool = True, progress: bool = True,
              wait_s: float = 0.0) -> tuple[np.memmap, np.ndarray]:
    """Map the pool read-only (converting it first when absent or stale and ``build``).

    wait_s > 0: instead of building, wait up to that long for another process (rank 0) to build it."""
    if not pool_ready(spec, split, size, n, seed, cache_dir):
        if wait_s > 0:
            t0 = time.time()
            while not pool_ready(spec, split, size, n, seed, cache_dir):
                if time.time() - t0 > wait_s:
                    raise TimeoutError(f"open_pool: {spec} {split} not built in {cache_dir} after {wait_s:.0f} s")
                time.sleep(1.0)
        elif build:
            build_pool(spec, split, size, n, seed, cache_dir, progress)
        else:
            raise FileNotFoundError(f"open_pool: no up-to-date pool for {spec} {split} in {cache_dir}")
    paths = pool_paths(spec, split, size, n, seed, cache_dir)
    images = load_npy(paths["images"], mmap_mode="r")
    labels = load_npy(paths["labels"])
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"open_pool: {paths['images']}: expected uint8 (N, C, H, W) with N labels, "
                         f"got {images.dtype} {images.shape} and {len(labels)} labels")
    return images, labels
