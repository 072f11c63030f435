"""Benchmark: self-guided reconstruction, the authors' "reference" backward preset vs our "fast" preset.

    python -m lib.bench_sampling [--checkpoint data/checkpoints/tux32] [--quick]

Both presets run on the same batch (T held-out targets x S samples each, same seed). Reported per preset:
nfe (network calls per batch, lib.sampling), wall time, mean phi relative error (phi at
lib.sampling.EVAL_SIGMA), mean PSNR to the target, mean final effective sigma (a no-reference quality
proxy: how much "noise" the denoiser still sees in a sample), and diversity = mean pairwise RMSE among
the S samples of one target. The forward form's reference cost is estimated, not run (see below).
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from . import sampling as S
from .checkpoint import checkpoint_file, load_model
from .data import load_dataset
from .metrics import psnr
from .representation import phi


def diversity(samples: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Mean pairwise RMSE among the samples of each target: (T,) for samples (T * n_samples, C, H, W)."""
    x = samples.reshape(-1, n_samples, *samples.shape[1:]).flatten(2)
    pairs = list(itertools.combinations(range(n_samples), 2))
    if not pairs:
        return torch.zeros(x.shape[0])
    return torch.stack([(x[:, i] - x[:, j]).pow(2).mean(1).sqrt() for i, j in pairs], 1).mean(1)


def ascent_steps(sigma0=1.0, sigma_L=0.05, h0=0.01, beta=0.01, adaptive_h=True) -> int:
    """Steps of the coarse-to-fine ascent if the effective sigma shrinks exactly by (1 - beta h_t)."""
    s, t = sigma0, 0
    while s >= sigma_L:
        t += 1
        h = h0 * t / (1 + h0 * (t - 1)) if adaptive_h else h0
        s *= 1 - beta * h
    return t


def phi_spread(model, images, sigma=S.EVAL_SIGMA, n_noise=10) -> float:
    """Mean distance of phi(x, sigma) to the mean phi over ``images``: the typical scale of phi differences
    between images (phi has a large common component, so ||phi|| alone makes every error look small)."""
    p = phi(model, images, sigma, n_noise=n_noise, seed=0)
    return (p - p.mean(0)).norm(dim=1).mean().item()


def summarize(r: S.SampleResult, targets: torch.Tensor, n_samples: int, model=None, spread=None) -> dict:
    """Mean metrics of a SampleResult whose samples are ``n_samples`` per target, target-major.
    With ``model`` and ``spread``: phi_err_rel_spread = ||phi(sample) - phi(target)|| / spread."""
    ref = targets.repeat_interleave(n_samples, 0)
    extra = {}
    if model is not None and spread:
        pt = phi(model, targets, S.EVAL_SIGMA, n_noise=10, seed=0).repeat_interleave(n_samples, 0)
        ps = phi(model, r.samples, S.EVAL_SIGMA, n_noise=10, seed=12345)
        extra["phi_err_rel_spread"] = round(((ps - pt).norm(dim=1) / spread).mean().item(), 4)
    return dict(nfe=r.nfe, wall_s=round(r.wall_s, 2), phi_rel_err=round(r.phi_rel_err.mean().item(), 4), **extra,
                psnr=round(psnr(r.samples, ref).mean().item(), 2),
                final_sigma=round(r.final_sigma.mean().item(), 4),
                diversity=round(diversity(r.samples, n_samples).mean().item(), 4),
                mean_proj_iters=round(r.info.get("mean_proj_iters", 0.0), 2), steps=r.steps)


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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="data/checkpoints/tux32")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--targets", type=int, default=2)
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--threads", type=int, default=0)
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    print(json.dumps(run(a.checkpoint, a.quick, a.targets, a.samples, progress=True), indent=2))


if __name__ == "__main__":
    main()
