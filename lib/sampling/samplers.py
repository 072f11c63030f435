"""Samplers that use the blind denoiser D as a score (docs/method.md section 6), k-diffusion style.

Every sampler has one signature style and returns a `SampleResult`:

    sampler(model, <inputs>, <settings...>, generator=None, callback=None, progress=True) -> SampleResult

- `sample_unconditional` unconditional stochastic coarse-to-fine gradient ascent (Kadkhodaie & Simoncelli 2021)
- `guided_ascent`     self-guided reconstruction, "forward" form: ascent with a phi projection before each step
- `guided_backward`   self-guided reconstruction, "backward" form: fixed sigma schedule, renoise-project-denoise
- `self_guided`       either form with a named preset: "reference" (the authors' settings) or "fast" (ours)
- `Tracker`           a callback measuring phi error and PSNR of the running estimate against nfe

A phi target is anything `make_target` accepts: clean target images (phi(x_c, sigma) computed on demand
on a log-spaced sigma grid with ``n_noise`` draws, cached, and interpolated in log sigma), a (T, C) or
(C,) phi vector (used at every sigma: an approximation, since phi(x_c, sigma) changes with sigma), or a
callable sigma -> (T, C). `centroid_target`, `topk_mask` build the figure variants. A 0/1 channel ``mask``
restricts the guidance to a subspace; ``masked="zero"`` (default, the authors' way) drives the dropped
channels' block means to zero, ``masked="free"`` leaves them out of the loss (`apply_mask`). Targets, masks and the
projection live in `lib.sampling.guidance` and are re-exported here.

Costs: ``nfe`` counts network calls per batch: a full forward, a forward stopped after the block, and a
backward pass each count 1. Computing the target phi (``info["target_nfe"]``) and the final measurements
(``phi_rel_err``, ``final_sigma``) are not included. Units: images and sigma in [0, 1] (docs/method.md 7).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch

from lib.core.device import autocast, base_seed, per_sample_noise
from lib.core.metrics import psnr
from lib.representation.phi import check_sigma, phi as phi_of
from lib.sampling.guidance import (CallableTarget, ConstantTarget, ImageTarget, MASK_MODES, MaskedTarget, PhiTarget,  # noqa: F401
                       apply_mask, check_block, expand_mask, block_channels, centroid_target, make_target, project, project_averaged, topk_mask)
from lib.sampling.schedules import geometric_sigmas, linear_sigmas


EVAL_SIGMA = 0.02  # phi_rel_err is measured at this sigma (small: ~clean image, inside the training range)


@dataclass
class SampleResult:
    samples: torch.Tensor          # (N, C, H, W) in [0, 1] (clamped: info["outside_01"]), CPU; targets x samples
    nfe: int                       # network evaluations (forwards and backwards, per batch call)
    sigmas: torch.Tensor           # (steps, N) effective sigma ||y - D(y)|| / sqrt(dim) per step and image
    final_sigma: torch.Tensor      # (N,) effective sigma of the returned sample: ||x - D(x)|| / sqrt(dim)
    phi_rel_err: torch.Tensor | None  # (N,) ||phi(x, EVAL_SIGMA) - target|| / ||target|| (loss channels)
    steps: int
    wall_s: float                  # sampling time incl. computing the target phi, excl. final measurements
    info: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------- helpers
def _denoise(model, y, amp):
    with torch.no_grad(), autocast(y.device, amp):
        return model(y).float()


def _eff_sigma(y, d):
    return (y - d).flatten(1).norm(dim=1) / math.sqrt(y[0].numel())


def _noise(n, shape, seed, step, device):
    return per_sample_noise(n, shape, (seed * 1_000_003 + step) % 2**62).squeeze(1).to(device)


def _start(n, shape, mean, device):
    mu = torch.full((shape[0],), 0.5) if mean is None else torch.as_tensor(mean).float().reshape(-1)
    if mu.numel() == 1:
        mu = mu.expand(shape[0])
    if mu.numel() != shape[0]:
        raise ValueError(f"mean: expected a number or {shape[0]} channel means, got {mu.numel()} values")
    return mu.view(1, -1, 1, 1).expand(n, *shape).clone().to(device)


def _check_finite(y, step, sigma):
    if not torch.isfinite(y).all():
        raise FloatingPointError(f"sampler diverged at step {step} (sigma {float(sigma.max()):.4g}): NaN/inf in y")


def _finish(model, x, nfe, sigmas, steps, t0, target=None, mask=None, block="mid", n_noise=10, info=None, amp=False):
    """Clamp, measure final_sigma and phi_rel_err (not counted in nfe), pack a SampleResult.
    ``info["outside_01"]``: the share of pixel values outside [0, 1] before this clamp (the only one)."""
    wall = time.perf_counter() - t0
    outside = float(((x < 0) | (x > 1)).float().mean())
    x = x.clamp(0, 1)
    final = _eff_sigma(x, _denoise(model, x, amp)).cpu()
    err = None
    if target is not None:
        S = x.shape[0] // target.n
        t = target(EVAL_SIGMA).repeat_interleave(S, 0) * mask
        p = phi_of(model, x, EVAL_SIGMA, n_noise=n_noise, blocks=block, seed=12345, amp=amp) * mask
        err = (p - t).norm(dim=1) / t.norm(dim=1).clamp_min(1e-12)
    info = dict(info or {}, target_nfe=getattr(target, "nfe", 0), target_s=getattr(target, "seconds", 0.0),
                outside_01=outside)
    sig = torch.stack(sigmas) if sigmas else torch.zeros(0, x.shape[0])
    return SampleResult(x.cpu(), int(nfe), sig, final, err, int(steps), wall, info)


def _setup(model, target, n_samples, block, n_noise, mask, seed_t, amp, masked="zero"):
    block = check_block(model, block)
    if not (isinstance(n_samples, int) and n_samples >= 1):
        raise ValueError(f"n_samples: expected an integer >= 1, got {n_samples!r}")
    tgt, m = apply_mask(make_target(model, target, block, n_noise, seed_t, amp), mask, masked)
    return block, tgt, m.repeat_interleave(n_samples, 0)


def _shape(model, target, shape):
    if shape is not None:
        return tuple(shape)
    if getattr(target, "shape", None):  # an ImageTarget, or a MaskedTarget around one
        return tuple(target.shape)
    s = model.config.image_size
    return (model.config.in_channels, s, s)


def _check_sigmas(sigma0, sigma_L):
    check_sigma(sigma0, "sigma0")
    if not (sigma_L > 0):
        raise ValueError(f"sigma_L: expected > 0, got {sigma_L!r}")
    if not (sigma0 > sigma_L):
        raise ValueError(f"sigma0: expected sigma0 > sigma_L, got sigma0={sigma0!r}, sigma_L={sigma_L!r}")


def _per_step(v, n, name):
    """A float, or a sequence of n positive floats -> list of n floats."""
    vals = [float(v)] * n if isinstance(v, (int, float)) else [float(a) for a in v]
    if len(vals) != n or not all(math.isfinite(a) and a > 0 for a in vals):
        raise ValueError(f"{name}: expected a number > 0 or one per schedule step, got {v!r}")
    return vals


def _bar(progress, total, desc):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


def _polish(model, x, tgt, n_samples, m_dev, sigma, seed, base, iters, draws, lr, block, amp):
    """Ours: `project_averaged` moves the returned images so that phi(x, sigma), averaged over ``draws``
    fresh noise draws (seeded per image from ``base`` on), matches the target. Returns (x, nfe)."""
    if not (isinstance(draws, int) and draws >= 1 and lr > 0):
        raise ValueError(f"polish_draws, polish_lr: expected an integer >= 1 and a number > 0, got {draws!r}, {lr!r}")
    N, shape, dev = x.shape[0], tuple(x.shape[1:]), x.device

    def noise(j):  # the draws of polish step j
        return torch.stack([_noise(N, shape, seed, base + j * draws + i, dev) for i in range(draws)])
    tv = tgt(sigma).repeat_interleave(n_samples, 0).to(dev)
    x, c, _ = project_averaged(model, x, tv, m_dev, sigma, noise, int(iters), lr, block, amp)
    _check_finite(x, base, torch.tensor(sigma))
    return x, c


# -------------------------------------------------------------------------------------- samplers
def _ascent(model, n=8, shape=None, mean=None, sigma0=1.0, sigma_L=0.01, h0=0.01, beta=0.01,
           adaptive_h=True, max_steps=10000, generator=None, callback=None, progress=True, amp=False,
           _guide=None):
    """Stochastic coarse-to-fine gradient ascent (Kadkhodaie & Simoncelli 2021; docs/method.md 6).

    y <- mean + sigma0 z; each step: h_t = h0 t / (1 + h0 (t - 1)) (or h0 if not adaptive_h),
    f = y - D(y), sigma_t = ||f|| / sqrt(dim), gamma = sigma_t sqrt((1 - beta h)^2 - (1 - h)^2),
    y <- y - h f + gamma z. An image stops (and leaves the batch) once sigma_t < sigma_L; returns D(y).
    One full forward per step. Internal: returns (x, nfe, sigmas, steps, t0); see `sample_unconditional`."""
    _check_sigmas(sigma0, sigma_L)
    if not (0 < h0 <= 1 and 0 < beta <= 1):
        raise ValueError(f"h0, beta: expected in (0, 1], got h0={h0!r}, beta={beta!r}")
    shape = shape or (model.config.in_channels, model.config.image_size, model.config.image_size)
    dev, t0 = next(model.parameters()).device, time.perf_counter()
    seed = base_seed(generator)
    y = _start(n, shape, mean, dev) + sigma0 * _noise(n, shape, seed, 0, dev)
    out = torch.empty_like(y)
    active = torch.arange(n, device=dev)
    last = torch.full((n,), float(sigma0))
    sigmas, nfe, t = [], 0, 0
    bar = _bar(progress, None, "ascent")
    while active.numel() and t < max_steps:
        t += 1
        h = h0 * t / (1 + h0 * (t - 1)) if adaptive_h else h0
        ya = y[active]
        if _guide is not None:  # forward-form projection before the score step (guided_ascent)
            ya, k = _guide(ya, active, last[active.cpu()].to(dev))
            nfe += k
        d = _denoise(model, ya, amp)
        nfe += 1
        s = _eff_sigma(ya, d)
        last[active.cpu()] = s.cpu()
        sigmas.append(last.clone())
        if callback is not None:
            callback(dict(step=t, y=ya, sigma=s, x0=d, active=active, nfe=nfe))
        stop = s < sigma_L
        out[active[stop]] = d[stop]
        gamma = s * math.sqrt(max((1 - beta * h) ** 2 - (1 - h) ** 2, 0.0))
        z = _noise(n, shape, seed, t, dev)[active]
        ya = ya - h * (ya - d) + gamma.view(-1, 1, 1, 1) * z
        _check_finite(ya, t, s)
        y[active] = ya
        active = active[~stop]
        bar.update(1)
        bar.set_postfix(sigma=float(s.max()), active=int(active.numel()))
    bar.close()
    if active.numel():  # max_steps reached: return the denoised current state
        out[active] = _denoise(model, y[active], amp)
        nfe += 1
    return out, nfe, sigmas, t, t0


def sample_unconditional(model, n=8, shape=None, mean=None, sigma0=1.0, sigma_L=0.01, h0=0.01, beta=0.01,
                         adaptive_h=True, max_steps=10000, generator=None, callback=None, progress=True,
                         amp=False) -> SampleResult:
    """Unconditional samples by stochastic coarse-to-fine ascent (`_ascent`); nfe = one forward per step
    (+1 if max_steps stops images early)."""
    x, nfe, sigmas, t, t0 = _ascent(model, n, shape, mean, sigma0, sigma_L, h0, beta, adaptive_h, max_steps,
                                   generator, callback, progress, amp)
    return _finish(model, x, nfe, sigmas, t, t0, amp=amp, info=dict(sampler="ascent"))


def guided_ascent(model, target, n_samples=1, mean=None, sigma0=1.0, sigma_L=0.05, h0=0.01, beta=0.01,
                  adaptive_h=True, max_steps=10000, method="adam", proj_iters=100, proj_lr=0.01, proj_tol=0.01,
                  lr_sigma_power=0.0, polish_iters=0, polish_draws=4, polish_lr=0.003, mask=None, masked="zero",
                  block="mid", n_noise=10, target_seed=0, generator=None, callback=None, progress=True,
                  amp=False) -> SampleResult:
    """Self-guided reconstruction, "forward" form (docs/method.md 6): `_ascent` where, before each score step,
    y is projected (`project`) so its spatial block mean matches phi(x_c, sigma_t), sigma_t being the
    image's effective sigma at its previous step (sigma0 at the first), with step size
    ``proj_lr`` x sigma_t ** ``lr_sigma_power`` per image. Per step: projection
    (1 + 2 x iterations) + 1 forward. ``polish_iters`` > 0: the polish of `guided_backward` at sigma_L.
    ``mask`` / ``masked``: the channel subspace (`apply_mask`).
    Returns samples for T targets x n_samples, target-major."""
    block, tgt, m = _setup(model, target, n_samples, block, n_noise, mask, target_seed, amp, masked)
    _check_sigmas(sigma0, sigma_L)
    dev, N = next(model.parameters()).device, tgt.n * n_samples
    m_dev, its = m.to(dev), []

    def guide(ya, active, sig):
        tv = torch.stack([tgt(float(s))[i // n_samples] for s, i in zip(sig.tolist(), active.tolist())])
        lr = proj_lr * sig.float() ** lr_sigma_power if lr_sigma_power else proj_lr
        ya, k, used, _, _ = project(model, ya, tv.to(dev), m_dev[active], block, method, proj_iters, lr,
                                    proj_tol, max_move=sig if method == "newton" else None, amp=amp)
        its.append(used.float().mean().item())
        return ya, k

    x, nfe, sigmas, t, t0 = _ascent(model, N, _shape(model, tgt, None), mean, sigma0, sigma_L, h0, beta,
                                   adaptive_h, max_steps, generator, callback, progress, amp, _guide=guide)
    if polish_iters:
        x, c = _polish(model, x, tgt, n_samples, m_dev, float(sigma_L), base_seed(generator), 0, polish_iters,
                       polish_draws, polish_lr, block, amp)
        nfe += c
    return _finish(model, x, nfe, sigmas, t, t0, tgt, m, block, n_noise, amp=amp,
                   info=dict(sampler="guided_ascent", mean_proj_iters=sum(its) / max(1, len(its))))


def guided_backward(model, target, n_samples=1, schedule=None, mean=None, method="adam", proj_iters=100,
                    proj_lr=0.01, proj_tol=0.01, proj_max_move=None, lr_sigma_power=0.0, polish_iters=0,
                    polish_draws=4, polish_lr=0.003, mask=None, masked="zero", block="mid", n_noise=10,
                    target_seed=0, generator=None, callback=None, progress=True, amp=False) -> SampleResult:
    """Self-guided reconstruction, "backward" (fixed schedule) form (docs/method.md 6).

    x <- mean colour image; for sigma_k in ``schedule`` (default linspace(1, 0.03, 100)):
    x_tilde = x + sigma_k z; project x_tilde onto phi(x_c, sigma_k) (`project`); x = D(x_tilde).
    Per step: projection (1 + 2 x iterations) + 1 forward. ``proj_iters``: an int or one per step.
    Step size of the projection at sigma_k: ``proj_lr`` (a float or one per step) x sigma_k ** ``lr_sigma_power``
    (0: the authors' constant lr; 0.5 shrinks Adam's per-pixel step with the noise level, see PRESETS).
    ``proj_max_move`` (a factor of sigma_k) clips each projection step.
    ``mask`` / ``masked``: the channel subspace and what happens to the dropped channels (`apply_mask`).
    Polish (``polish_iters`` > 0, ours):
    after the last step, `project_averaged` moves the returned x itself so that phi(x, sigma_last), averaged
    over ``polish_draws`` fresh noise draws, matches the target (2 x polish_draws calls per iteration).
    Returns samples for T targets x n_samples, target-major."""
    block, tgt, m = _setup(model, target, n_samples, block, n_noise, mask, target_seed, amp, masked)
    sched = linear_sigmas() if schedule is None else torch.as_tensor(schedule, dtype=torch.float32)
    if sched.ndim != 1 or sched.numel() < 1 or not (sched > 0).all() or not torch.isfinite(sched).all():
        raise ValueError(f"schedule: expected a 1-d sequence of sigmas > 0, got {schedule!r}")
    check_sigma(float(sched.max()), "schedule")
    iters = [int(proj_iters)] * len(sched) if isinstance(proj_iters, int) else [int(i) for i in proj_iters]
    if len(iters) != len(sched) or min(iters) < 0:
        raise ValueError(f"proj_iters: expected an integer >= 0 or one per schedule step, got {proj_iters!r}")
    lrs = _per_step(proj_lr, len(sched), "proj_lr")
    dev, t0, N = next(model.parameters()).device, time.perf_counter(), tgt.n * n_samples
    shape, seed, m_dev = _shape(model, tgt, None), base_seed(generator), m.to(dev)
    x = _start(N, shape, mean, dev)
    sigmas, nfe, its = [], 0, []
    bar = _bar(progress, len(sched), "guided_backward")
    for k, sk in enumerate(sched.tolist()):
        y = x + sk * _noise(N, shape, seed, k, dev)
        tv = tgt(sk).repeat_interleave(n_samples, 0).to(dev)
        mm = None if proj_max_move is None else proj_max_move * sk
        lr = lrs[k] * sk ** lr_sigma_power
        y, c, used, _, _ = project(model, y, tv, m_dev, block, method, iters[k], lr, proj_tol, mm, amp)
        x = _denoise(model, y, amp)
        nfe += c + 1
        its.append(used.float().mean().item())
        s = _eff_sigma(y, x)
        _check_finite(x, k, s)
        sigmas.append(s.cpu())
        if callback is not None:
            callback(dict(step=k, y=y, sigma=s, x0=x, nfe=nfe))
        bar.update(1)
    bar.close()
    if polish_iters:
        x, c = _polish(model, x, tgt, n_samples, m_dev, float(sched[-1]), seed, len(sched), polish_iters,
                       polish_draws, polish_lr, block, amp)
        nfe += c
    return _finish(model, x, nfe, sigmas, len(sched), t0, tgt, m, block, n_noise, amp=amp,
                   info=dict(sampler="guided_backward", mean_proj_iters=sum(its) / max(1, len(its))))


class Tracker:
    """A callback recording, every ``every`` steps, the cumulative nfe and the quality of the current
    denoised estimate x0 against target images: phi relative error (at EVAL_SIGMA, ``n_noise`` draws)
    and PSNR. Samples are target-major, ``n_samples`` per target. Costs extra network calls (not in nfe).

        tr = Tracker(model, targets, n_samples=8); self_guided(..., callback=tr); tr.rows -> list of dicts
    """

    def __init__(self, model, targets, n_samples=1, every=5, n_noise=4, block="mid"):
        self.model, self.every, self.n_noise, self.block = model, int(every), int(n_noise), block
        self.targets = targets.repeat_interleave(n_samples, 0)
        self.t_phi = phi_of(model, self.targets, EVAL_SIGMA, n_noise=n_noise, blocks=block, seed=0)
        self.rows, self.seconds = [], 0.0  # seconds spent here (subtract from the sampler's wall_s)

    def __call__(self, d):
        if d["step"] % self.every:
            return
        t0 = time.perf_counter()
        x = d["x0"].detach().float().cpu().clamp(0, 1)
        p = phi_of(self.model, x, EVAL_SIGMA, n_noise=self.n_noise, blocks=self.block, seed=12345)
        idx = d["active"].cpu() if "active" in d else torch.arange(len(x))
        t = self.t_phi[idx]
        self.rows.append(dict(step=d["step"], nfe=d["nfe"], sigma=float(d["sigma"].mean()),
                              phi_rel_err=float(((p - t).norm(dim=1) / t.norm(dim=1)).mean()),
                              psnr=float(psnr(x, self.targets[idx]).mean())))
        self.seconds += time.perf_counter() - t0


PRESETS = {
    # The authors' settings (docs/method.md 6).
    ("backward", "reference"): dict(schedule=linear_sigmas().tolist(), method="adam",
                                    proj_iters=100, proj_lr=0.01, proj_tol=0.01),
    ("forward", "reference"): dict(sigma0=1.0, sigma_L=0.05, h0=0.01, beta=0.01, method="adam",
                                   proj_iters=100, proj_lr=0.01, proj_tol=0.01),
    # Ours, measured on the shipped tux32 (lib/tools/sampler_bench.py: 8 held-out tuxphoto targets x 2 samples,
    # seeds 0 and 1, same batch for every preset). Three changes to the reference: (1) 28 log-spaced sigmas
    # (the reference spends most of its 100 linear steps at high sigma, where phi matters least); (2) at most
    # 5 Adam iterations per projection with a step that shrinks with the noise, lr 0.07 sqrt(sigma_k) (a
    # constant lr made the low-sigma projections overshoot, and the reference runs to its 100-iteration cap
    # at almost every step: 88 iterations on average); (3) a polish: 16 Adam steps (lr 0.003) on the returned
    # image so that its phi at the last sigma, averaged over 2 fresh noise draws, matches the target
    # (`project_averaged`; 4 calls per step). Cost: 28 x (1 + 2 x 5 + 1) + 16 x 4 = 400 NFE per batch against
    # 20200 for the reference (50.5x fewer).
    # Measured (seed 0 / seed 1; explore runs on a busy 2-core CPU, `make bench` re-measures):
    #   reference (20200 NFE): phi rel err 0.0341 / 0.0402, diversity 0.222 / 0.215, PSNR to target 13.1 / 12.8
    #   this preset (400 NFE): phi rel err 0.0319 / 0.0305, diversity 0.225 / 0.258, PSNR to target 11.7 / 10.9
    # Rejected on the same batch (NFE; phi rel err; diversity, per seed): the previous fast preset (30 steps,
    # 10 iterations, lr 0.05 sqrt(sigma), polish 20 x 4 draws; 820; 0.028 / 0.031; 0.252 / 0.248); fewer steps
    # with more iterations (10-15 steps; 380-408; 0.031-0.046; 0.185-0.217: too little diversity); 30 steps with
    # 3-4 iterations (400-420; 0.034-0.066; 0.16-0.17); no polish (360; 0.079-0.106); lr 0.1 sqrt(sigma)
    # (400; 0.030-0.038; 0.23-0.28, but PSNR to target 10.1-10.6 and a higher final effective sigma).
    ("backward", "fast"): dict(schedule=geometric_sigmas(1.0, 0.03, 28).tolist(), method="adam",
                               proj_iters=5, proj_lr=0.07, lr_sigma_power=0.5, proj_tol=0.01,
                               polish_iters=16, polish_draws=2, polish_lr=0.003),
    # Forward form, ours, on the same batch. The previous fast forward preset (h0 0.2, beta 0.1, 10 iterations at a
    # constant lr 0.02, never benchmarked) did not converge: each projection put back more than the ascent step
    # removed, the effective sigma stalled near 0.08 and after 300 steps the phi rel err was 0.74 / 0.62. With
    # a projection step proportional to the noise (lr 0.05 sigma_t), 5 iterations, larger ascent steps (h0 0.3,
    # beta 0.15) and the backward form's polish (12 steps x 4 draws) the ascent reaches sigma_L = 0.05 in about
    # 35 steps: 432 NFE, phi rel err 0.060 / 0.067, diversity 0.175 / 0.193 (seeds 0 / 1). That is 47x fewer
    # calls than the backward reference but a 1.7x larger phi error and less diversity: the backward form is
    # the one to use. Also measured: lr 0.05 sqrt(sigma_t) 720 NFE, 0.051 / 0.063; lr 0.1 sqrt(sigma_t) did not
    # converge within 150 steps (1600-1900 NFE, 0.11-0.13); polish 30 x 2 draws 348-370 NFE, 0.061-0.093.
    # max_steps caps a run that does not converge.
    ("forward", "fast"): dict(sigma0=1.0, sigma_L=0.05, h0=0.3, beta=0.15, method="adam", proj_iters=5,
                              proj_lr=0.05, lr_sigma_power=1.0, proj_tol=0.01, polish_iters=12, polish_draws=4,
                              polish_lr=0.003, max_steps=100),
}


UNCONDITIONAL_PRESETS = {
    "reference": dict(sigma0=1.0, sigma_L=0.01, h0=0.01, beta=0.01),  # authors' (sigma0 3 in some figures)
    "fast": dict(sigma0=1.0, sigma_L=0.02, h0=0.2, beta=0.1),
}


def self_guided(model, target, n_samples=1, preset="fast", form="backward", generator=None, callback=None,
                progress=True, **overrides) -> SampleResult:
    """Self-guided reconstruction with a named preset ("reference" or "fast") of either form
    ("backward" -> `guided_backward`, "forward" -> `guided_ascent`); keyword overrides win."""
    if (form, preset) not in PRESETS:
        raise ValueError(f"preset/form: expected preset in ('reference', 'fast') and form in ('backward', "
                         f"'forward'), got preset={preset!r}, form={form!r}")
    fn = guided_backward if form == "backward" else guided_ascent
    kw = dict(PRESETS[(form, preset)], **overrides)
    return fn(model, target, n_samples, generator=generator, callback=callback, progress=progress, **kw)
