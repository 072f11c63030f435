"""Benchmarks: ``python -m scripts.bench [--quick] [--skip-sampler]``; the last line printed is one flat JSON object.

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
train_images_per_s[SETTING], train_best_images_per_s, train_best_setting (train images/s over batch size, threads,
channels_last and optionally torch.compile: `bench_train_settings`), phi_eager_image_draws_per_s,
phi_compiled_image_draws_per_s, phi_compiled_speedup, phi_compile_first_call_s, phi_compiled_max_abs_diff,
phi_library_image_draws_per_s, phi_library_speedup, phi_library_bf16, phi_library_median_rel_diff (phi's
extraction eager, compiled in float32, and as the library runs it: `bench_phi_compiled`), then the sampler keys of
lib.tools.sampler_bench. Numbers from a machine that is not idle are not comparable.

``python -m scripts.bench --figures`` prints instead {"figures_profile": ...}: the per-notebook, per-stage
seconds of the last notebook run into figures/rendered/ (`figures_profile`), and nothing is timed.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

from lib.core.checks import read_json
from lib.core.device import (
    PASSIVE_WAIT,
    amp_enabled,
    apply_threads,
    autocast,
    bf16_supported,
    pick_device,
    to_channels_last,
)
from lib.core.paths import FIGURES
from lib.model import compiled
from lib.model.hooks import run_blocks
from lib.model.unet import UNet, forward_flops, preset
from lib.publish.runner import PROFILE_FILE
from lib.representation.phi import noise_averaged

# what `python -m scripts.bench --figures` reads: the profile the notebook runner merges after each notebook
FIGURES_PROFILE = FIGURES / "rendered" / PROFILE_FILE


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
    """Speeds of the cpu32 preset at 32x32 on ``device``: train images/s, phi images/s (stopping after the
    middle block, and full forward), forward GFLOP/s and a matmul's GFLOP/s for scale."""
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


def bench_phi_compiled(device="auto", quick=False) -> dict:
    """phi's extraction (`lib.representation.phi.noise_averaged`: cpu32 preset, 32x32, sigma 0.2, 4 draws,
    batches of 256 rows, stopping after the middle block) eager, through the compiled blocks in float32, and as
    the library runs it (compiled, bf16 where the device is fast at it: `lib.model.compiled.COMPILED_BF16`):
    image-draws/s of each after warm-up, the speed-ups over eager, the first compiled call's seconds (compiling,
    or loading TorchInductor's on-disk cache), the largest float32 difference from eager and the median
    per-image relative difference of the library's setting."""
    dev = pick_device(device)
    torch.manual_seed(0)
    model = UNet(preset("cpu32")).to(dev).eval()
    n = 64 if quick else 256
    x = torch.rand(n, 3, 32, 32, device=dev)

    def run(fast, bf16=False):
        old, compiled.COMPILED_BF16 = compiled.COMPILED_BF16, bf16
        try:
            return noise_averaged(model, x, [0.2], 4, ["mid"], 0, 256, compiled=fast)[0].outputs["mid"]
        finally:
            compiled.COMPILED_BF16 = old
    eager = run(False)
    t0 = time.perf_counter()
    fast = run(True)
    first = time.perf_counter() - t0
    if compiled._state["failed"]:
        return {"phi_compiled_failed": True}
    lib_default = run(True, compiled.COMPILED_BF16)
    mt = 1.0 if quick else 5.0
    t_eager, t_fast = _timeit(lambda: run(False), mt, 1), _timeit(lambda: run(True), mt, 1)
    t_lib = _timeit(lambda: run(True, compiled.COMPILED_BF16), mt, 1)
    rel = ((lib_default - eager).norm(dim=1) / eager.norm(dim=1).clamp_min(1e-12)).median()
    return {"phi_eager_image_draws_per_s": round(4 * n / t_eager, 1),
            "phi_compiled_image_draws_per_s": round(4 * n / t_fast, 1),
            "phi_compiled_speedup": round(t_eager / t_fast, 2), "phi_compile_first_call_s": round(first, 1),
            "phi_compiled_max_abs_diff": float((fast - eager).abs().max()),
            "phi_library_image_draws_per_s": round(4 * n / t_lib, 1),
            "phi_library_speedup": round(t_eager / t_lib, 2),
            "phi_library_bf16": bool(compiled.COMPILED_BF16 and amp_enabled(dev, "auto")),
            "phi_library_median_rel_diff": float(rel)}


def train_rate(device, batch: int, threads: int, channels_last: bool, compiled: bool = False,
               min_time: float = 5.0) -> float:
    """Train images/s of the cpu32 preset at 32x32 (one Adam step on a noisy batch) for one setting."""
    dev = pick_device(device)
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = to_channels_last(UNet(preset("cpu32")).to(dev), channels_last)
        opt = torch.optim.Adam(model.parameters(), 1e-3)
        fwd = torch.compile(model) if compiled else model
        x = to_channels_last(torch.rand(batch, 3, 32, 32, device=dev), channels_last)
        amp = bf16_supported(dev)

        def step():
            with autocast(dev, amp):
                out = fwd(x + 0.1 * torch.randn_like(x))
            loss = (out.float() - x).pow(2).sum(dim=(1, 2, 3)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return batch / _timeit(step, min_time, warmup=3 if compiled else 2)
    finally:
        torch.set_num_threads(old)


def bench_train_settings(device="auto", quick=False, compiled=False) -> dict:
    """Train images/s over batch size x threads x channels_last (x torch.compile when ``compiled``) and the
    best setting: what a training run on this machine should use."""
    threads = sorted({1, torch.get_num_threads()})
    out = {}
    for b in (32, 64, 128):
        for t in threads:
            for cl in (True, False):
                for comp in ((False, True) if compiled else (False,)):
                    name = f"batch {b}, {t} thread{'s' if t > 1 else ''}, {'channels_last' if cl else 'NCHW'}" \
                           + (", torch.compile" if comp else "")
                    out[name] = round(train_rate(device, b, t, cl, comp, 1.0 if quick else 4.0), 1)
    best = max(out, key=out.get)
    flat = {f"train_images_per_s[{k}]": v for k, v in out.items()}
    return {**flat, "train_best_images_per_s": out[best], "train_best_setting": best}


def contention_work(threads: int, min_time: float) -> dict:
    """The fixed workload of `bench_contention`: seconds per cpu32 forward pass on 32 images, 32x32."""
    n = apply_threads(threads)
    torch.manual_seed(0)
    model = UNet(preset("cpu32")).eval()
    x = torch.rand(32, 3, 32, 32)
    with torch.inference_mode():
        s = _timeit(lambda: model(x), min_time, warmup=1)
    return {"s": s, "threads": n}


def _work(threads: int, min_time: float, env: dict) -> dict:
    """One `contention_work` run in a fresh process with the thread settings of ``env`` only."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "KMP_BLOCKTIME")}
    code = "import json, sys; from lib.tools.bench import contention_work; " \
           "print(json.dumps(contention_work(int(sys.argv[1]), float(sys.argv[2]))))"
    r = subprocess.run([sys.executable, "-c", code, str(threads), str(min_time)],
                       env={**base, **env}, capture_output=True, text=True, check=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


def bench_contention(quick=False) -> dict:
    """Slowdown of `contention_work` with one competing busy process, as the notebooks run (the library's
    thread choice, the runner's kernel environment) and as they ran before (a thread per core, default
    OpenMP waiting). Each measurement is a fresh process, as each notebook kernel is."""
    mt = 1.0 if quick else 3.0
    res = {}
    for key, threads, env in (("", 0, PASSIVE_WAIT),
                              ("_all_cores", os.cpu_count() or 1, {})):
        alone = _work(threads, mt, env)
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(0.5)  # let it take its core before the thread choice looks
            contended = _work(threads, mt, env)
        finally:
            busy.kill()
            busy.wait()
        res[f"contended_slowdown{key}"] = round(contended["s"] / alone["s"], 2)
        res[f"contended_work_s{key}"] = round(contended["s"], 4)
        res[f"alone_work_s{key}"] = round(alone["s"], 4)
        if not key:
            res["contended_threads"] = f"{alone['threads']} / {contended['threads']}"
    return res


def figures_profile(path=None) -> dict:
    """{"figures_profile": {notebook: {"total", "stages", "other", "ok"}}} from the notebook runner's profile
    (default `FIGURES_PROFILE`, figures/rendered/profile.json); FileNotFoundError naming the command that
    writes it when there is none yet."""
    path = Path(path or FIGURES_PROFILE)
    if not path.is_file():
        raise FileNotFoundError(f"no notebook profile yet: {path} does not exist; run `make figures` (or "
                                f"`python -m scripts.notebooks [--only NN]`) to write it")
    data = read_json(path, "notebook profile")
    if not isinstance(data, dict):
        raise ValueError(f"{path}: notebook profile: expected a JSON object, got {type(data).__name__}")
    return {"figures_profile": data}
