"""Benchmark: self-guided reconstruction, the authors' "reference" backward preset vs our "fast" preset.

    python -m scripts.bench_sampler [--checkpoint data/checkpoints/tux32] [--quick]

Both presets run on the same batch (T held-out targets x S samples each, same seed). Reported per preset:
nfe (network calls per batch, lib.sampling.samplers), wall time, mean phi relative error (phi at
lib.sampling.samplers.EVAL_SIGMA), mean PSNR to the target, mean final effective sigma (a no-reference quality
proxy: how much "noise" the denoiser still sees in a sample), and diversity = mean pairwise RMSE among
the S samples of one target. The forward form's reference cost is estimated, not run (see below).
"""
from __future__ import annotations

from pathlib import Path

import torch

from lib.data.datasets import load_dataset
from lib.model.checkpoint import checkpoint_file, load_model
from lib.sampling import samplers as S
from lib.sampling.quality import ascent_steps, phi_spread, summarize


def resolve_checkpoint(checkpoint: str) -> str:
    """The shipped checkpoint, or the training run's snapshot while it is not shipped yet."""
    if checkpoint_file(checkpoint, ".safetensors").is_file():
        return checkpoint
    return "runs/tux32/model"


def run(checkpoint="data/checkpoints/tux32", quick=False, n_targets=2, n_samples=2, seed=0,
        progress=False) -> dict:
    model = load_model(resolve_checkpoint(checkpoint))
    if quick:
        n_targets, n_samples = 1, 2
    size = model.config.image_size
    data = load_dataset("tuxphoto", 64, size=size, split="test")
    targets = data.float()[torch.linspace(0, 63, n_targets).long()]
    mean = data.float().mean((0, 2, 3))
    over = dict(schedule=[1.0, 0.3, 0.1, 0.03], proj_iters=5) if quick else {}
    out = {"sampler_batch": f"{n_targets} targets x {n_samples} samples, {size}x{size}, "
                            f"{Path(resolve_checkpoint(checkpoint)).name}, seed {seed}"}
    spread = phi_spread(model, data.float())
    ref_iters = None
    for name in ("reference", "fast"):
        kw = over if name == "reference" else ({"schedule": over["schedule"]} if quick else {})
        r = S.self_guided(model, targets, n_samples, preset=name, form="backward", mean=mean,
                          generator=torch.Generator().manual_seed(seed), progress=progress, **kw)
        for k, v in summarize(r, targets, n_samples, model, spread).items():
            out[f"sampler_{name}_{k}"] = v
        if name == "reference":
            ref_iters = r.info["mean_proj_iters"]
    # Forward form, reference settings: steps of the ascent from sigma0 to sigma_L, each with a projection
    # costing 1 + 2 x (mean Adam iterations measured above) calls and one score forward.
    fwd = S.PRESETS[("forward", "reference")]
    steps = ascent_steps(fwd["sigma0"], fwd["sigma_L"], fwd["h0"], fwd["beta"])
    out["sampler_forward_reference_steps_estimate"] = steps
    out["sampler_forward_reference_nfe_estimate"] = int(steps * (2 + 2 * ref_iters) + 1)
    out["sampler_nfe_ratio"] = round(out["sampler_reference_nfe"] / out["sampler_fast_nfe"], 1)
    out["sampler_wall_ratio"] = round(out["sampler_reference_wall_s"] / max(out["sampler_fast_wall_s"], 1e-9), 1)
    return out
