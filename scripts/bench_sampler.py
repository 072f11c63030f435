"""Sampler benchmark: the authors' reference self-guided preset against our fast one.

Benchmark: self-guided reconstruction, the authors' "reference" backward preset vs our "fast" preset.

    python -m scripts.bench_sampler [--checkpoint data/checkpoints/tux32] [--quick]

Both presets run on the same batch (T held-out targets x S samples each, same seed). Reported per preset:
nfe (network calls per batch, lib.sampling.samplers), wall time, mean phi relative error (phi at
lib.sampling.samplers.EVAL_SIGMA), mean PSNR to the target, mean final effective sigma (a no-reference quality
proxy: how much "noise" the denoiser still sees in a sample), and diversity = mean pairwise RMSE among
the S samples of one target. The forward form's reference cost is estimated, not run (see below).
"""
from __future__ import annotations

import argparse
import json

import torch

from lib.tools.sampler_bench import run


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="data/checkpoints/tux32")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--targets", type=int, default=2)
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(json.dumps(run(a.checkpoint, a.quick, a.targets, a.samples, progress=True), indent=2))


if __name__ == "__main__":
    main()
