r"""Which blocks the denoiser's output goes through: the PSNR lost when a block's output is swapped between
images or reduced to its spatial means (lib.measure.denoising.block_reliance), for every block.

    python -m scripts.reliance data/checkpoints/cifar32 --dataset folder:data/cifar10-train \
        --out figures/cifar10/reliance

Held-out images (the test split of the dataset spec), noise draws fixed by --seed. Writes OUT/reliance.json
(every checkpoint's table) and OUT/reliance.md, merged with what OUT already holds for other checkpoints.
"""
from __future__ import annotations

import json
from pathlib import Path

from lib.core.checks import read_json, run_cli
from lib.core.device import apply_threads
from lib.core.files import atomic_write_bytes
from lib.core.hashing import weights_sha256
from lib.core.paths import resolve
from lib.data.datasets import load_dataset
from lib.measure.denoising import RELIANCE_SIGMAS, reliance_by_block, reliance_markdown
from lib.model.checkpoint import checkpoint_file, load_model, read_config
from lib.training.curves import run_labels
from scripts import (
    Parser,
    checkpoint_arg,
    dataset_arg,
    no_duplicates,
    nonneg_int,
    out_dir,
    positive_int,
    resolved,
    sigma_arg,
)


def run_folder(stem: Path) -> Path:
    """The folder a checkpoint belongs to: RUN for RUN/model and RUN/snapshots/imgN, the stem for a shipped one."""
    if stem.parent.name == "snapshots":
        return stem.parent.parent
    return stem.parent if stem.name == "model" else stem


def parser() -> Parser:
    """The arguments: the checkpoints, dataset, sigmas, image count, seed, threads and output folder."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoints", nargs="+", type=checkpoint_arg, help="checkpoint stems, e.g. data/checkpoints/tux32")
    p.add_argument("--dataset", required=True, type=dataset_arg, help="dataset spec of the held-out images")
    p.add_argument("--n", type=positive_int, default=256, help="held-out images (default 256)")
    p.add_argument("--sigmas", type=sigma_arg, nargs="+", default=list(RELIANCE_SIGMAS),
                   help="noise levels, each in (0, the checkpoint's training sigma_max]")
    p.add_argument("--seed", type=nonneg_int, default=4321, help="noise seed")
    p.add_argument("--out", required=True, type=out_dir, help="folder for reliance.json and reliance.md")
    p.add_argument("--threads", type=nonneg_int, default=0)
    return p


def check_args(p: Parser, a) -> None:
    """Before any work: no checkpoint twice, no sigma twice, every sigma inside every checkpoint's trained range."""
    no_duplicates(p, "checkpoints", a.checkpoints, key=lambda c: resolved(checkpoint_file(resolve(c), ".json")))
    no_duplicates(p, "--sigmas", a.sigmas)
    for stem in a.checkpoints:
        _, meta = read_config(resolve(stem))
        top = float((meta.get("train_config") or {}).get("sigma_max", 1.0))
        bad = [s for s in a.sigmas if not 0 < s <= top]
        if bad:
            p.error(f"argument --sigmas: {bad[0]:g} is outside the range {stem} was trained on (0, {top:g}]")


def main(argv=None):
    """Measure each checkpoint's reliance on every block and merge the tables into OUT/reliance.json and
    OUT/reliance.md."""
    p = parser()
    a = p.parse_args(argv)
    check_args(p, a)
    apply_threads(a.threads)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "reliance.json"
    tables = read_json(path, "reliance tables") if path.is_file() else {}
    weights_path = out / "reliance.weights.json"  # key -> weights sha256: a key is never reused for other weights
    weights = json.loads(weights_path.read_text()) if weights_path.is_file() else {}
    models = [load_model(stem).eval() for stem in a.checkpoints]
    owners = [run_folder(Path(stem)) for stem in a.checkpoints]
    label = dict(zip(dict.fromkeys(owners), run_labels(list(dict.fromkeys(owners)))))
    keys = [f"{label[o]} ({m.checkpoint_metadata.get('images_seen', 0):,} images)" for o, m in zip(owners, models)]
    shas = [weights_sha256(m, 16) for m in models]
    for stem, key, sha in zip(a.checkpoints, keys, shas):
        if weights.get(key, sha) != sha or len({s for k, s in zip(keys, shas) if k == key}) > 1:
            raise ValueError(f"{stem}: other weights are already recorded as {key!r} in {path.parent}; measure it from "
                             f"a folder with another name (records are keyed by run and images seen, checked by "
                             f"weights sha256)")
    for stem, model, key, sha in zip(a.checkpoints, models, keys, shas):
        x = load_dataset(a.dataset, n=a.n, size=model.config.image_size, seed=0, split="test").float()
        tables[key] = reliance_by_block(model, x, a.sigmas, a.seed)
        weights[key] = sha
        print(key, json.dumps(tables[key]), flush=True)
    # atomic: the file holds every checkpoint measured so far; keys keep the blocks' forward order
    atomic_write_bytes(path, (json.dumps(tables, indent=1) + "\n").encode())
    atomic_write_bytes(weights_path, (json.dumps(weights, indent=1, sort_keys=True) + "\n").encode())
    (out / "reliance.md").write_text(reliance_markdown(tables))
    print((out / "reliance.md").read_text())


if __name__ == "__main__":
    run_cli(main)
