"""Denoising performance: held-out PSNR of input, denoiser and Gaussian-blur oracle across sigma.

The owner of "denoise in batches" (`denoise`) and "PSNR per sigma" (`psnr_table`, on noisy copies from
`noisy_copies`); `tests/test_layers.py` fails on a second PSNR-per-sigma loop elsewhere in ``lib/`` (the one
exception, ``lib.training.trainer.evaluate``, is named there with its reason)."""
from __future__ import annotations

import torch

from lib.core.checks import check_images
from lib.core.device import autocast
from lib.core.metrics import blur_oracle, psnr
from lib.data.datasets import load_dataset
from lib.model import compiled as compiled_blocks
from lib.model.compiled import use_compiled
from lib.model.hooks import ReplaceOutput

EVAL_SIGMAS = (0.05, 0.1, 0.2, 0.4, 0.8)


@torch.inference_mode()
def denoise(model, y: torch.Tensor, batch_size: int = 256, amp: bool | str = False,
            compiled: bool = False) -> torch.Tensor:
    """D(y) in batches, on the model's device; returns a float32 CPU tensor. compiled: through the compiled
    blocks (`lib.model.compiled`), for callers that denoise many images (`psnr_table` decides by its total)."""
    check_images(y, "y", channels=model.config.in_channels, multiple=model.config.downsampling, range01=False)
    if y.shape[0] == 0:
        raise ValueError("y: empty batch (0 images)")
    dev = next(model.parameters()).device
    outs = []
    for s in range(0, y.shape[0], batch_size):
        with autocast(dev, amp):
            yb = y[s:s + batch_size].to(dev)
            if compiled:
                outs.append(compiled_blocks.walk(model, yb, (), full=True)[0].float().cpu())
            else:
                outs.append(model(yb).float().cpu())
    return torch.cat(outs)


def noisy_copies(images: torch.Tensor, sigmas, seed: int):
    """(sigma, images + sigma z) for each sigma, z drawn in turn from one generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(int(seed))
    for s in sigmas:
        yield s, images + float(s) * torch.randn(images.shape, generator=g)


def psnr_table(model, images: torch.Tensor, sigmas=EVAL_SIGMAS, seed: int = 4321, amp=False) -> dict:
    """{str(sigma): {"input", "output", "blur_oracle", "blur_width"}} mean PSNR (dB) over ``images``."""
    table = {}
    fast = use_compiled(model, images.shape[0] * len(sigmas))
    for s, y in noisy_copies(images, sigmas, seed):
        out = denoise(model, y, amp=amp, compiled=fast).clamp(0, 1)
        ob, width = blur_oracle(y, images)
        table[str(s)] = {"input": round(psnr(y.clamp(0, 1), images).mean().item(), 2),
                         "output": round(psnr(out, images).mean().item(), 2),
                         "blur_oracle": round(ob, 2), "blur_width": width}
    return table


RELIANCE_SIGMAS = (0.2, 0.8)


def block_reliance(model, images: torch.Tensor, sigmas=RELIANCE_SIGMAS, block: str = "mid",
                   seed: int = 4321) -> dict:
    """How much the denoiser's output depends on one block's content, by ablation (PSNR in dB, mean over
    ``images``): {str(sigma): {"output", "swap_drop", "means_drop"}}.

    swap_drop: the loss when each image's ``block`` output is replaced by another image's (the next one in
    the batch, same noise level): about 0 when the decoder ignores what the block says about the image.
    means_drop: the loss when the block's output is replaced by its spatial means (phi, broadcast): small
    when the decoder reads only the block's global summary. Same noise draws for every variant."""
    if images.shape[0] < 2:
        raise ValueError(f"images: block_reliance swaps blocks between images, expected at least 2, "
                         f"got {images.shape[0]}")
    variants = {"swap_drop": lambda a: a.roll(1, 0),
                "means_drop": lambda a: a.mean((2, 3), keepdim=True).expand_as(a).contiguous()}
    n = images.shape[0]
    table = {}
    for s, y in noisy_copies(images, sigmas, seed):
        base = psnr(denoise(model, y, batch_size=n).clamp(0, 1), images).mean().item()
        row = {"output": round(base, 2)}
        for name, fn in variants.items():
            with ReplaceOutput(model, block, fn):
                ablated = psnr(denoise(model, y, batch_size=n).clamp(0, 1), images).mean().item()
            row[name] = round(base - ablated, 3)
        table[str(s)] = row
    return table


def reliance_by_block(model, images: torch.Tensor, sigmas=RELIANCE_SIGMAS, seed: int = 4321) -> dict:
    """`block_reliance` of every block (encoder, middle, decoder but the output block, in forward order):
    {block: {str(sigma): {...}}}. Says which scales of the UNet the output actually goes through."""
    blocks = [b for b in model.block_names if b != "dec1"]
    return {b: block_reliance(model, images, sigmas, b, seed) for b in blocks}


def reliance_markdown(tables: dict) -> str:
    """{name: reliance_by_block(...)} as one markdown table: the swap / means drops in dB per block and sigma."""
    blocks = list(next(iter(tables.values())))
    head = "| checkpoint | σ | PSNR (dB) | " + " | ".join(f"{b} swap / means" for b in blocks) + " |"
    lines = [head, "|" + "---|" * (3 + len(blocks))]
    for name, t in tables.items():
        for s in t[blocks[0]]:  # each checkpoint's own noise levels
            cells = " | ".join(f"{t[b][s]['swap_drop']:.3f} / {t[b][s]['means_drop']:.3f}" for b in blocks)
            lines.append(f"| {name} | {s} | {t[blocks[0]][s]['output']:.2f} | {cells} |")
    return "\n".join(lines) + "\n"


def held_out_psnr_table(model, dataset: str, size: int, n: int = 512, sigmas=EVAL_SIGMAS, seed: int = 0) -> dict:
    """`psnr_table` on ``n`` held-out (test-split) images of ``dataset`` at ``size``."""
    x = load_dataset(dataset, n=n, size=size, seed=seed, split="test").float()
    return psnr_table(model, x, sigmas)


def denoise_examples(model, images: torch.Tensor, sigmas, seed: int = 0):
    """Noisy inputs and outputs for each sigma: list of (sigma, noisy, denoised) tensors."""
    out = []
    for s, y in noisy_copies(images, sigmas, seed):
        out.append((s, y.clamp(0, 1), denoise(model, y).clamp(0, 1)))
    return out
