"""What a batch of self-guided samples achieved: phi error, PSNR to the target, final effective sigma,
diversity among the samples of one target, cost; shared by the sampler benchmark and notebook 03."""
from __future__ import annotations

import itertools

import torch

from lib.core.metrics import psnr
from lib.core.profile import timed
from lib.sampling import samplers as S


def diversity(samples: torch.Tensor, n_samples: int) -> torch.Tensor:
    """Mean pairwise RMSE among the samples of each target: (T,) for samples (T * n_samples, C, H, W)."""
    x = samples.reshape(-1, n_samples, *samples.shape[1:]).flatten(2)
    pairs = list(itertools.combinations(range(n_samples), 2))
    if not pairs:
        return torch.zeros(x.shape[0])
    return torch.stack([(x[:, i] - x[:, j]).pow(2).mean(1).sqrt() for i, j in pairs], 1).mean(1)


def ascent_steps(schedule: S.AscentSchedule) -> int:
    """Steps of the coarse-to-fine ascent along ``schedule`` if the effective sigma shrinks exactly by
    (1 - beta h_t) (max_steps ignored)."""
    s, t, h0 = schedule.sigma0, 0, schedule.h0
    while s >= schedule.sigma_L:
        t += 1
        h = h0 * t / (1 + h0 * (t - 1)) if schedule.adaptive_h else h0
        s *= 1 - schedule.beta * h
    return t


@timed("sampling")
def phi_spread(model, images, sigma=S.PHI_ERROR_SIGMA, n_noise=10) -> float:
    """Mean distance of phi(x, sigma) to the mean phi over ``images``: the typical scale of phi differences
    between images (phi has a large common component, so ||phi|| alone makes every error look small)."""
    p = S.targets_phi(model, images, n_noise, sigma=sigma)
    return (p - p.mean(0)).norm(dim=1).mean().item()


@timed("sampling")
def summarize(r: S.SampleResult, targets: torch.Tensor, n_samples: int, model=None, spread=None,
              digits: bool = True) -> dict:
    """Mean metrics of a SampleResult whose samples are ``n_samples`` per target, target-major.
    With ``model`` and ``spread``: phi_err_rel_spread = ||phi(sample) - phi(target)|| / spread.
    ``digits``: rounded as the benchmark prints them; False: full precision (notebook 03's table)."""
    ref = targets.repeat_interleave(n_samples, 0)
    extra = {}
    if model is not None and spread:
        pt = S.targets_phi(model, targets, 10).repeat_interleave(n_samples, 0)
        extra["phi_err_rel_spread"] = (S.phi_error(model, r.samples, pt, 10, relative=False) / spread).mean().item()
    out = dict(nfe=r.nfe, wall_s=r.wall_s, phi_rel_err=r.phi_rel_err.mean().item(), **extra,
               psnr=psnr(r.samples, ref).mean().item(), final_sigma=r.final_sigma.mean().item(),
               diversity=diversity(r.samples, n_samples).mean().item(),
               mean_proj_iters=r.info.get("mean_proj_iters", 0.0), steps=r.steps)
    if digits:
        places = dict(wall_s=2, phi_rel_err=4, phi_err_rel_spread=4, psnr=2, final_sigma=4, diversity=4,
                      mean_proj_iters=2)
        out = {k: round(v, places[k]) if k in places else v for k, v in out.items()}
    return out


@timed("sampling")
def dropped_share(model, samples: torch.Tensor, targets: torch.Tensor, n_samples: int, mask,
                  sigma=S.PHI_ERROR_SIGMA, n_noise=4) -> float:
    """How far a subspace projection drove the channels its 0/1 ``mask`` (C,) drops toward zero: the
    samples' phi summed over the dropped channels, over the same sum for their targets (1: as on the
    targets, 0: switched off). phi is non-negative (the block ends in a ReLU), so sums do not cancel."""
    drop = torch.as_tensor(mask).reshape(-1) == 0
    if not drop.any():
        return float("nan")
    pt = S.targets_phi(model, targets, n_noise, sigma=sigma).repeat_interleave(n_samples, 0)
    ps = S.samples_phi(model, samples, n_noise, sigma=sigma)
    return float(ps[:, drop].sum() / pt[:, drop].sum().clamp_min(1e-12))
