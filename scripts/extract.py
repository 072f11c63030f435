"""phi for a whole dataset into a resumable, sharded disk cache (torchrun for several GPUs).

A thin command over `lib.representation.extract`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import argparse
import json
import os

import torch

from lib.core.checks import parse_amp, run_cli
from lib.core.device import apply_threads, pick_device, to_channels_last
from lib.core.hashing import file_sha256
from lib.core.paths import resolve
from lib.model.checkpoint import read_config
from lib.model.unet import UNet, block_aliases
from lib.representation.extract import extract, rank_world
from scripts import (
    Parser,
    arg_type,
    checkpoint_arg,
    dataset_arg,
    device_arg,
    no_duplicates,
    nonneg_float,
    nonneg_int,
    out_dir,
    positive_int,
    sigma_arg,
)


def parser() -> Parser:
    """The arguments: checkpoint, dataset and split, sigmas, noise draws, blocks, output folder and the run's knobs."""
    p = Parser(description="Extract phi (noise-averaged block means) for a whole dataset "
                           "into memory-mapped .npy arrays (resumable; shards under torchrun).")
    p.add_argument("--checkpoint", required=True, type=checkpoint_arg,
                   help="checkpoint stem (lib.model.checkpoint), e.g. data/checkpoints/tux32")
    p.add_argument("--dataset", required=True, type=dataset_arg,
                   help="dataset spec, e.g. imagenet64:/data/imagenet64 or tuxphoto")
    p.add_argument("--split", default="train", choices=["train", "test"])
    p.add_argument("--n", type=positive_int, default=None,
                   help="first n images (default: all; generated datasets: 2000)")
    p.add_argument("--size", type=positive_int, default=None, help="image size (default: the checkpoint's image_size)")
    p.add_argument("--sigmas", type=sigma_arg, nargs="+", default=[0.0])
    p.add_argument("--n-noise", type=positive_int, default=20)
    p.add_argument("--blocks", nargs="+", default=["mid"])
    p.add_argument("--seed", type=nonneg_int, default=0, help="noise seed (image i uses (seed, i)); also the "
                                                             "generation seed of generated datasets")
    p.add_argument("--out", required=True, type=out_dir)
    p.add_argument("--chunk-size", type=positive_int, default=4096)
    p.add_argument("--batch-size", type=positive_int, default=512, help="noisy images per forward pass")
    p.add_argument("--device", type=device_arg, default="auto")
    p.add_argument("--amp", default="auto", type=arg_type(lambda s: (parse_amp(s, "--amp"), s)[1]),
                   help="auto | true | false: bf16 autocast")
    p.add_argument("--cache-dir", type=out_dir, default="data/cache",
                   help="where the uint8 image pool is converted to once")
    p.add_argument("--noise-threads", type=nonneg_int, default=None)
    p.add_argument("--threads", type=nonneg_int, default=0,
                   help="torch CPU threads (0: the idle cores, lib.core.device.choose_threads)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--chunk-delay", type=nonneg_float, default=0.0, help=argparse.SUPPRESS)
    return p


def parse_args(argv=None):
    """The arguments, checked before any work: blocks named by the checkpoint's network, none twice, the
    size and sigmas inside what the checkpoint was trained on."""
    p = parser()
    a = p.parse_args(argv)
    cfg, meta = read_config(resolve(a.checkpoint))
    names = list(UNet(cfg).block_names)
    aliases = block_aliases(cfg.levels)  # the paper's a1..a6 name blocks too
    no_duplicates(p, "--blocks", a.blocks)
    no_duplicates(p, "--sigmas", a.sigmas)
    bad = [b for b in a.blocks if b not in names and b not in aliases]
    if bad:
        p.error(f"argument --blocks: {bad[0]!r} is not a block of {a.checkpoint}; blocks: {', '.join(names)} "
                f"(or the paper's {', '.join(sorted(aliases))})")
    top = float((meta.get("train_config") or {}).get("sigma_max", 1.0))
    over = [s for s in a.sigmas if s > top]
    if over:
        p.error(f"argument --sigmas: {over[0]:g} is above the range {a.checkpoint} was trained on [0, {top:g}]")
    if a.size is not None and a.size < 8:
        p.error(f"argument --size: expected an image size >= 8, got {a.size}")
    return a


def main(argv=None):
    """Extract this process's share of the dataset's phi into --out (rank 0 converts the dataset first) and print
    the result as JSON."""
    a = parse_args(argv)
    from lib.data.pools import open_pool
    from lib.model.checkpoint import checkpoint_file, load_model
    apply_threads(a.threads)
    rank, world = rank_world()
    dev = pick_device(a.device)
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    model = load_model(a.checkpoint, device=dev)
    if dev.type == "cuda":
        model = to_channels_last(model)
    size = a.size or model.config.image_size
    # rank 0 converts the dataset once; the others wait for it
    images, labels = open_pool(a.dataset, a.split, size, a.n, a.seed, a.cache_dir, build=rank == 0,
                               progress=not a.no_progress, wait_s=0 if rank == 0 else 24 * 3600)
    wpath = checkpoint_file(model.checkpoint_path, ".safetensors")
    meta = {"checkpoint": str(model.checkpoint_path), "checkpoint_sha256": file_sha256(wpath),
            "dataset": a.dataset, "split": a.split, "n": a.n, "size": size}
    amp = parse_amp(a.amp, "--amp")
    res = extract(model, images, a.out, a.sigmas, a.n_noise, a.blocks, a.seed, a.chunk_size, a.batch_size,
                  amp, labels=labels, meta=meta, rank=rank, world=world, progress=not a.no_progress,
                  noise_threads=a.noise_threads, chunk_delay=a.chunk_delay)
    print(json.dumps(res), flush=True)


if __name__ == "__main__":
    run_cli(main)
