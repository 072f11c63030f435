"""Ship a training run as a checkpoint with its card: `python -m scripts.ship runs/NAME --name NAME`.

A thin command over `lib.training.card`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from lib.core.checks import run_cli
from lib.core.paths import CHECKPOINTS
from lib.model.checkpoint import checkpoint_file
from lib.training.card import refresh_card, ship


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="training output folder (holds model.safetensors/model.json/log.jsonl)")
    p.add_argument("--name", help="checkpoint name (required unless --card-only)")
    p.add_argument("--dest", default=str(CHECKPOINTS))
    p.add_argument("--retrain", default="make checkpoint", help="the command the card gives to retrain it")
    p.add_argument("--force", action="store_true", help="replace the files of an existing checkpoint of that name")
    p.add_argument("--readout", action="store_true", help="add the class readout (probe, kNN vs pixels) to the card")
    p.add_argument("--snapshot", type=int, metavar="IMAGES",
                   help="ship the run's snapshot at IMAGES images seen (snapshots/imgIMAGES), not its current model")
    p.add_argument("--with-optimizer", action="store_true",
                   help="also ship Adam's state (NAME.optim.safetensors), so that --continue is bit-identical")
    p.add_argument("--card-only", action="store_true",
                   help="RUN is a shipped checkpoint stem (data/checkpoints/NAME): rewrite only its card")
    a = p.parse_args(argv)
    if a.card_only:
        stem = refresh_card(Path(a.run))
        print(checkpoint_file(stem, ".md").read_text())
        return
    if not a.name:
        p.error("--name is required")
    stem = ship(a.run, a.name, Path(a.dest), a.retrain, a.force, a.readout, a.snapshot, a.with_optimizer)
    print(checkpoint_file(stem, ".md").read_text())


if __name__ == "__main__":
    run_cli(main)
