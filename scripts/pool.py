"""Convert a dataset once into a memory-mapped uint8 pool (before a multi-node run).

A thin command over `lib.data.pools`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import json

import numpy as np

from lib.core.checks import run_cli
from lib.data.pools import open_pool, pool_paths
from scripts import Parser, arg_type, dataset_arg, nonneg_int, out_dir, positive_int


def parser() -> Parser:
    """The arguments: the dataset spec, split, image size, image count, seed and cache folder."""
    p = Parser(description="Convert a dataset once into a memory-mappable uint8 pool "
                           "(e.g. before a multi-node run without a shared data_cache).")
    p.add_argument("dataset", type=dataset_arg, help="e.g. imagenet64:/data/imagenet64")
    p.add_argument("--split", default="train", choices=["train", "test"])
    p.add_argument("--size", type=arg_type(lambda s: _size(s)), default=64)
    p.add_argument("--n", type=positive_int, default=None, help="first n images (default: all)")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--cache-dir", type=out_dir, default="data/cache")
    return p


def _size(text) -> int:
    v = positive_int(text)
    if v < 8:
        raise ValueError(f"expected an image size >= 8, got {v}")
    return v


def main(argv=None):
    """Convert the dataset into its pool (or find it there already) and print its path, shape and class count."""
    a = parser().parse_args(argv)
    images, labels = open_pool(a.dataset, a.split, a.size, a.n, a.seed, a.cache_dir)
    print(json.dumps({"images": str(pool_paths(a.dataset, a.split, a.size, a.n, a.seed, a.cache_dir)["images"]),
                      "shape": list(images.shape), "classes": int(len(np.unique(labels)))}))


if __name__ == "__main__":
    run_cli(main)
