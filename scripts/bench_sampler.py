"""Sampler benchmark: the authors' reference self-guided preset against our fast one.

A thin command over `lib.tools.sampler_bench`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import json

import torch

from lib.core.checks import run_cli
from lib.tools.sampler_bench import run
from scripts import Parser, checkpoint_arg, no_duplicates, nonneg_int, positive_int


def parser() -> Parser:
    """The arguments: checkpoint, number of targets and samples, seeds, threads and --quick."""
    p = Parser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", type=checkpoint_arg, default="data/checkpoints/tux32")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--targets", type=positive_int, default=8)
    p.add_argument("--samples", type=positive_int, default=2)
    p.add_argument("--seeds", type=nonneg_int, nargs="+", default=[0, 1])
    p.add_argument("--threads", type=nonneg_int, default=0)
    return p


def main(argv=None):
    """Run the reference and fast presets on the same targets and seeds and print the comparison as JSON."""
    p = parser()
    a = p.parse_args(argv)
    no_duplicates(p, "--seeds", a.seeds)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(json.dumps(run(a.checkpoint, a.quick, a.targets, a.samples, tuple(a.seeds), progress=True), indent=2))


if __name__ == "__main__":
    run_cli(main)
