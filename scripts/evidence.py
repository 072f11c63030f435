"""The paper's effects on the shipped checkpoint, or curves over a run's snapshots: `make evidence`.

A thin command over `lib.training.evidence`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from lib.core.paths import FIGURES
from lib.training.evidence import default_evidence, snapshot_curves


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="data/checkpoints/tux32")
    p.add_argument("--snapshots", help="a run's snapshots/ folder: write curves to --out")
    p.add_argument("--out", default=str(FIGURES / "evidence"))
    p.add_argument("-n", type=int, default=1000, help="held-out images")
    a = p.parse_args(argv)
    if a.snapshots:
        snapshot_curves(Path(a.snapshots), Path(a.out), n=a.n)
    print(json.dumps(default_evidence(a.checkpoint, n=a.n)))


if __name__ == "__main__":
    main()
