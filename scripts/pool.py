"""Convert a dataset once into a memory-mapped uint8 pool (before a multi-node run).

A thin command over `lib.data.pools`; its docstring says what the command computes and writes.
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
