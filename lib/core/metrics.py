"""Image quality: PSNR and the Gaussian-blur oracle baseline."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for images in [0, 1] (peak 1)."""
    if x.shape != ref.shape:
        raise ValueError(f"psnr: shapes differ: {tuple(x.shape)} vs {tuple(ref.shape)}")
    mse = (x.float() - ref.float()).pow(2).flatten(1).mean(1).clamp_min(1e-12)
    return -10 * torch.log10(mse)


def gaussian_blur(x: torch.Tensor, width: float) -> torch.Tensor:
    """Separable Gaussian blur with std ``width`` pixels (reflect padding); width 0 is the identity."""
    if width <= 0:
        return x
    r = max(1, int(math.ceil(3 * width)))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / width) ** 2)
    k = (k / k.sum()).to(x.dtype)
    C = x.shape[1]
    pad = min(r, x.shape[-1] - 1)
    if pad < r:  # image smaller than kernel: zero-extend via replicate then crop kernel
        k = k[r - pad: r + pad + 1]
        k = k / k.sum()
        r = pad
    y = F.pad(x, (r, r, 0, 0), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(C, 1, 1, -1), groups=C)
    y = F.pad(y, (0, 0, r, r), mode="reflect")
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


BLUR_WIDTHS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.4, 2.8, 3.3, 4.0, 5.0)


def blur_oracle(noisy: torch.Tensor, clean: torch.Tensor, widths=BLUR_WIDTHS) -> tuple[float, float]:
    """Best mean PSNR of a Gaussian blur of ``noisy`` over ``widths`` (one width for the whole set,
    chosen knowing ``clean``): returns (psnr, width)."""
    best = (-float("inf"), 0.0)
    for w in widths:
        p = psnr(gaussian_blur(noisy, w).clamp(0, 1), clean).mean().item()
        if p > best[0]:
            best = (p, w)
    return best
