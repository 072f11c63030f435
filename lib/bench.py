"""Benchmarks: ``python -m lib.bench [--quick] [--skip-sampler]``; the last line printed is one flat JSON object.

Keys: train_images_per_s (cpu32 preset, 32x32, batch 64, bf16 autocast where fast, channels_last),
phi_images_per_s_stop_after_mid / phi_images_per_s_full_forward (the same images, the forward pass
stopped after the middle block vs the whole network), forward_gflops_per_s (achieved by the full forward
pass, conv FLOPs counted analytically), matmul_peak_gflops_per_s (a large matrix multiply in the same
precision: the ceiling), then the sampler keys of lib.bench_sampling.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from .device import autocast, bf16_supported, pick_device, to_channels_last
from .hooks import run_blocks
from .unet import UNet, forward_flops, preset


def _timeit(fn, min_time: float, warmup: int = 2) -> float:
    """Seconds per call of ``fn`` (median-free: total time / calls after warm-up)."""
    for _ in range(warmup):
        fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        dt = time.perf_counter() - t0
        if dt >= min_time:
            return dt / n


def bench_core(device="auto", quick=False) -> dict:
    dev = pick_device(device)
    amp = bf16_supported(dev)
    cfg = preset("cpu32")
    size, batch = 32, 64
    mt = 1.0 if quick else 5.0
    torch.manual_seed(0)
    model = to_channels_last(UNet(cfg).to(dev))
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    x = to_channels_last(torch.rand(batch, 3, size, size, device=dev))

    def train_step():
        y = x + 0.1 * torch.randn_like(x)
        with autocast(dev, amp):
            out = model(y)
        loss = (out.float() - x).pow(2).sum(dim=(1, 2, 3)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    t_train = _timeit(train_step, mt)
    model.eval()
    xb = to_channels_last(torch.rand(256, 3, size, size, device=dev))

    @torch.inference_mode()
    def full():
        with autocast(dev, amp):
            model(xb)

    @torch.inference_mode()
    def mid():
        with autocast(dev, amp):
            run_blocks(model, xb, "mid", stop=True)
    t_full, t_mid = _timeit(full, mt), _timeit(mid, mt)
    n = 2048 if dev.type != "cpu" else 1024
    dtype = torch.bfloat16 if amp else torch.float32
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    t_mm = _timeit(lambda: a @ b, mt)
    return {
        "device": str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        "cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
        "bf16_autocast": bool(amp),
        "train_images_per_s": round(batch / t_train, 1),
        "phi_images_per_s_stop_after_mid": round(256 / t_mid, 1),
        "phi_images_per_s_full_forward": round(256 / t_full, 1),
        "forward_gflops_per_s": round(forward_flops(cfg, size) * 256 / t_full / 1e9, 1),
        "matmul_peak_gflops_per_s": round(2 * n ** 3 / t_mm / 1e9, 1),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="short timings and a tiny sampler batch")
    p.add_argument("--skip-sampler", action="store_true")
    p.add_argument("--device", default="auto")
    p.add_argument("--checkpoint", default="data/checkpoints/tux32")
    a = p.parse_args(argv)
    res = bench_core(a.device, a.quick)
    print(json.dumps(res), flush=True)
    if not a.skip_sampler:
        from .bench_sampling import run
        res.update(run(checkpoint=a.checkpoint, quick=a.quick))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
