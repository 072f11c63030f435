"""Content hashes, one function per kind of content. Every hash in the repository comes from here.

    digest(x, labels, {"sigma": 0.2})       -> 64 hex  arrays, tensors, numbers, strings, lists, dicts (cache keys)
    file_sha256("a.safetensors", digits=12)  -> 12 hex  a file's bytes (numbers.json's checkpoint_sha256, caches)
    weights_sha256(model, digits=16)         -> 16 hex  a network's tensors (curve records, lineage, reliance, cache)

The lengths are those of the records that hold them: the committed ``numbers.json`` files name a checkpoint by the
first 12 hex digits of its file, training records and lineages name weights by the first 16 of `weights_sha256`,
and the content-keyed cache uses the full 64.
"""
from __future__ import annotations

import hashlib

import numpy as np


def _update(h, value) -> None:
    """Feed ``value`` to the hash ``h``: arrays and tensors by dtype, shape and bytes; containers recursively."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        t = value.detach().cpu().contiguous()
        if str(t.dtype) == "torch.bfloat16":
            t = t.float()
        value = t.numpy()
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h.update(f"nd{a.dtype.str}{a.shape}".encode())
        h.update(a.view(np.uint8).reshape(-1).data if a.size else b"")
    elif isinstance(value, dict):
        h.update(b"{")
        for k in sorted(value, key=str):
            h.update(repr(str(k)).encode())
            _update(h, value[k])
        h.update(b"}")
    elif isinstance(value, (list, tuple)):
        h.update(b"[")
        for v in value:
            _update(h, v)
        h.update(b"]")
    elif isinstance(value, (np.generic,)):
        _update(h, value.item())
    elif value is None or isinstance(value, (bool, int, float, str)):
        h.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        raise TypeError(f"digest: cannot key a {type(value).__name__}")


def digest(*values) -> str:
    """sha256 (hex) of the content of ``values`` (arrays, tensors, numbers, strings, lists, dicts)."""
    h = hashlib.sha256()
    for v in values:
        _update(h, v)
    return h.hexdigest()


def file_sha256(path, digits: int | None = None, block: int = 1 << 22) -> str:
    """sha256 (hex, its first ``digits`` when given) of a file's bytes, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(block):
            h.update(b)
    return h.hexdigest()[:digits]


def weights_sha256(model, digits: int | None = None) -> str:
    """sha256 (hex, its first ``digits`` when given) of a network's tensors in state-dict order: each name, then
    the values as float32 bytes (a tensor stored in another dtype also adds its dtype). BatchNorm's step counters
    are skipped: they are not weights."""
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        h.update(k.encode())
        if str(v.dtype) != "torch.float32":
            h.update(str(v.dtype).encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:digits]
