"""The paper's effects on the shipped checkpoint, or curves over a run's snapshots: `make evidence`.

Evidence for the paper's effects, measured with the readout (lib.measure.readout) on fixed held-out images.

    python -m scripts.evidence                                  # default checkpoint, last line = flat JSON
    python -m scripts.evidence --snapshots runs/tux32/snapshots # curves over training -> figures/evidence/

Per model, at the analysis noise level (lib.measure.readout.ANALYSIS_SIGMA, ANALYSIS_NOISE draws): the liveness of phi
(fraction of its energy that varies across images), the median PR and effective channel count (PR x C) of the
middle block's input and output, the number of middle-block channels with excess kurtosis > 3 across images
(among channels active for at least 1% of the images), k-means NMI/AMI/ARI of phi against class, instance and
background, and a tuned linear probe and kNN fitted on a train split; next to raw pixels and the untrained
network of the same configuration.
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
