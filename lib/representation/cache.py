"""phi for the notebooks: read from a lib.representation.extract cache when one is given and matches, else compute.

    f = trained_phi(ctx, sigma, n_noise, blocks, cache="phi_cache/")   # same return as representation.phi

A cache matches the notebook's held-out set when it was extracted from the same checkpoint file (sha256),
the same dataset spec, split ("test"), image size and seed, holds the sigma and blocks asked for, at least
as many noise draws, and at least as many rows (the notebook's n images are the cache's first n: a
generated dataset's image i depends only on (seed, i); file datasets are read in file order); its labels,
when stored, must equal the held-out labels. A cache folder that does not exist is ignored (phi is
computed, as without a cache); one that exists but has no manifest, does not match, or holds NaN rows
raises an error naming the field or file. The line printed when phi comes from a cache says whether it
was extracted with bf16 autocast (the manifest's ``amp``; phi then differs from fp32 by about 1%).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lib.core.hashing import file_sha256
from lib.model.checkpoint import checkpoint_file
from lib.model.hooks import resolve_blocks
from lib.representation.extract import (
    MANIFEST,
    find_block,
    find_sigma,
    finite_rows,
    load_cache,
    load_labels,
    load_manifest,
)
from lib.representation.phi import phi


def check_cache(cache, checkpoint, dataset: str, split: str, size: int, seed: int, n: int, sigma: float,
                n_noise: int, blocks) -> dict:
    """The cache's manifest if it can serve these rows; else ValueError naming what differs."""
    m = load_manifest(cache)
    want = {"dataset": dataset, "split": split, "size": int(size), "seed": int(seed)}
    bad = {k: (m.get(k), v) for k, v in want.items() if m.get(k) != v}
    if bad:
        raise ValueError(f"phi cache {str(cache)!r} was extracted for other images: "
                         + ", ".join(f"{k} {a!r} in the cache, {b!r} here" for k, (a, b) in bad.items()))
    wpath = checkpoint_file(checkpoint, ".safetensors")
    if m.get("checkpoint_sha256") != file_sha256(wpath):
        raise ValueError(f"phi cache {str(cache)!r} was extracted from another checkpoint than {wpath} "
                         f"(sha256 differs; the cache names {m.get('checkpoint')!r})")
    if m["N"] < n:
        raise ValueError(f"phi cache {str(cache)!r} holds {m['N']} images; the notebook asks for {n}")
    find_sigma(m, sigma)
    for b in blocks:
        find_block(m, b)
    if sigma > 0 and m["n_noise"] < n_noise:
        raise ValueError(f"phi cache {str(cache)!r}: {m['n_noise']} noise draws, the notebook asks for {n_noise}")
    return m


def trained_phi(ctx, sigma: float, n_noise: int, blocks="mid", cache=None, seed: int | None = None):
    """phi of ``ctx.model`` on ``ctx.images`` (as lib.representation.phi.phi returns it), from ``cache`` if given."""
    seed = ctx.seed if seed is None else seed
    if cache and Path(cache).exists() and not Path(cache, MANIFEST).is_file():
        raise FileNotFoundError(f"phi cache {str(cache)!r} exists but has no {MANIFEST}: not a "
                                f"lib.representation.extract cache, or its extraction never started; point PHI_CACHE "
                                f"elsewhere or extract into it")
    if cache and Path(cache, MANIFEST).is_file():
        single = isinstance(blocks, str)
        names = resolve_blocks(ctx.model, blocks)
        n = len(ctx.images)
        m = check_cache(cache, ctx.checkpoint, ctx.dataset, "test", ctx.size, seed, n, sigma, n_noise, names)
        if (Path(cache) / "labels.npy").is_file():
            lab = load_labels(cache)[:n]
            if not np.array_equal(lab, np.asarray(ctx.data.labels)):
                raise ValueError(f"phi cache {str(cache)!r}: its labels differ from the held-out set's (other images?)")
        out = {b: torch.from_numpy(finite_rows(np.array(load_cache(cache, b, sigma)[:n]),
                                               f"phi cache {cache}: block {b} at sigma {sigma:g}")) for b in names}
        print(f"phi at sigma={sigma:g} for {names} read from the cache {cache} ({m['n_noise']} noise draws"
              + (", bf16 autocast" if m["amp"] else ", fp32") + ")")
        return out[names[0]] if single else out
    if cache:
        print(f"phi cache {cache} not found: computing phi")
    return phi(ctx.model, ctx.images, sigma, n_noise, blocks, seed=seed)
