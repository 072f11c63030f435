"""Speed benchmarks (train, phi extraction, contention, sampler) as one JSON line: `make bench`.

A thin command over `lib.tools.bench`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

import json

from lib.core.checks import run_cli
from lib.tools.bench import bench_contention, bench_core, bench_phi_compiled, bench_train_settings, figures_profile
from lib.tools.sampler_bench import run as run_sampler_bench
from scripts import Parser, checkpoint_arg, device_arg


def parser() -> Parser:
    """The arguments: what to skip, the device and checkpoint, --quick, --compile and --figures."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short timings and a tiny sampler batch")
    p.add_argument("--skip-sampler", action="store_true")
    p.add_argument("--device", type=device_arg, default="auto")
    p.add_argument("--checkpoint", type=checkpoint_arg, default="data/checkpoints/tux32")
    p.add_argument("--skip-contention", action="store_true")
    p.add_argument("--skip-train-settings", action="store_true")
    p.add_argument("--skip-phi-compiled", action="store_true", help="skip timing phi's compiled extraction")
    p.add_argument("--compile", action="store_true",
                   help="also time torch.compile'd training (about a minute of compiling)")
    p.add_argument("--figures", action="store_true",
                   help="print the per-notebook, per-stage seconds of the last notebook run "
                        "(figures/rendered/profile.json) as {\"figures_profile\": ...} instead of timing anything")
    return p


def main(argv=None):
    """Run the benchmarks not skipped, printing the results so far as one JSON line after each (--figures: print the
    last notebook run's profile instead)."""
    a = parser().parse_args(argv)
    if a.figures:
        print(json.dumps(figures_profile(), sort_keys=True))
        return
    res = bench_core(a.device, a.quick)
    print(json.dumps(res), flush=True)
    if not a.skip_train_settings:
        res.update(bench_train_settings(a.device, a.quick, a.compile))
        print(json.dumps(res), flush=True)
    if not a.skip_phi_compiled:
        res.update(bench_phi_compiled(a.device, a.quick))
        print(json.dumps(res), flush=True)
    if not a.skip_contention:
        res.update(bench_contention(a.quick))
        print(json.dumps(res), flush=True)
    if not a.skip_sampler:
        res.update(run_sampler_bench(checkpoint=a.checkpoint, quick=a.quick))
    print(json.dumps(res))


if __name__ == "__main__":
    run_cli(main)
