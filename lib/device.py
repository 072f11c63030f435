"""Device choice, autocast, channels_last, seeding and per-sample generators."""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch


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
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        # bf16 autocast works everywhere on CPU but is only fast with AVX512-BF16/AMX units.
        try:
            return bool(torch.backends.cpu.get_cpu_capability() in ("AVX512", "AMX")) or _has_cpu_flag("avx512_bf16") or _has_cpu_flag("amx_bf16")
        except Exception:
            return False
    return False


def _has_cpu_flag(flag: str) -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return flag in f.read()
    except OSError:
        return False


def autocast(device: torch.device | str, enabled: bool | str = "auto"):
    """bf16 autocast context on ``device``; ``enabled='auto'`` uses it where the hardware is fast at it."""
    device = torch.device(device)
    if enabled == "auto":
        enabled = bf16_supported(device)
    if not enabled or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def to_channels_last(model_or_tensor, enabled: bool = True):
    if not enabled:
        return model_or_tensor
    if isinstance(model_or_tensor, torch.Tensor):
        return model_or_tensor.contiguous(memory_format=torch.channels_last) if model_or_tensor.ndim == 4 else model_or_tensor
    return model_or_tensor.to(memory_format=torch.channels_last)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


def base_seed(generator: torch.Generator | None = None, seed: int | None = None) -> int:
    """One integer seed taken from ``generator`` (advancing it) or ``seed`` (default 0)."""
    if generator is not None:
        return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())
    return int(seed or 0)


def per_sample_noise(n: int, shape, seed: int, draws: int = 1, offset: int = 0,
                     dtype=torch.float32) -> torch.Tensor:
    """Gaussian noise of shape (n, draws, *shape); sample i uses its own generator seeded with
    (seed, offset + i), so a sample's noise does not depend on batch size or position in a batch."""
    out = torch.empty((n, draws, *shape), dtype=dtype)
    g = torch.Generator()
    for i in range(n):
        g.manual_seed(hash((int(seed), int(offset + i))) & (2**63 - 1))
        out[i] = torch.randn((draws, *shape), generator=g, dtype=dtype)
    return out


def num_threads_default() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
