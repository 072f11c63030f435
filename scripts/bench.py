"""Speed benchmarks (train, phi extraction, contention, sampler) as one JSON line: `make bench`.

Benchmarks: ``python -m scripts.bench [--quick] [--skip-sampler]``; the last line printed is one flat JSON object.

Keys: train_images_per_s (cpu32 preset, 32x32, batch 64, bf16 autocast where fast, channels_last),
phi_images_per_s_stop_after_mid / phi_images_per_s_full_forward (the same images, the forward pass
stopped after the middle block vs the whole network), forward_gflops_per_s (achieved by the full forward
pass, conv FLOPs counted analytically), matmul_peak_gflops_per_s (a large matrix multiply in the same
precision: the ceiling), contended_slowdown (the time of a fixed small workload, a cpu32 forward pass on
32 images, with one competing busy process divided by its time alone, threads chosen by the library
as the notebooks choose them: lib.core.device.choose_threads in a process started with the runner's
environment) next to contended_slowdown_all_cores (the same with one thread per core and OpenMP's default
spin-waiting: what the notebooks did before), the seconds per pass behind them (alone_work_s*,
contended_work_s*), contended_threads (threads chosen alone / contended),
then the sampler keys of lib.tools.sampler_bench. Numbers from a machine that is not idle are not comparable.
"""
from __future__ import annotations

import argparse
import json

from lib.tools.bench import bench_contention, bench_core, bench_train_settings
from lib.tools.sampler_bench import run as run_sampler_bench


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short timings and a tiny sampler batch")
    p.add_argument("--skip-sampler", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--checkpoint", default="data/checkpoints/tux32")
    p.add_argument("--skip-contention", action="store_true")
    p.add_argument("--skip-train-settings", action="store_true")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd training (about a minute of compiling)")
    a = p.parse_args(argv)
    res = bench_core(a.device, a.quick)
    print(json.dumps(res), flush=True)
    if not a.skip_train_settings:
        res.update(bench_train_settings(a.device, a.quick, a.compile))
        print(json.dumps(res), flush=True)
    if not a.skip_contention:
        res.update(bench_contention(a.quick))
        print(json.dumps(res), flush=True)
    if not a.skip_sampler:
        res.update(run_sampler_bench(checkpoint=a.checkpoint, quick=a.quick))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
