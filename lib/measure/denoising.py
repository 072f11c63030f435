"""Denoising performance: held-out PSNR of input, denoiser and Gaussian-blur oracle across sigma."""
from __future__ import annotations

import torch

from lib.core.metrics import blur_oracle, psnr
from lib.data.datasets import load_dataset
from lib.representation.phi import denoise


EVAL_SIGMAS = (0.05, 0.1, 0.2, 0.4, 0.8)


def psnr_table(model, images: torch.Tensor, sigmas=EVAL_SIGMAS, seed: int = 4321, amp=False) -> dict:
    """{str(sigma): {"input", "output", "blur_oracle", "blur_width"}} mean PSNR (dB) over ``images``."""
    g = torch.Generator().manual_seed(int(seed))
    table = {}
    for s in sigmas:
        y = images + float(s) * torch.randn(images.shape, generator=g)
        out = denoise(model, y, amp=amp).clamp(0, 1)
        ob, width = blur_oracle(y, images)
        table[str(s)] = {"input": round(psnr(y.clamp(0, 1), images).mean().item(), 2),
                         "output": round(psnr(out, images).mean().item(), 2),
                         "blur_oracle": round(ob, 2), "blur_width": width}
    return table


def held_out_psnr_table(model, dataset: str, size: int, n: int = 512, sigmas=EVAL_SIGMAS, seed: int = 0) -> dict:
    x = load_dataset(dataset, n=n, size=size, seed=seed, split="test").float()
    return psnr_table(model, x, sigmas)


def denoise_examples(model, images: torch.Tensor, sigmas, seed: int = 0):
    """Noisy inputs and outputs for each sigma: list of (sigma, noisy, denoised) tensors."""
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for s in sigmas:
        y = images + float(s) * torch.randn(images.shape, generator=g)
        out.append((s, y.clamp(0, 1), denoise(model, y).clamp(0, 1)))
    return out
