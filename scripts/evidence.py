"""The paper's effects on the shipped checkpoint, or curves over a run's snapshots: `make evidence`.

A thin command over `lib.training.evidence`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import json
from pathlib import Path

from lib.core.checks import run_cli
from lib.training.evidence import default_evidence, snapshot_curves
from scripts import Parser, checkpoint_arg, existing_dir, out_dir, positive_int


def parser() -> Parser:
    """The arguments: the checkpoint, a run's snapshots folder and where to write its curves, the image count."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=checkpoint_arg, default="data/checkpoints/tux32")
    p.add_argument("--snapshots", type=existing_dir, help="a run's snapshots/ folder: write curves to --out")
    p.add_argument("--out", type=out_dir,
                   help="folder for evidence.jsonl and evidence_curves.png (required with --snapshots; the committed "
                        "ones are figures/evidence)")
    p.add_argument("-n", type=positive_int, default=1000, help="held-out images")
    return p


def main(argv=None):
    """Print the checkpoint's evidence as one JSON line; with --snapshots, first write the curves over them to --out."""
    p = parser()
    a = p.parse_args(argv)
    if a.snapshots:
        if not a.out:
            p.error("argument --out: required with --snapshots (give --out figures/evidence to replace the committed "
                    "curves)")
        if not any(Path(a.snapshots).glob("*.safetensors")):
            p.error(f"argument --snapshots: no snapshots (*.safetensors) in {a.snapshots}")
        snapshot_curves(Path(a.snapshots), Path(a.out), n=a.n)
    elif a.out:
        p.error("argument --out: only used with --snapshots")
    print(json.dumps(default_evidence(a.checkpoint, n=a.n)))


if __name__ == "__main__":
    run_cli(main)
