"""Which blocks the denoiser's output goes through: the PSNR lost when a block's output is swapped between
images or reduced to its spatial means (lib.measure.denoising.block_reliance), for every block.

    python -m scripts.reliance data/checkpoints/cifar32 --dataset folder:data/cifar10-train --out figures/cifar10/reliance

Held-out images (the test split of the dataset spec), noise draws fixed by --seed. Writes OUT/reliance.json
(every checkpoint's table) and OUT/reliance.md, merged with what OUT already holds for other checkpoints.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lib.core.checks import run_cli
from lib.core.device import apply_threads
from lib.core.files import atomic_write_bytes
from lib.data.datasets import load_dataset
from lib.measure.denoising import RELIANCE_SIGMAS, reliance_by_block, reliance_markdown
from lib.model.checkpoint import load_model


def checkpoint_label(stem: Path) -> str:
    """A shipped checkpoint by its name; a run's snapshot (RUN/snapshots/imgN) or current model (RUN/model)
    by the run's folder."""
    if stem.parent.name == "snapshots":
        return stem.parent.parent.name
    return stem.parent.name if stem.name == "model" else stem.name


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+", help="checkpoint stems, e.g. data/checkpoints/tux32")
    p.add_argument("--dataset", required=True, help="dataset spec of the held-out images")
    p.add_argument("--n", type=int, default=256, help="held-out images (default 256)")
    p.add_argument("--sigmas", type=float, nargs="+", default=list(RELIANCE_SIGMAS))
    p.add_argument("--seed", type=int, default=4321, help="noise seed")
    p.add_argument("--out", required=True, help="folder for reliance.json and reliance.md")
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    apply_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "reliance.json"
    tables = json.loads(path.read_text()) if path.is_file() else {}
    for stem in a.checkpoints:
        model = load_model(stem).eval()
        x = load_dataset(a.dataset, n=a.n, size=model.config.image_size, seed=0, split="test").float()
        key = f"{checkpoint_label(Path(stem))} ({model.checkpoint_metadata.get('images_seen', 0):,} images)"
        tables[key] = reliance_by_block(model, x, a.sigmas, a.seed)
        print(key, json.dumps(tables[key]), flush=True)
    # atomic: the file holds every checkpoint measured so far; keys keep the blocks' forward order
    atomic_write_bytes(path, (json.dumps(tables, indent=1) + "\n").encode())
    (out / "reliance.md").write_text(reliance_markdown(tables))
    print((out / "reliance.md").read_text())


if __name__ == "__main__":
    run_cli(main)
