"""Sampler benchmark: the authors' reference self-guided preset against our fast one.

A thin command over `lib.tools.sampler_bench`; its docstring says what the command computes and writes.
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
    p.add_argument("--targets", type=int, default=8)
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(json.dumps(run(a.checkpoint, a.quick, a.targets, a.samples, tuple(a.seeds), progress=True), indent=2))


if __name__ == "__main__":
    main()
