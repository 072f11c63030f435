"""phi for a whole dataset, into memory-mapped arrays on disk, resumable and sharded.

    python -m scripts.extract --checkpoint runs/imagenet64/model --dataset imagenet64:/data/imagenet64 \\
        --split train --sigmas 0 0.1 0.2 --n-noise 20 --blocks mid --out phi_cache/
    torchrun --nproc_per_node=4 -m scripts.extract ...          # the same, sharded over 4 processes/GPUs

    X = load_cache("phi_cache", "mid", 0.1)    # np.memmap float32 (N, C), read-only
    y = load_labels("phi_cache")               # int64 (N,)

Files in --out:
  manifest.json              checkpoint (+ its sha256), dataset, split, size, sigmas, n_noise, seed, blocks,
                             amp (whether bf16 autocast was on: phi then differs from fp32 by ~1%), N,
                             channels, chunk_size, n_chunks, array file names (identical for every rank)
  phi_<block>_s<sigma>.npy   one float32 (N, C) .npy per (block, sigma), written in place through a memmap
  labels.npy                 int64 (N,)
  done/rank<r>-of<W>.npy     bool (n_chunks,): chunks finished by rank r of a W-process launch; the cache's
                             state is the union of all these files ("merged on read")
Images are cut into chunks of ``chunk_size`` rows; rank r of W takes the chunks r, r+W, ... not yet done by
anyone. A chunk is marked done (its rank's file rewritten atomically) only after its rows are flushed to
disk, so a killed run resumes where it stopped, with any number of processes, and no row is written twice.
The rows go through ``lib.representation.phi.noise_averaged``, the loop ``phi`` runs: the noise of image i is
``lib.core.device.per_sample_noise`` seeded by (seed, i) (the same draws at every sigma), so the result does not
depend on chunking, batching or sharding, and equals ``phi(model, all_images, sigma, n_noise, blocks, seed=seed)``.
"""
from __future__ import annotations

import io
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from lib.core.checks import check_sigma, load_npy, read_json
from lib.core.device import amp_enabled
from lib.core.files import atomic_write_bytes, atomic_write_json
from lib.model.hooks import block_channels, resolve_blocks
from lib.model.unet import block_aliases
from lib.representation.phi import noise_averaged

FORMAT = "phi-cache/1"
MANIFEST = "manifest.json"
IGNORED_ON_RESUME = ("checkpoint",)  # a moved checkpoint is the same checkpoint (its sha256 is compared)


def sigma_key(sigma: float) -> str:
    """The text form of a sigma in file names and the manifest (``%g``)."""
    return f"{float(sigma):g}"


def array_name(block: str, sigma: float) -> str:
    """File name of the phi array of ``block`` at ``sigma``."""
    return f"phi_{block}_s{sigma_key(sigma)}.npy"


def rank_world() -> tuple[int, int]:
    """(rank, world size) from the environment torchrun sets; (0, 1) otherwise."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


# ------------------------------------------------------------------------------------------ reading
def load_manifest(out_dir) -> dict:
    """The cache's manifest.json, checked to hold the keys readers need."""
    f = Path(out_dir) / MANIFEST
    if not f.is_file():
        raise FileNotFoundError(f"phi cache: no {MANIFEST} in {str(out_dir)!r} "
                                f"(run `python -m scripts.extract ... --out {out_dir}`)")
    m = read_json(f, "phi cache manifest")
    missing = [k for k in ("N", "n_chunks", "sigmas", "blocks", "arrays", "amp")
               if not isinstance(m, dict) or k not in m]
    if missing:
        raise ValueError(f"{f}: phi cache manifest lacks {missing} (damaged, or written by an older "
                         f"lib.representation.extract: extract again into a new folder)")
    return m


def done_chunks(out_dir, n_chunks: int | None = None) -> np.ndarray:
    """Union of every rank's done file: bool (n_chunks,)."""
    if n_chunks is None:
        n_chunks = load_manifest(out_dir)["n_chunks"]
    done = np.zeros(n_chunks, bool)
    for f in sorted((Path(out_dir) / "done").glob("rank*-of*.npy")):
        d = load_npy(f)
        if d.shape != (n_chunks,):
            raise ValueError(f"phi cache: {f}: expected {n_chunks} chunk flags, got shape {d.shape}")
        done |= d.astype(bool)
    return done


def cache_status(out_dir) -> dict:
    """{N, n_chunks, done, missing (chunk indices), complete} of the cache in ``out_dir``."""
    m = load_manifest(out_dir)
    done = done_chunks(out_dir, m["n_chunks"])
    return {"N": m["N"], "n_chunks": m["n_chunks"], "done": int(done.sum()),
            "missing": np.flatnonzero(~done).tolist(), "complete": bool(done.all())}


def find_sigma(m: dict, sigma) -> str:
    """The manifest's key of ``sigma`` (equal up to rounding); ValueError naming the sigmas extracted."""
    s = check_sigma(sigma)
    for k in m["sigmas"]:
        if abs(float(k) - s) <= 1e-9 * max(1.0, s):
            return sigma_key(k)
    raise ValueError(f"phi cache: sigma {sigma!r} not extracted; available {m['sigmas']}")


def find_block(m: dict, block: str) -> str:
    """The manifest's name of ``block`` (a module name or the paper's alias); ValueError if not extracted."""
    if block in m["blocks"]:
        return block
    alias = block_aliases(m.get("levels", 3)).get(block)
    if alias in m["blocks"]:
        return alias
    raise ValueError(f"phi cache: block {block!r} not extracted; available {m['blocks']}")


def load_cache(out_dir, block: str = "mid", sigma: float = 0.0, allow_partial: bool = False) -> np.memmap:
    """The cached phi of ``block`` at ``sigma``: a read-only float32 (N, C) memmap.

    Raises if some chunks are not done yet (their rows would be zeros) unless ``allow_partial``."""
    m = load_manifest(out_dir)
    b, s = find_block(m, block), find_sigma(m, sigma)
    if not allow_partial:
        st = cache_status(out_dir)
        if not st["complete"]:
            raise ValueError(f"phi cache {str(out_dir)!r}: {st['n_chunks'] - st['done']} of {st['n_chunks']} "
                             f"chunks not extracted yet (rerun the same `python -m scripts.extract` command to finish, "
                             f"or pass allow_partial=True)")
    path = Path(out_dir) / m["arrays"][b][s]
    arr = load_npy(path, mmap_mode="r")
    want = (m["N"], m["channels"][b])
    if arr.shape != want or arr.dtype != np.float32:
        raise ValueError(f"{path}: expected float32 {want} as the manifest says, got {arr.dtype} {arr.shape}")
    return arr


def finite_rows(rows: np.ndarray, where: str) -> np.ndarray:
    """``rows`` if every value is finite, else ValueError naming ``where`` and the first bad row."""
    bad = ~np.isfinite(rows).all(axis=1)
    if bad.any():
        raise ValueError(f"{where}: {int(bad.sum())} rows hold NaN/inf (first: row {int(np.flatnonzero(bad)[0])}); "
                         f"the cache is damaged, extract it again")
    return rows


def load_labels(out_dir) -> np.ndarray:
    """The cached labels, int64 (N,)."""
    return load_npy(Path(out_dir) / "labels.npy")


# ------------------------------------------------------------------------------------------ writing
def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _create_npy(path: Path, shape, dtype=np.float32) -> None:
    """Create a zero-filled .npy exactly once, even with several processes racing (link is exclusive)."""
    if path.exists():
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mm = np.lib.format.open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
    mm.flush()
    del mm
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)


def phi_rows(model, images_u8: np.ndarray, offset: int, sigmas, n_noise: int, blocks, seed: int,
             batch_size: int = 512, amp="auto", pool: ThreadPoolExecutor | None = None,
             noise_parts: int = 1) -> dict:
    """phi of uint8 rows ``images_u8`` whose global indices start at ``offset``.

    Returns {(block, sigma_key): float32 (n, C)}: `lib.representation.phi.noise_averaged` (the loop `phi` runs),
    the noise of every image drawn once and reused at every sigma > 0, the next batch's noise drawn by ``pool``."""
    if pool is None:
        with ThreadPoolExecutor(1) as own:
            return phi_rows(model, images_u8, offset, sigmas, n_noise, blocks, seed, batch_size, amp, own, noise_parts)
    names = resolve_blocks(model, blocks)
    res = noise_averaged(model, images_u8, sigmas, int(n_noise), names, seed, batch_size, amp=amp, offset=offset,
                         pool=pool, noise_parts=noise_parts, channels_last=True,
                         compiled=False)  # eager: a resumed or resharded extraction gives the same bits
    return {(b, sigma_key(s)): r.outputs[b].numpy().astype(np.float32, copy=False)
            for b in names for s, r in zip(sigmas, res)}


def extract(model, images, out, sigmas=(0.0,), n_noise: int = 20, blocks="mid", seed: int = 0,
            chunk_size: int = 4096, batch_size: int = 512, amp="auto", labels=None, meta: dict | None = None,
            rank: int | None = None, world: int | None = None, progress: bool = True,
            noise_threads: int | None = None, chunk_delay: float = 0.0) -> dict:
    """Extract phi of every row of ``images`` (uint8 (N, C, H, W) ndarray or memmap) into ``out``.

    Resumes an existing cache with the same settings (raises on different ones); takes this process's
    chunks (rank r of world W: r, r+W, ...) that no one has done. Returns a small summary dict."""
    if rank is None or world is None:
        rank, world = rank_world()
    out = Path(out)
    sigmas = _check_extract_args(images, sigmas, n_noise, chunk_size, batch_size)
    N = len(images)
    names = resolve_blocks(model, blocks)
    amp = amp_enabled(next(model.parameters()).device, amp)  # record what ran, not "auto"
    manifest = _manifest(model, images, sigmas, n_noise, seed, names, amp, chunk_size, meta)
    arrays = _open_cache(out, manifest, labels)
    n_chunks = manifest["n_chunks"]
    done_file = out / "done" / f"rank{rank}-of{world}.npy"
    mine = load_npy(done_file).astype(bool) if done_file.is_file() else np.zeros(n_chunks, bool)
    done = done_chunks(out, n_chunks) | mine
    todo = [c for c in range(rank, n_chunks, world) if not done[c]]
    from tqdm.auto import tqdm
    n_todo = sum(min(N, (c + 1) * chunk_size) - c * chunk_size for c in todo)
    bar = tqdm(total=n_todo, desc=f"phi {out.name} rank {rank}/{world}", unit="img",
               disable=not progress or rank != 0, dynamic_ncols=True)
    threads = noise_threads or max(1, min(8, (os.cpu_count() or 2) // max(1, world) - 1))
    t0, n_done = time.perf_counter(), 0
    with ThreadPoolExecutor(threads) as pool:
        for c in todo:
            lo, hi = c * chunk_size, min(N, (c + 1) * chunk_size)
            res = phi_rows(model, images[lo:hi], lo, sigmas, n_noise, names, seed, batch_size, amp,
                           pool=pool, noise_parts=threads)
            for k, v in res.items():
                arrays[k][lo:hi] = v
            for a in arrays.values():
                a.flush()  # rows on disk before the chunk is marked done
            mine[c] = True
            atomic_write_bytes(done_file, _npy_bytes(mine))
            n_done += hi - lo
            bar.update(hi - lo)
            if chunk_delay:
                time.sleep(chunk_delay)  # testing aid: leaves time to kill the process between chunks
    bar.close()
    dt = time.perf_counter() - t0
    return {"rank": rank, "world": world, "chunks": len(todo), "images": n_done, "seconds": round(dt, 3),
            "images_per_s": round(n_done / dt, 1) if dt > 0 and n_done else None,
            "complete": bool(done_chunks(out, n_chunks).all())}


def _check_extract_args(images, sigmas, n_noise, chunk_size, batch_size) -> list[float]:
    """`extract`'s arguments checked before any file is touched; the sigmas, checked."""
    sigmas = [check_sigma(s, "sigmas") for s in sigmas]
    if not sigmas or len(set(map(sigma_key, sigmas))) != len(sigmas):
        raise ValueError(f"sigmas: expected distinct values, got {sigmas}")
    if int(n_noise) < 1 or int(chunk_size) < 1 or int(batch_size) < 1:
        raise ValueError("n_noise, chunk_size and batch_size must be >= 1")
    if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4):
        raise ValueError(f"images: expected a uint8 (N, C, H, W) array, got {type(images).__name__} "
                         f"{getattr(images, 'dtype', '')} {getattr(images, 'shape', '')}")
    if len(images) == 0:
        raise ValueError("images: empty (0 images); nothing to extract")
    return sigmas


def _manifest(model, images, sigmas, n_noise, seed, names, amp, chunk_size, meta) -> dict:
    """The cache's manifest: what was extracted, how, and the arrays that hold it (as JSON reads it back)."""
    N = len(images)
    channels = block_channels(model, names)
    manifest = {"format": FORMAT, **(meta or {}), "N": N, "image_shape": list(images.shape[1:]),
                "sigmas": [float(s) for s in sigmas], "n_noise": int(n_noise), "seed": int(seed),
                "blocks": names, "levels": model.config.levels, "channels": channels, "amp": amp,
                "chunk_size": int(chunk_size), "n_chunks": -(-N // int(chunk_size)), "dtype": "float32",
                "arrays": {b: {sigma_key(s): array_name(b, s) for s in sigmas} for b in names}}
    return json.loads(json.dumps(manifest))


def _open_cache(out: Path, manifest: dict, labels) -> dict:
    """Create (or, with the same settings, reopen) the cache folder: its manifest, one .npy array per block
    and sigma, and the labels. Returns {(block, sigma key): writable memmap}; refuses other settings."""
    out.mkdir(parents=True, exist_ok=True)
    mpath = out / MANIFEST
    if mpath.is_file():
        old = read_json(mpath, "phi cache manifest")

        def strip(d):
            return {k: v for k, v in d.items() if k not in IGNORED_ON_RESUME}
        if strip(old) != strip(manifest):
            diff = {k: (old.get(k), manifest.get(k)) for k in set(old) | set(manifest)
                    if k not in IGNORED_ON_RESUME and old.get(k) != manifest.get(k)}
            raise ValueError(f"{mpath}: cannot resume, the cache was started with different settings "
                             f"{diff} (use another --out or delete the folder)")
    else:
        atomic_write_json(mpath, manifest)  # identical content from every rank: a race is harmless
    names, sigmas, N = manifest["blocks"], manifest["sigmas"], manifest["N"]
    for b in names:
        for s in sigmas:
            _create_npy(out / array_name(b, s), (N, manifest["channels"][b]))
    if labels is not None and not (out / "labels.npy").is_file():
        atomic_write_bytes(out / "labels.npy", _npy_bytes(np.asarray(labels, np.int64)))
    return {(b, sigma_key(s)): np.load(out / array_name(b, s), mmap_mode="r+") for b in names for s in sigmas}


# ----------------------------------------------------------------------------------------------- CLI
