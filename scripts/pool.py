"""Convert a dataset once into a memory-mapped uint8 pool (before a multi-node run).

A memory-mapped uint8 image pool on disk: the training data of lib.training.trainer, and datasets too big to hold
in RAM (ImageNet 64x64).

    images, labels = open_pool("imagenet64:/data/imagenet64", split="train", size=64)
    images             # np.memmap uint8 (N, 3, size, size), read-only; images[idx] reads only those rows
    labels             # int64 (N,)

The first call converts the source once into ``<cache_dir>/<name>-<size>-<split>-<N>.u8.npy`` (+ ``.labels.npy``
and a ``.json`` stamp holding every setting and a fingerprint of the source files: paths, sizes and mtimes,
``lib.data.datasets.source_fingerprint``); later calls only map it, and a pool whose stamp differs (a file of a
``folder:`` dataset replaced, another seed...) is converted again.
ImageNet 64x64 npz batches are streamed row chunk by row chunk (``lib.data.files``), so the conversion needs
a few MB of RAM, not the 15.7 GB of the 1.28 M training images. Other datasets go through
``lib.data.datasets.load_dataset`` (in RAM) and are saved the same way. Writes go to a temporary name and are
renamed into place, so an interrupted conversion is redone, never half-used; several processes
(torchrun ranks) converting at once each write their own temporary file and the last rename wins
(the contents are identical).
"""
from __future__ import annotations

import json

import numpy as np

from lib.data.pools import open_pool, pool_paths


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(description="Convert a dataset once into a memory-mappable uint8 pool "
                                            "(e.g. before a multi-node run without a shared data_cache).")
    p.add_argument("dataset", help="e.g. imagenet64:/data/imagenet64")
    p.add_argument("--split", default="train", choices=["train", "test"])
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--n", type=int, default=None, help="first n images (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cache-dir", default="data/cache")
    a = p.parse_args(argv)
    images, labels = open_pool(a.dataset, a.split, a.size, a.n, a.seed, a.cache_dir)
    print(json.dumps({"images": str(pool_paths(a.dataset, a.split, a.size, a.n, a.seed, a.cache_dir)["images"]),
                      "shape": list(images.shape), "classes": int(len(np.unique(labels)))}))


if __name__ == "__main__":
    main()
