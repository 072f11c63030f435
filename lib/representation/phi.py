"""phi: noise-averaged spatial means of block activations (docs/method.md section 4).

    phi(x, sigma) = E_z[ mean over positions of a_block(x + sigma z) ]

estimated with ``n_noise`` draws (one at sigma = 0), batched over images x draws, stopping the forward
pass after the deepest requested block.

`noise_averaged` is the one images x noise-draws loop of the repository: `phi` (the notebooks and the
measures), `lib.measure.readout` (its grid also needs the denoiser's output) and `lib.representation.extract`
(whole datasets, several sigmas per pass, uint8 rows) all call it; `tests/test_layers.py` fails on a second
one. The noise of image i comes from its own generator (`lib.core.device.per_sample_noise` seeded by
(seed, i)), so results do not depend on the batch size, the chunking or the sharding.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lib.core.checks import check_images, check_sigma
from lib.core.device import amp_enabled, autocast, base_seed, per_sample_noise, to_channels_last
from lib.core.hashing import digest, weights_sha256
from lib.core.memo import memo_arrays
from lib.core.profile import stage
from lib.model import compiled as compiled_blocks  # parameters named `compiled` are flags
from lib.model.compiled import use_compiled
from lib.model.hooks import BlockRecorder, resolve_blocks

MEMO_FROM = 256  # images: from here up, phi is worth a cache entry (lib.core.memo)


def _model_device(model):
    return next(model.parameters()).device


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


@dataclass
class NoiseAveraged:
    """`noise_averaged`'s result at one sigma."""

    outputs: dict[str, torch.Tensor]              # block -> (N, C): mean over positions and draws of its output
    inputs: dict[str, torch.Tensor] | None = None  # the same for each block's input (inputs=True)
    denoised: torch.Tensor | None = None          # (N, C*H*W): D(x + sigma z) of the first draw (output=True)


def _batch(images, start: int, stop: int, dev) -> torch.Tensor:
    """Rows start..stop as float32 in [0, 1] on ``dev``: a float tensor's rows, or uint8 rows (a memmap) / 255."""
    if isinstance(images, np.ndarray):
        return torch.from_numpy(np.array(images[start:stop])).to(dev).float().div_(255.0)  # copy: memmaps are read-only
    return images[start:stop].to(dev, torch.float32)


def _noise(pool, b: int, shape, seed: int, draws: int, offset: int, parts: int) -> list:
    """Per-image noise for images offset..offset+b: futures split across ``pool``, or one tensor without a pool."""
    if pool is None:
        return [per_sample_noise(b, shape, seed, draws=draws, offset=offset)]
    step = max(1, -(-b // parts))
    return [pool.submit(per_sample_noise, min(step, b - s), shape, seed, draws, offset + s) for s in range(0, b, step)]


def noise_averaged(model, images, sigmas, n_noise: int, blocks, seed: int, batch_size: int = 256,
                   amp: bool | str = False, grad: bool = False, inputs: bool = False, output: bool = False,
                   offset: int = 0, pool=None, noise_parts: int = 1, channels_last: bool = False,
                   progress: bool = False, compiled: bool | None = None) -> list[NoiseAveraged]:
    """The images x noise-draws loop: for each batch of images and each sigma of ``sigmas``, the block means
    of the noisy copies x + sigma z_k (k < n_noise; one clean copy at sigma = 0) averaged over the draws.

    images: a float (N, C, H, W) tensor in [0, 1], or a uint8 ndarray (a memmap of a dataset) converted batch
    by batch. Image i's noise is ``per_sample_noise`` seeded by (seed, offset + i), drawn once per batch and
    reused at every sigma. Batches hold ``batch_size`` // n_noise images (all of ``batch_size`` when every
    sigma is 0). grad: results on the model's device with their graph (no inference mode). output: the forward
    runs to the end and each result also holds D(y) of the first draw. pool (a ThreadPoolExecutor) draws the
    next batch's noise, split into ``noise_parts`` jobs, while the model runs. channels_last: on CUDA, the
    batch in that memory format. compiled: run the batches through the compiled blocks (`lib.model.compiled`);
    None decides by `compiled_extraction`. Validation is the caller's. Returns one `NoiseAveraged` per sigma,
    on the CPU unless grad."""
    dev = _model_device(model)
    names = resolve_blocks(model, blocks)
    n, shape = len(images), tuple(images.shape[1:])
    noisy = any(s > 0 for s in sigmas)
    per = max(1, int(batch_size) // int(n_noise)) if noisy else int(batch_size)
    fast = compiled_extraction(model, n, n_noise, sigmas, grad) if compiled is None else bool(compiled) and not grad
    amp = extraction_amp(amp, fast)
    starts = list(range(0, n, per))
    acc = [{"outputs": {k: [] for k in names}, "inputs": {k: [] for k in names}, "denoised": []} for _ in sigmas]
    it = starts
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(starts, desc=f"phi sigma={sigmas[0]:.3g}" if len(sigmas) == 1 else "phi", leave=False)
    nxt = _noise(pool, min(per, n), shape, seed, n_noise, offset, noise_parts) if noisy and n else None
    with torch.enable_grad() if grad else torch.inference_mode():
        for j, s0 in enumerate(it):
            b = min(per, n - s0)
            z = None
            if noisy:
                z = torch.cat([f if pool is None else f.result() for f in nxt])
                if j + 1 < len(starts):  # with a pool: the next batch's noise is drawn while the model runs
                    s1 = starts[j + 1]
                    nxt = _noise(pool, min(per, n - s1), shape, seed, n_noise, offset + s1, noise_parts)
                z = z.to(dev, non_blocking=True)
            x = _batch(images, s0, s0 + b, dev)
            for a, s in zip(acc, sigmas):
                draws = 1 if s == 0 else int(n_noise)
                y = x.unsqueeze(1).expand(b, draws, *shape)
                if s > 0:
                    y = y + s * z
                y = y.reshape(b * draws, *shape)
                if channels_last and dev.type == "cuda":
                    y = to_channels_last(y)
                with autocast(dev, amp):
                    if fast:
                        d, outs, ins = compiled_blocks.walk(model, y, names, inputs=inputs, full=output)
                        if output:
                            a["denoised"].append(d.float().reshape(b, draws, -1)[:, 0].cpu())
                    elif output:
                        with BlockRecorder(model, names, inputs=inputs) as rec:
                            d = model(y)
                        outs = {k: rec.outputs[k].float().mean(dim=(2, 3)) for k in names}
                        ins = {k: rec.inputs[k].float().mean(dim=(2, 3)) for k in names} if inputs else None
                        a["denoised"].append(d.float().reshape(b, draws, -1)[:, 0].cpu())
                    else:
                        res = block_means(model, y, names, grad=grad, inputs=inputs)
                        outs, ins = res if inputs else (res, None)
                for k in names:
                    v = outs[k].reshape(b, draws, -1).mean(1)
                    a["outputs"][k].append(v if grad else v.cpu())
                    if inputs:
                        a["inputs"][k].append(ins[k].reshape(b, draws, -1).mean(1).cpu())
    return [NoiseAveraged({k: torch.cat(v) for k, v in a["outputs"].items()},
                          {k: torch.cat(v) for k, v in a["inputs"].items()} if inputs else None,
                          torch.cat(a["denoised"]) if output else None) for a in acc]


def compiled_extraction(model, n: int, n_noise: int, sigmas, grad: bool = False) -> bool:
    """Whether `noise_averaged` runs this call through the compiled blocks (`lib.model.compiled`): never with
    grad, else by LIB_COMPILE and the image-draws of the call."""
    draws = max(1 if s == 0 else int(n_noise) for s in sigmas)
    return not grad and use_compiled(model, int(n) * draws)


def extraction_amp(amp, fast: bool):
    """The autocast setting an extraction runs with: ``amp`` as given, or, for a compiled one asked for float32
    (amp False), "auto" when `lib.model.compiled.COMPILED_BF16`: bf16 where the device is fast at it. Measured
    (docs/method.md): bf16 moves phi by 0.1% per image, 20x less than its own Monte Carlo error (another seed of
    its 4 noise draws: 2.3%), for 2.4x the image-draws per second on the 2-core machine."""
    if fast and compiled_blocks.COMPILED_BF16 and (amp is False or amp is None):
        return "auto"
    return amp


def phi(model, images: torch.Tensor, sigma: float = 0.0, n_noise: int = 20, blocks="mid",
        generator: torch.Generator | None = None, seed: int | None = None, batch_size: int = 256,
        grad: bool = False, amp: bool | str = False, inputs: bool = False, progress: bool = False,
        compiled: bool | None = None):
    """Noise-averaged spatial means of ``blocks`` for clean ``images`` (N, C, H, W) in [0, 1].

    blocks: one name ('mid', 'a4', ...) -> returns an (N, C_block) float32 tensor on the CPU (or on the
    model's device when grad=True); a list -> dict {block: tensor}. inputs=True also returns the
    means of each block's input, as a second dict keyed like the first.
    Noise of image i comes from its own generator (seed from ``generator`` or ``seed``), so results do
    not depend on ``batch_size``. The loop is `noise_averaged` (compiled: see there; a caller that makes many
    small calls may decide once for all of them, as `lib.measure.channels.noise_robustness` does).

    From MEMO_FROM images up (and without grad) the result is kept in the content-keyed cache
    (`lib.core.memo`: the weights, the image bytes, sigma, draws, blocks, seed, amp and device type are the
    key), so notebooks that ask for the same phi compute it once.
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
    seed = base_seed(generator, seed)
    if compiled is None:
        compiled = compiled_extraction(model, images.shape[0], n_noise, [sigma], grad)
    compiled = bool(compiled) and not grad

    def compute():
        with stage("extraction"):
            (r,) = noise_averaged(model, images, [sigma], int(n_noise), names, seed, int(batch_size),
                                  amp=amp, grad=grad, inputs=inputs, progress=progress, compiled=compiled)
        return r.outputs, (r.inputs if inputs else None)
    if grad or images.shape[0] < MEMO_FROM:
        outs, ins = compute()
    else:
        dev = _model_device(model)
        key = {"weights": weights_sha256(model), "images": digest(images), "sigma": sigma,
               "n_noise": int(n_noise) if sigma > 0 else 1, "blocks": list(names), "seed": int(seed),
               "amp": amp_enabled(dev, extraction_amp(amp, compiled)), "device": dev.type, "inputs": bool(inputs)}
        if compiled:
            key["kernels"] = "inductor"  # compiled kernels round differently (lib.model.compiled)

        def flat():
            o, i = compute()
            return {**{f"out/{k}": v.numpy() for k, v in o.items()},
                    **({f"in/{k}": v.numpy() for k, v in i.items()} if inputs else {})}
        got = memo_arrays("phi", key, flat)
        outs = {k: torch.from_numpy(got[f"out/{k}"]) for k in names}
        ins = {k: torch.from_numpy(got[f"in/{k}"]) for k in names} if inputs else None
    out = outs[names[0]] if single else outs
    if inputs:
        return out, (ins[names[0]] if single else ins)
    return out
