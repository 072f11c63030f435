"""Device choice, autocast, channels_last, seeding and per-sample generators."""
from __future__ import annotations

import contextlib
import os
import random
import time

import numpy as np
import torch

from lib.core.checks import parse_amp


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """'auto' -> cuda if available, else mps, else cpu. Errors name the device that is not there."""
    if device is None or str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device: {device!r} requested but CUDA is not available on this machine")
    return dev


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast pays on ``device``: CUDA that supports it, or a CPU with AVX512-BF16/AMX units."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # bf16 autocast works everywhere on CPU but is only fast with AVX512-BF16/AMX units.
        try:
            return (bool(torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX"))
                    or _has_cpu_flag("avx512_bf16") or _has_cpu_flag("amx_bf16"))
        except Exception:
            return False
    return False


def _has_cpu_flag(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return flag in f.read()
    except OSError:
        return False


def amp_enabled(device: torch.device | str, enabled: bool | str = "auto") -> bool:
    """Whether `autocast` runs bf16 on ``device``: ``enabled`` is "auto" (where the hardware is fast at it)
    or a strict boolean (lib.core.checks.parse_amp: "off" is off, "maybe" an error)."""
    device = torch.device(device)
    enabled = parse_amp(enabled)
    if enabled == "auto":
        enabled = bf16_supported(device)
    return bool(enabled) and device.type in ("cpu", "cuda")


def autocast(device: torch.device | str, enabled: bool | str = "auto"):
    """bf16 autocast context on ``device`` when `amp_enabled`, else a no-op context."""
    device = torch.device(device)
    if not amp_enabled(device, enabled):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def to_channels_last(model_or_tensor, enabled: bool = True):
    """A model or 4-d tensor in channels_last memory format (other tensors, and ``enabled=False``: unchanged)."""
    if not enabled:
        return model_or_tensor
    if isinstance(model_or_tensor, torch.Tensor):
        return (model_or_tensor.contiguous(memory_format=torch.channels_last) if model_or_tensor.ndim == 4
                else model_or_tensor)
    return model_or_tensor.to(memory_format=torch.channels_last)


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def base_seed(generator: torch.Generator | None = None, seed: int | None = None) -> int:
    """One integer seed taken from ``generator`` (advancing it) or ``seed`` (default 0)."""
    if generator is not None:
        return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return int(seed or 0)


def key_seed(*key) -> int:
    """One 63-bit seed for the integers ``key``: the same key gives the same seed in every process."""
    return hash(tuple(int(k) for k in key)) & (2**63 - 1)


def seeded_generator(*key, device="cpu") -> torch.Generator:
    """A generator on ``device`` seeded by the integers ``key`` (`key_seed`)."""
    g = torch.Generator(device=device)
    g.manual_seed(key_seed(*key))
    return g


def per_sample_noise(n: int, shape, seed: int, draws: int = 1, offset: int = 0,
                     dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise of shape (n, draws, *shape); sample i uses its own generator seeded with
    (seed, offset + i), so a sample's noise does not depend on batch size or position in a batch."""
    out = torch.empty((n, draws, *shape), dtype=dtype)
    g = torch.Generator()
    for i in range(n):
        g.manual_seed(key_seed(seed, offset + i))
        out[i] = torch.randn((draws, *shape), generator=g, dtype=dtype)
    return out


def num_threads_default() -> int:
    """OMP_NUM_THREADS if set, else the number of CPUs (1 if unknown)."""
    return int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1)


# Threads on a shared CPU. torch runs its parallel regions on OpenMP threads that spin-wait at each
# barrier; when another process holds one of the cores, every region waits for the descheduled thread.
# On this repository's 2-core machine, busy with other jobs (load ~4), a cpu32 forward pass took 3.8 s
# with a thread per core and the default spin-waiting vs 1.4 s with the choice below, both with one more
# busy process (`make bench`: contended_work_s*); `make figures` had slowed 2.5x that way. So the library
# takes as many threads as there are idle cores when it starts (from /proc/stat over 0.2 s), split among
# the processes of one torchrun launch, and the notebook runner starts kernels with passive OpenMP
# waiting, which bounds the loss when a neighbour appears later. LIB_THREADS=N overrides the choice.
def idle_cores(window_s: float = 0.2) -> float | None:
    """Cores left idle by every process over the next ``window_s`` (None where /proc/stat is missing)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v[:8])  # idle + iowait, total (without guest time, counted in user)
    try:
        i0, t0 = sample()
        time.sleep(window_s)
        i1, t1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return (os.cpu_count() or 1) * (i1 - i0) / max(1, t1 - t0)


def choose_threads(requested: int = 0) -> int:
    """CPU threads for torch: ``requested`` if > 0, else LIB_THREADS if set (an integer), else the idle
    cores (at least 1, at most OMP_NUM_THREADS or the core count) divided among this launch's processes."""
    if int(requested) > 0:
        return int(requested)
    env = os.environ.get("LIB_THREADS", "").strip()
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ValueError(f"LIB_THREADS: expected a positive integer, got {env!r}") from None
        if n < 1:
            raise ValueError(f"LIB_THREADS: expected a positive integer, got {env!r}")
        return n
    cap = num_threads_default()
    idle = idle_cores()
    if idle is None:
        return cap
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(cap, int(idle + 0.5) // max(1, local)))


def apply_threads(requested: int = 0) -> int:
    """torch.set_num_threads(choose_threads(requested)); returns the number."""
    n = choose_threads(requested)
    torch.set_num_threads(n)
    return n


PASSIVE_WAIT = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}  # GNU and Intel OpenMP: sleep, don't spin


def kernel_thread_env() -> dict[str, str]:
    """Environment for child processes (notebook kernels): passive OpenMP waiting (GNU and Intel runtimes),
    unless the user set these variables."""
    return {k: v for k, v in PASSIVE_WAIT.items() if k not in os.environ}
