"""phi: noise-averaged spatial means of block activations (docs/method.md section 4).

    phi(x, sigma) = E_z[ mean over positions of a_block(x + sigma z) ]

estimated with ``n_noise`` draws (one at sigma = 0), batched over images x draws, stopping the forward
pass after the deepest requested block.
"""
from __future__ import annotations

import torch

from lib.core.device import autocast, base_seed, per_sample_noise
from lib.model.hooks import BlockRecorder, resolve_blocks
from lib.model.unet import check_images


def _model_device(model):
    return next(model.parameters()).device


# Images are in [0, 1] and the networks are trained with sigma up to sigma_max = 1 (the samplers start at
# most at 3, as some of the authors' figures do): a larger sigma is a units mistake (25 in 0-255 units is
# 25/255 = 0.098 here) or garbage, and is refused rather than silently giving meaningless numbers.
SIGMA_LIMIT = 3.0


def check_sigma(sigma, name="sigma") -> float:
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number >= 0, got {sigma!r}") from None
    if not (s >= 0) or s != s or s == float("inf"):
        raise ValueError(f"{name}: expected a finite number >= 0, got {sigma!r}")
    if s > SIGMA_LIMIT:
        raise ValueError(f"{name}: {sigma!r} is far above the trained range (images are in [0, 1], at most "
                         f"{SIGMA_LIMIT:g}); in 0-255 units divide by 255 (e.g. 25 -> {25 / 255:.3f})")
    return s


def block_means(model, y: torch.Tensor, blocks, grad: bool = False, inputs: bool = False):
    """Spatial means of the requested blocks' outputs (and inputs) for a noisy batch ``y``.

    Returns {block: (N, C)} (and, with inputs=True, a second dict for the block inputs)."""
    names = resolve_blocks(model, blocks)
    with BlockRecorder(model, names, grad=grad, stop=True, inputs=inputs) as rec:
        model(y)
    outs = {n: rec.outputs[n].float().mean(dim=(2, 3)) for n in names}
    if inputs:
        return outs, {n: rec.inputs[n].float().mean(dim=(2, 3)) for n in names}
    return outs


def phi(model, images: torch.Tensor, sigma: float = 0.0, n_noise: int = 20, blocks="mid",
        generator: torch.Generator | None = None, seed: int | None = None, batch_size: int = 256,
        grad: bool = False, amp: bool | str = False, inputs: bool = False, progress: bool = False):
    """Noise-averaged spatial means of ``blocks`` for clean ``images`` (N, C, H, W) in [0, 1].

    blocks: one name ('mid', 'a4', ...) -> returns an (N, C_block) float32 tensor on the CPU (or on the
    model's device when grad=True); a list -> dict {block: tensor}. inputs=True also returns the
    means of each block's input, as a second dict keyed like the first.
    Noise of image i comes from its own generator (seed from ``generator`` or ``seed``), so results do
    not depend on ``batch_size``.
    """
    single = isinstance(blocks, str)
    names = resolve_blocks(model, blocks)
    check_images(images, "images", channels=model.config.in_channels, multiple=model.config.downsampling)
    sigma = check_sigma(sigma)
    if int(n_noise) < 1:
        raise ValueError(f"n_noise: expected an integer >= 1, got {n_noise!r}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: expected an integer >= 1, got {batch_size!r}")
    if images.shape[0] == 0:
        raise ValueError("images: empty batch (0 images); phi needs at least one image")
    draws = 1 if sigma == 0 else int(n_noise)
    dev = _model_device(model)
    s0 = base_seed(generator, seed)
    n = images.shape[0]
    imgs_per_batch = max(1, int(batch_size) // draws)
    acc = {k: [] for k in names}
    acc_in = {k: [] for k in names}
    it = range(0, n, imgs_per_batch)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc=f"phi sigma={sigma:.3g}", leave=False)
    ctx = torch.enable_grad() if grad else torch.inference_mode()
    with ctx:
        for start in it:
            x = images[start:start + imgs_per_batch].to(dev, torch.float32)
            b = x.shape[0]
            y = x.unsqueeze(1).expand(b, draws, *x.shape[1:])
            if sigma > 0:
                z = per_sample_noise(b, x.shape[1:], s0, draws=draws, offset=start).to(dev)
                y = y + sigma * z
            y = y.reshape(b * draws, *x.shape[1:])
            with autocast(dev, amp):
                res = block_means(model, y, names, grad=grad, inputs=inputs)
            outs, ins = res if inputs else (res, None)
            for k in names:
                v = outs[k].reshape(b, draws, -1).mean(1)
                acc[k].append(v if grad else v.cpu())
                if inputs:
                    acc_in[k].append(ins[k].reshape(b, draws, -1).mean(1).cpu())
    out = {k: torch.cat(v) for k, v in acc.items()}
    if single:
        out = out[names[0]]
    if inputs:
        ins = {k: torch.cat(v) for k, v in acc_in.items()}
        return out, (ins[names[0]] if single else ins)
    return out


@torch.inference_mode()
def denoise(model, y: torch.Tensor, batch_size: int = 256, amp: bool | str = False) -> torch.Tensor:
    """D(y) in batches, on the model's device; returns a float32 CPU tensor."""
    check_images(y, "y", channels=model.config.in_channels, multiple=model.config.downsampling, range01=False)
    if y.shape[0] == 0:
        raise ValueError("y: empty batch (0 images)")
    dev = _model_device(model)
    outs = []
    for s in range(0, y.shape[0], batch_size):
        with autocast(dev, amp):
            outs.append(model(y[s:s + batch_size].to(dev)).float().cpu())
    return torch.cat(outs)
