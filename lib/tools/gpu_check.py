"""One script for a GPU machine: ``python -m scripts.gpu_check [--quick]`` (``make gpu-check``).

1. trains the paper preset (paper64, 13.7 M parameters) at 64x64 on generated tuxphoto images for
   ``--train-seconds`` through the real trainer (lib.training.trainer: bf16 autocast, channels_last, Adam, the
   final checkpoint write), stopped by its own stop flag;
2. extracts phi (lib.representation.extract: sigmas 0 and 0.1, ``--n-noise`` draws, middle block) for ``--n-extract``
   images (generated; ``--unique`` distinct images tiled to that count: the speed does not depend on the
   content, and generating 100 000 composites would take longer than everything else);
3. runs lib.measure.kmeans.torch_kmeans on the extracted phi (k = ``--k``);
and prints throughputs (images/s), seconds, peak memory and achieved TFLOP/s (conv FLOPs counted by
lib.model.unet.forward_flops; a training step ~ 3 forward passes) against the device's dense bf16 peak (a table
of known devices, else a measured large bf16 matmul), as one JSON object on the last line.
``--quick`` uses tiny sizes (tiny preset at 16x16, seconds of training) so it also runs on a CPU.
"""
from __future__ import annotations

import platform
import resource
import threading
import time
from pathlib import Path

import numpy as np
import torch

from lib.core.device import bf16_supported
from lib.data.pools import open_pool
from lib.measure.kmeans import torch_kmeans
from lib.model.unet import forward_flops, preset
from lib.representation.extract import extract, load_cache
from lib.training.recipe import TrainConfig
from lib.training.trainer import Trainer

# dense (no sparsity) bf16 tensor-core peaks in TFLOP/s, from the vendors' data sheets (SXM parts)
PEAK_BF16_TFLOPS = {"GH200": 989.0, "H200": 989.0, "H100 PCIE": 756.0, "H100": 989.0, "H800": 989.0,
                    "B200": 2250.0, "A100": 312.0, "A800": 312.0, "L40S": 362.0, "L40": 181.0,
                    "A6000": 155.0, "RTX 4090": 165.0, "A10G": 70.0, "A10": 125.0, "L4": 121.0}


def significant(x: float, digits: int = 4) -> float:
    """``x`` to ``digits`` significant digits."""
    return float(f"{x:.{digits}g}")


def device_name(dev: torch.device) -> str:
    """The device as reported: the GPU's name, or the CPU with its thread count."""
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def measured_matmul_tflops(dev: torch.device, n: int = 8192, seconds: float = 2.0) -> float:
    """TFLOP/s of repeated n x n matmuls (bf16 where supported) over ``seconds``; n = 1024 on a CPU."""
    dtype = torch.bfloat16 if bf16_supported(dev) else torch.float32
    n = n if dev.type == "cuda" else 1024
    a, b = torch.randn(n, n, device=dev, dtype=dtype), torch.randn(n, n, device=dev, dtype=dtype)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(3):
        a @ b
    sync()
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        k += 1
        if dev.type == "cuda" and k % 10:
            continue
        sync()
    sync()
    return 2 * n ** 3 * k / (time.perf_counter() - t0) / 1e12


def peak_tflops(dev: torch.device, seconds: float = 2.0) -> tuple[float, str]:
    """(dense bf16 peak TFLOP/s, where it came from): the table of known GPUs, else a measured matmul."""
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev).upper()
        for key, v in PEAK_BF16_TFLOPS.items():  # longest, most specific keys first in the table
            if key in name:
                return v, f"table ({key})"
    return measured_matmul_tflops(dev, seconds=seconds), "measured large matmul"


def peak_memory_gb(dev: torch.device) -> float:
    """Peak memory so far in GiB: the GPU's allocated peak, or the process's peak RSS on a CPU."""
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux -> GiB (process RSS)


def train_phase(a, dev, work: Path) -> dict:
    """Train ``a.preset`` for ``a.train_seconds`` (from the first step) through the real Trainer; returns the
    model and the phase's throughput, TFLOP/s and peak memory."""
    cfg = TrainConfig(out=str(work / "train"), preset=a.preset, dataset=a.dataset, size=a.size,
                      n_train=a.n_train, n_val=a.n_val, batch_size=a.batch_size, lr=1e-3, schedule="constant",
                      total_images=10**12, ckpt_every=10**9, log_every=50, device=str(dev), amp="auto",
                      channels_last=True, data_cache=str(work / "data_cache"), seed=a.seed, threads=a.threads)
    tr = Trainer(cfg)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    timer = threading.Timer(a.train_seconds, tr.request_stop)
    t0 = time.perf_counter()

    def start_timer_after_setup():  # the clock starts with the first step, not with data generation
        while tr.step == 0 and not tr.stop_requested:
            time.sleep(0.01)
        timer.start()
    threading.Thread(target=start_timer_after_setup, daemon=True).start()
    model = tr.run(progress=not a.no_progress)
    timer.cancel()
    total = time.perf_counter() - t0
    ips = tr.images_seen / max(tr.wall, 1e-9)
    f_fwd = forward_flops(preset(a.preset), a.size)
    return {"model": model, "train_steps": tr.step, "train_images": tr.images_seen,
            "train_seconds": round(tr.wall, 2), "train_setup_seconds": round(total - tr.wall, 2),
            "train_images_per_s": round(ips, 1), "train_tflops": significant(3 * f_fwd * ips / 1e12),
            "train_peak_memory_gb": round(peak_memory_gb(dev), 3),
            "bf16": bool(tr.amp == "auto" and bf16_supported(dev) or tr.amp is True)}


def extract_phase(a, model, dev, work: Path) -> dict:
    """Extract phi (sigmas 0 and 0.1, middle block) for ``a.n_extract`` images; returns the phi at 0.1 as ``X``
    and the phase's throughput, TFLOP/s and peak memory."""
    model.eval()
    uniq, _ = open_pool(a.dataset, "test", a.size, min(a.unique, a.n_extract), a.seed, work / "data_cache",
                        progress=not a.no_progress)
    images = np.ascontiguousarray(uniq[np.arange(a.n_extract) % len(uniq)])
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        torch.cuda.synchronize(dev)
    sigmas = [0.0, 0.1]
    t0 = time.perf_counter()
    res = extract(model, images, work / "phi", sigmas, n_noise=a.n_noise, blocks="mid", seed=a.seed,
                  chunk_size=a.chunk_size, batch_size=a.extract_batch, amp="auto", progress=not a.no_progress,
                  rank=0, world=1)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    dt = time.perf_counter() - t0
    noisy = a.n_extract * (1 + a.n_noise)  # one pass at sigma 0, n_noise at sigma 0.1
    f_mid = forward_flops(model.config, a.size, stop_after_mid=True)
    X = np.asarray(load_cache(work / "phi", "mid", 0.1))
    return {"X": X, "extract_images": a.n_extract, "extract_seconds": round(dt, 2),
            "extract_images_per_s": round(a.n_extract / dt, 1),
            "extract_forward_images_per_s": round(noisy / dt, 1),
            "extract_tflops": significant(f_mid * noisy / dt / 1e12),
            "extract_peak_memory_gb": round(peak_memory_gb(dev), 3), "extract_complete": res["complete"],
            "phi_finite": bool(np.isfinite(X).all()), "phi_dims": int(X.shape[1])}


def kmeans_phase(a, X, dev) -> dict:
    """Time `torch_kmeans` on ``X`` (k = ``a.k``) on the device; returns its seconds, inertia and clusters used."""
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    t0 = time.perf_counter()
    lab, _, inertia = torch_kmeans(X, min(a.k, len(X)), seed=a.seed, max_iter=a.kmeans_iter, device=dev)
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return {"kmeans_k": int(min(a.k, len(X))), "kmeans_rows": int(len(X)), "kmeans_iter": a.kmeans_iter,
            "kmeans_seconds": significant(time.perf_counter() - t0), "kmeans_inertia": float(inertia),
            "kmeans_clusters_used": int(len(np.unique(lab)))}


# option: (default, --quick default)
SIZES = {"train_seconds": (180.0, 2.0), "n_extract": (100_000, 96), "unique": (2000, 32), "n_noise": (20, 2),
         "k": (1000, 4), "kmeans_iter": (50, 20), "batch_size": (128, 8), "n_train": (2000, 64),
         "n_val": (64, 8), "size": (64, 16), "chunk_size": (8192, 32), "extract_batch": (1280, 16),
         "preset": ("paper64", "tiny")}
