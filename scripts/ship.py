"""Ship a training run as a checkpoint with its card: `python -m scripts.ship runs/NAME --name NAME`.

A thin command over `lib.training.card`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

from pathlib import Path

from lib.core.checks import run_cli
from lib.core.paths import CHECKPOINTS
from lib.model.checkpoint import checkpoint_file
from lib.training.card import check_name, refresh_card, ship
from scripts import Parser, arg_type, check, checkpoint_arg, existing_dir, nonneg_int, out_dir


def parser() -> Parser:
    """The arguments: the run, the checkpoint's name and destination, and what the checkpoint and its card hold."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="training output folder (holds model.safetensors/model.json/log.jsonl)")
    p.add_argument("--name", type=arg_type(check_name), help="checkpoint name (required unless --card-only)")
    p.add_argument("--dest", type=out_dir, default=str(CHECKPOINTS))
    p.add_argument("--retrain", type=arg_type(_retrain), default="make checkpoint",
                   help="the command the card gives to retrain it")
    p.add_argument("--force", action="store_true", help="replace the files of an existing checkpoint of that name")
    p.add_argument("--readout", action="store_true", help="add the class readout (probe, kNN vs pixels) to the card")
    p.add_argument("--snapshot", type=nonneg_int, metavar="IMAGES",
                   help="ship the run's snapshot at IMAGES images seen (snapshots/imgIMAGES), not its current model")
    p.add_argument("--with-optimizer", action="store_true",
                   help="also ship Adam's state (NAME.optim.safetensors), so that --continue is bit-identical")
    p.add_argument("--card-only", action="store_true",
                   help="RUN is a shipped checkpoint stem (data/checkpoints/NAME): rewrite only its card")
    return p


def _retrain(text: str) -> str:
    if not text.strip() or "\n" in text or "`" in text:
        raise ValueError(f"expected a one-line command without backquotes, got {text!r}")
    return text


def main(argv=None):
    """Ship the run as a checkpoint with its card (--card-only: rewrite the card of the checkpoint RUN) and print
    the card."""
    p = parser()
    a = p.parse_args(argv)
    if a.card_only:
        for flag in ("name", "snapshot", "readout", "with_optimizer", "force"):
            if getattr(a, flag):
                p.error(f"argument --card-only: rewrites the card of the checkpoint RUN; --{flag.replace('_', '-')} "
                        f"is not used with it")
        check(p, "run", checkpoint_arg, a.run)
        stem = refresh_card(Path(a.run))
        print(checkpoint_file(stem, ".md").read_text())
        return
    if not a.name:
        p.error("argument --name: required (the checkpoint's name, e.g. --name tux32)")
    check(p, "run", existing_dir, a.run)
    if a.snapshot is None and not checkpoint_file(Path(a.run) / "model", ".safetensors").is_file():
        p.error(f"argument run: {a.run} holds no model.safetensors (not a training run folder?)")
    if a.with_optimizer and a.snapshot is not None:
        p.error("argument --with-optimizer: a snapshot keeps no optimizer state; ship the run's current model")
    stem = ship(a.run, a.name, Path(a.dest), a.retrain, a.force, a.readout, a.snapshot, a.with_optimizer)
    print(checkpoint_file(stem, ".md").read_text())


if __name__ == "__main__":
    run_cli(main)
