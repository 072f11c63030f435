"""Samplers that use the blind denoiser D as a score (docs/method.md section 6), k-diffusion style.

Every sampler has one signature (docs/design.md, "Samplers") and returns a `SampleResult`:

    sampler(model, x, schedule[, target], *, <option groups>, generator=None, callback=None, progress=True,
            amp=False) -> SampleResult

- ``x``: the starting image (N, C, H, W), on any device; `flat_start` gives the authors' flat image of the
  dataset's mean colour. A guided sampler draws N // T samples for each of the T targets, target-major.
- ``schedule``: explicit. A 1-d sequence of sigmas for the fixed-schedule sampler (`lib.sampling.schedules`),
  an `AscentSchedule` (sigma0, sigma_L, step sizes, max_steps) for the adaptive coarse-to-fine ascent.
- ``target`` (guided samplers): anything `make_target` accepts (below).
- option groups, each a dataclass: `Guide` (the block, the draws and seed of the target's phi, a channel
  mask), `Projection` (the phi projection of each step), `Polish` (the noise-averaged polish; None: none).
- ``callback(Step)`` after every step: one payload for every sampler, `Step` (step counted from 0: the row
  of ``SampleResult.sigmas``, nfe so far, sigma, y, x0, active rows).
- ``generator`` seeds every draw (per image, so a sample does not depend on the batch); ``progress``: a tqdm bar.

Samplers:
- `sample_unconditional` unconditional stochastic coarse-to-fine gradient ascent (Kadkhodaie & Simoncelli 2021)
- `guided_ascent`     self-guided reconstruction, "forward" form: the ascent with a phi projection before each step
- `guided_backward`   self-guided reconstruction, "backward" form: fixed sigma schedule, renoise-project-denoise
Around them:
- `self_guided`       a front end, not a sampler: a named preset ("reference": the authors' settings, "fast":
                      ours) of either form; it builds the start, schedule and option groups and calls one
- `phi_error`         the one phi error of samples against a target phi (``SampleResult.phi_rel_err``,
                      `Tracker`, `lib.sampling.quality`), at PHI_ERROR_SIGMA with the samples' own draws
- `Tracker`           a callback measuring phi error and PSNR of the running estimate against nfe

A phi target is anything `make_target` accepts: clean target images (phi(x_c, sigma) computed on demand
on a log-spaced sigma grid with ``Guide.n_noise`` draws, cached, and interpolated in log sigma), a (T, C) or
(C,) phi vector (used at every sigma: an approximation, since phi(x_c, sigma) changes with sigma), or a
callable sigma -> (T, C). `centroid_target`, `topk_mask` build the figure variants. A 0/1 channel
``Guide.mask`` restricts the guidance to a subspace; ``masked="zero"`` (default, the authors' way) drives the
dropped channels' block means to zero, ``masked="free"`` leaves them out of the loss (`apply_mask`). Targets,
masks and the projection live in `lib.sampling.guidance` and are re-exported here.

Costs: ``nfe`` counts network calls per batch: a full forward, a forward stopped after the block, and a
backward pass each count 1. Computing the target phi (``info["target_nfe"]``) and the final measurements
(``phi_rel_err``, ``final_sigma``) are not included. Units: images and sigma in [0, 1] (docs/method.md 7).
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from dataclasses import dataclass, field

import torch

from lib.core.checks import check_images, check_sigma
from lib.core.device import autocast, base_seed, per_sample_noise
from lib.core.hashing import digest, weights_sha256
from lib.core.memo import memo_arrays
from lib.core.metrics import psnr
from lib.core.profile import timed
from lib.model import compiled
from lib.model.compiled import compile_mode, use_compiled
from lib.representation.phi import phi as phi_of

# Of lib.sampling.guidance's names, those imported "as" themselves are re-exported, not used here: targets and masks
# the samplers' callers reach through this module (notebook 03 cites lib.sampling.samplers.centroid_target).
from lib.sampling.guidance import MASK_MODES as MASK_MODES
from lib.sampling.guidance import CallableTarget as CallableTarget
from lib.sampling.guidance import (
    ConstantTarget,
    ImageTarget,
    MaskedTarget,
    PhiTarget,
    apply_mask,
    check_block,
    make_target,
    project,
    project_averaged,
)
from lib.sampling.guidance import centroid_target as centroid_target
from lib.sampling.guidance import channel_count as channel_count
from lib.sampling.guidance import expand_mask as expand_mask
from lib.sampling.guidance import topk_mask as topk_mask
from lib.sampling.schedules import geometric_sigmas, linear_sigmas

PHI_ERROR_SIGMA = 0.02  # phi errors are measured at this sigma (small: ~clean image, inside the training range)
SAMPLES_SEED = 12345    # the noise draws of phi(samples) in every phi error (`samples_phi`)
TARGETS_SEED = 0        # the noise draws of phi(target images) measured against them (`targets_phi`)


@dataclass
class SampleResult:
    """What a sampler returns: the samples, their cost and what they achieved."""

    samples: torch.Tensor          # (N, C, H, W) in [0, 1] (clamped: info["outside_01"]), CPU; targets x samples
    nfe: int                       # network evaluations (forwards and backwards, per batch call)
    sigmas: torch.Tensor           # (steps, N) effective sigma ||y - D(y)|| / sqrt(dim) per step and image
    final_sigma: torch.Tensor      # (N,) effective sigma of the returned sample: ||x - D(x)|| / sqrt(dim)
    phi_rel_err: torch.Tensor | None  # (N,) `phi_error` against the target at PHI_ERROR_SIGMA (loss channels)
    steps: int
    wall_s: float                  # sampling time incl. computing the target phi, excl. final measurements
    info: dict = field(default_factory=dict)


@dataclass
class Step:
    """The callback payload, the same for every sampler, after each step."""

    step: int                      # 0 for the first step: row ``step`` of SampleResult.sigmas
    nfe: int                       # network calls so far
    sigma: torch.Tensor            # (n,) effective sigma ||y - D(y)|| / sqrt(dim) of the images of this step
    y: torch.Tensor                # (n, C, H, W) what the denoiser saw (after the projection, in guided samplers)
    x0: torch.Tensor               # (n, C, H, W) D(y): the current estimate of the clean images
    active: torch.Tensor           # (n,) their rows in the batch (the ascent drops the images that have converged)


# ------------------------------------------------------------------------------------- option groups
@dataclass(frozen=True)
class AscentSchedule:
    """The coarse-to-fine ascent's schedule (docs/method.md 6): from sigma0 until an image's effective sigma
    falls below sigma_L (at most ``max_steps`` steps), step size h_t = h0 t / (1 + h0 (t - 1)) (h0 when not
    ``adaptive_h``), injected noise set by beta (1: none, small: much)."""

    sigma0: float = 1.0
    sigma_L: float = 0.01
    h0: float = 0.01
    beta: float = 0.01
    adaptive_h: bool = True
    max_steps: int = 10000

    def __post_init__(self):
        check_sigma(self.sigma0, "sigma0")
        if not (self.sigma_L > 0):
            raise ValueError(f"sigma_L: expected > 0, got {self.sigma_L!r}")
        if not (self.sigma0 > self.sigma_L):
            raise ValueError(f"sigma0: expected sigma0 > sigma_L, got sigma0={self.sigma0!r}, sigma_L={self.sigma_L!r}")
        if not (0 < self.h0 <= 1 and 0 < self.beta <= 1):
            raise ValueError(f"h0, beta: expected in (0, 1], got h0={self.h0!r}, beta={self.beta!r}")


@dataclass(frozen=True, eq=False)
class Guide:
    """What a guided sampler matches: phi of ``block``; an image target's phi from ``n_noise`` draws with
    ``seed`` (also the draws of the final phi error); a 0/1 channel ``mask`` ((C,) or (T, C); None: all
    channels) and what happens to the channels it drops (``masked``, `apply_mask`)."""

    block: str = "mid"
    n_noise: int = 10
    seed: int = 0
    mask: torch.Tensor | None = None
    masked: str = "zero"


@dataclass(frozen=True)
class Projection:
    """The phi projection of each step (`project`): ``method`` "adam" (the authors': each image stops when its
    loss is below ``tol`` x its first loss) or "newton"; at most ``iters`` iterations with step size ``lr``
    x sigma ** ``lr_sigma_power`` (0: the authors' constant lr). In the fixed-schedule sampler ``iters`` and
    ``lr`` may also be one value per schedule step. ``max_move`` clips each projection step of an image to
    max_move x sigma x sqrt(dim) (None: no clip, except the ascent's Newton steps, clipped at 1 x sigma)."""

    method: str = "adam"
    iters: int | tuple = 100
    lr: float | tuple = 0.01
    tol: float = 0.01
    max_move: float | None = None
    lr_sigma_power: float = 0.0


@dataclass(frozen=True)
class Polish:
    """Ours: after the last step, `project_averaged` moves the returned images so that phi(x, sigma_last),
    averaged over ``draws`` fresh noise draws, matches the target: ``iters`` Adam steps of size ``lr``
    (2 x draws network calls each). iters = 0: no polish."""

    iters: int = 16
    draws: int = 2
    lr: float = 0.003

    def __post_init__(self):
        if not (isinstance(self.draws, int) and self.draws >= 1 and self.lr > 0 and int(self.iters) >= 0):
            raise ValueError(f"polish: expected iters >= 0, draws an integer >= 1 and lr > 0, "
                             f"got iters={self.iters!r}, draws={self.draws!r}, lr={self.lr!r}")


# ------------------------------------------------------------------------------------- the phi error
@timed("sampling")
def samples_phi(model, samples, n_noise=10, block="mid", sigma=PHI_ERROR_SIGMA, amp=False) -> torch.Tensor:
    """phi of samples as every measure of a sampler reads it: at ``sigma`` with the samples' draws (SAMPLES_SEED)."""
    return phi_of(model, samples, sigma, n_noise=n_noise, blocks=block, seed=SAMPLES_SEED, amp=amp)


@timed("sampling")
def targets_phi(model, targets, n_noise=10, block="mid", sigma=PHI_ERROR_SIGMA) -> torch.Tensor:
    """phi of target images as the measures compare samples with it: at ``sigma``, other draws (TARGETS_SEED)."""
    return phi_of(model, targets, sigma, n_noise=n_noise, blocks=block, seed=TARGETS_SEED)


@timed("sampling")
def phi_error(model, samples, target_phi, n_noise=10, block="mid", mask=None, relative=True, amp=False) -> torch.Tensor:
    """(N,) ||phi(samples, PHI_ERROR_SIGMA) - target_phi|| over the channels of a 0/1 ``mask`` (N, C) (all by
    default), divided by ||target_phi|| on them when ``relative``. ``target_phi``: (N, C), one row per sample.
    phi of the samples comes from `samples_phi`, so every phi error in the repository uses the same draws."""
    p, t = samples_phi(model, samples, n_noise, block, amp=amp), target_phi
    if mask is not None:
        p, t = p * mask, t * mask
    err = (p - t).norm(dim=1)
    return err / t.norm(dim=1).clamp_min(1e-12) if relative else err


# ------------------------------------------------------------------------------------- helpers
def flat_start(model, n: int, mean=None, shape=None) -> torch.Tensor:
    """The authors' starting image: ``n`` copies (CPU) of a flat image of the channel means ``mean`` (a number
    or one per channel; 0.5 by default) of ``shape`` (C, H, W; the model's image size by default)."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"n: expected an integer >= 1, got {n!r}")
    if shape is None:
        shape = (model.config.in_channels, model.config.image_size, model.config.image_size)
    shape = tuple(shape)
    mu = torch.full((shape[0],), 0.5) if mean is None else torch.as_tensor(mean).float().reshape(-1)
    if mu.numel() == 1:
        mu = mu.expand(shape[0])
    if mu.numel() != shape[0]:
        raise ValueError(f"mean: expected a number or {shape[0]} channel means, got {mu.numel()} values")
    return mu.view(1, -1, 1, 1).expand(n, *shape).clone()


def _begin(model, x) -> torch.Tensor:
    """The starting image, checked, as a float32 copy on the model's device."""
    check_images(x, "x", channels=model.config.in_channels, multiple=model.config.downsampling, range01=False)
    if x.shape[0] == 0:
        raise ValueError("x: empty batch (0 images); the starting image has one row per sample")
    return x.detach().to(next(model.parameters()).device, torch.float32).clone()


def _denoise(model, y, amp, fast: bool = False):
    """D(y) without gradients; fast: through the compiled blocks (`lib.model.compiled`)."""
    with torch.no_grad(), autocast(y.device, amp):
        if fast:
            return compiled.walk(model, y, (), full=True)[0].float()
        return model(y).float()


def sampler_compiled(model, x, schedule) -> bool:
    """Whether a sampler's denoising steps run compiled: by LIB_COMPILE and its images x steps (the schedule's
    length, or an ascent's max_steps). A pure function of the call, so the cache's key can say it."""
    try:
        steps = schedule.max_steps if isinstance(schedule, AscentSchedule) else len(_sigmas(schedule))
        work = int(x.shape[0]) * int(steps)
    except Exception:  # a bad argument: the sampler's own checks name it
        return False
    return use_compiled(model, work)


def _eff_sigma(y, d):
    return (y - d).flatten(1).norm(dim=1) / math.sqrt(y[0].numel())


def _noise(n, shape, seed, step, device):
    return per_sample_noise(n, shape, (seed * 1_000_003 + step) % 2**62).squeeze(1).to(device)


def _check_finite(y, step, sigma):
    if not torch.isfinite(y).all():
        raise FloatingPointError(f"sampler diverged at step {step} (sigma {float(sigma.max()):.4g}): NaN/inf in y")


def _finish(model, x, nfe, sigmas, steps, t0, guided=None, info=None, amp=False, fast=False):
    """Clamp, measure final_sigma and phi_rel_err (not counted in nfe), pack a SampleResult.
    ``info["outside_01"]``: the share of pixel values outside [0, 1] before this clamp (the only one)."""
    wall = time.perf_counter() - t0
    outside = float(((x < 0) | (x > 1)).float().mean())
    x = x.clamp(0, 1)
    final = _eff_sigma(x, _denoise(model, x, amp, fast)).cpu()
    err, target = None, None
    if guided is not None:
        target, mask, guide = guided.target, guided.mask, guided.guide
        t = target(PHI_ERROR_SIGMA).repeat_interleave(x.shape[0] // target.n, 0)
        err = phi_error(model, x, t, guide.n_noise, guided.block, mask, amp=amp)
    info = dict(info or {}, target_nfe=getattr(target, "nfe", 0), target_s=getattr(target, "seconds", 0.0),
                outside_01=outside)
    sig = torch.stack(sigmas) if sigmas else torch.zeros(0, x.shape[0])
    return SampleResult(x.cpu(), int(nfe), sig, final, err, int(steps), wall, info)


@dataclass
class _Guided:
    """A guided sampler's resolved target: the block, the (masked) target, the loss mask per row, samples per target."""

    guide: Guide
    block: str
    target: PhiTarget
    mask: torch.Tensor
    n_samples: int


def _guided(model, target, x, guide: Guide, amp) -> _Guided:
    block = check_block(model, guide.block)
    tgt, m = apply_mask(make_target(model, target, block, guide.n_noise, guide.seed, amp), guide.mask, guide.masked)
    if x.shape[0] % tgt.n:
        raise ValueError(f"x: expected n_samples starting images per target ({tgt.n} targets, target-major), "
                         f"got {x.shape[0]} rows")
    n_samples = x.shape[0] // tgt.n
    return _Guided(guide, block, tgt, m.repeat_interleave(n_samples, 0), n_samples)


def _per_step(v, n, name, integer=False):
    """A number, or a sequence of n numbers -> list of n (positive floats; integers >= 0 when ``integer``)."""
    one = isinstance(v, int) if integer else isinstance(v, (int, float))
    vals = [v] * n if one else list(v) if isinstance(v, (list, tuple)) else None
    if integer:
        ok = vals is not None and len(vals) == n and all(isinstance(a, int) and a >= 0 for a in vals)
        if not ok:
            raise ValueError(f"{name}: expected an integer >= 0 or one per schedule step, got {v!r}")
        return [int(a) for a in vals]
    vals = None if vals is None else [float(a) for a in vals]
    if vals is None or len(vals) != n or not all(math.isfinite(a) and a > 0 for a in vals):
        raise ValueError(f"{name}: expected a number > 0 or one per schedule step, got {v!r}")
    return vals


def _sigmas(schedule) -> torch.Tensor:
    sched = torch.as_tensor(schedule, dtype=torch.float32)
    if sched.ndim != 1 or sched.numel() < 1 or not (sched > 0).all() or not torch.isfinite(sched).all():
        raise ValueError(f"schedule: expected a 1-d sequence of sigmas > 0, got {schedule!r}")
    check_sigma(float(sched.max()), "schedule")
    return sched


def _bar(progress, total, desc):
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, disable=not progress, leave=False)


def _polish(model, x, g: _Guided, polish: Polish, sigma, seed, base, amp):
    """`Polish` of the returned images at ``sigma``, noise draws seeded per image from ``base`` on. Returns (x, nfe)."""
    N, shape, dev = x.shape[0], tuple(x.shape[1:]), x.device
    draws = polish.draws

    def noise(j):  # the draws of polish step j
        return torch.stack([_noise(N, shape, seed, base + j * draws + i, dev) for i in range(draws)])
    tv = g.target(sigma).repeat_interleave(g.n_samples, 0).to(dev)
    x, c, _ = project_averaged(model, x, tv, g.mask.to(dev), sigma, noise, int(polish.iters), polish.lr, g.block, amp)
    _check_finite(x, base, torch.tensor(sigma))
    return x, c


# -------------------------------------------------------------------------------------- samplers
def _ascent(model, x, schedule: AscentSchedule, generator, callback, progress, amp, guide=None, desc="ascent",
            fast=False):
    """Stochastic coarse-to-fine gradient ascent (Kadkhodaie & Simoncelli 2021; docs/method.md 6).

    y <- x + sigma0 z; each step: h_t = h0 t / (1 + h0 (t - 1)) (or h0 if not adaptive_h),
    f = y - D(y), sigma_t = ||f|| / sqrt(dim), gamma = sigma_t sqrt((1 - beta h)^2 - (1 - h)^2),
    y <- y - h f + gamma z. An image stops (and leaves the batch) once sigma_t < sigma_L; returns D(y).
    One full forward per step; ``guide(y, active, sigma) -> (y, nfe)`` projects y before the score step.
    Internal: returns (x, nfe, sigmas, steps, t0)."""
    sch = schedule
    if not isinstance(sch, AscentSchedule):
        raise ValueError(f"schedule: expected an AscentSchedule for the ascent, got {type(sch).__name__}")
    t0 = time.perf_counter()
    y = _begin(model, x)
    n, shape, dev = y.shape[0], tuple(y.shape[1:]), y.device
    seed = base_seed(generator)
    y = y + sch.sigma0 * _noise(n, shape, seed, 0, dev)
    out = torch.empty_like(y)
    active = torch.arange(n, device=dev)
    last = torch.full((n,), float(sch.sigma0))
    sigmas, nfe, t = [], 0, 0
    bar = _bar(progress, None, desc)
    while active.numel() and t < sch.max_steps:
        t += 1
        h = sch.h0 * t / (1 + sch.h0 * (t - 1)) if sch.adaptive_h else sch.h0
        ya = y[active]
        if guide is not None:  # forward-form projection before the score step (guided_ascent)
            ya, k = guide(ya, active, last[active.cpu()].to(dev))
            nfe += k
        d = _denoise(model, ya, amp, fast)
        nfe += 1
        s = _eff_sigma(ya, d)
        last[active.cpu()] = s.cpu()
        sigmas.append(last.clone())
        if callback is not None:
            callback(Step(step=t - 1, nfe=nfe, sigma=s, y=ya, x0=d, active=active))
        stop = s < sch.sigma_L
        out[active[stop]] = d[stop]
        gamma = s * math.sqrt(max((1 - sch.beta * h) ** 2 - (1 - h) ** 2, 0.0))
        z = _noise(n, shape, seed, t, dev)[active]
        ya = ya - h * (ya - d) + gamma.view(-1, 1, 1, 1) * z
        _check_finite(ya, t, s)
        y[active] = ya
        active = active[~stop]
        bar.update(1)
        bar.set_postfix(sigma=float(s.max()), active=int(active.numel()))
    bar.close()
    if active.numel():  # max_steps reached: return the denoised current state
        out[active] = _denoise(model, y[active], amp, fast)
        nfe += 1
    return out, nfe, sigmas, t, t0


class _Uncacheable(Exception):
    pass


def _describe(v):
    """A JSON-able description of a sampler argument for the cache key: tensors by content digest, option
    groups and targets by their fields; _Uncacheable for what has no content to key (a callable target)."""
    if isinstance(v, torch.Tensor):
        return {"tensor": digest(v), "device": v.device.type}
    if isinstance(v, torch.Generator):
        return {"generator": digest(v.get_state()), "device": str(v.device)}
    if isinstance(v, ImageTarget):
        return {"ImageTarget": _describe(v.images), "block": v.block, "n_noise": v.n_noise, "seed": v.seed,
                "centroid": v.centroid, "amp": v.amp, "weights": weights_sha256(v.model)}
    if isinstance(v, ConstantTarget):
        return {"ConstantTarget": _describe(v.v)}
    if isinstance(v, MaskedTarget):
        return {"MaskedTarget": _describe(v.target), "keep": _describe(v.keep),
                "mode": getattr(v, "mode", None)}
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {type(v).__name__: {f.name: _describe(getattr(v, f.name)) for f in dataclasses.fields(v)}}
    if isinstance(v, (list, tuple)):
        return [_describe(a) for a in v]
    if isinstance(v, dict):
        return {str(k): _describe(a) for k, a in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise _Uncacheable(type(v).__name__)


def _memo_sample(fn):
    """Keep a sampler's result in the content-keyed cache (`lib.core.memo`): the weights, the starting images,
    the schedule, the target, the option groups, amp and the generator's state are the key; a hit restores the
    generator's state after the run and, with a `Tracker` callback, its rows. Other callbacks run the sampler."""
    @functools.wraps(fn)
    def inner(model, x, schedule, *args, generator=None, callback=None, progress=True, **kw):
        def run():
            return fn(model, x, schedule, *args, generator=generator, callback=callback, progress=progress, **kw)
        if callback is not None and (not isinstance(callback, Tracker) or callback.rows):
            return run()  # a callback of its own, or a Tracker that already holds rows of another run
        try:
            key = {"sampler": fn.__name__, "weights": weights_sha256(model), "x": _describe(x),
                   "schedule": _describe(schedule), "args": _describe(list(args)), "options": _describe(kw),
                   "generator": _describe(generator),
                   "tracker": None if callback is None else {"every": callback.every, "n_noise": callback.n_noise,
                                                             "block": callback.block,
                                                             "targets": _describe(callback.targets)}}
            if compile_mode() != "auto":  # a target's phi may be compiled or not (lib.model.compiled)
                key["lib_compile"] = compile_mode()
            if sampler_compiled(model, x, schedule):  # compiled denoising steps round differently
                key["kernels"] = "inductor"
        except _Uncacheable:
            return run()

        def compute():
            r = run()
            meta = {"nfe": r.nfe, "steps": r.steps, "wall_s": r.wall_s, "info": r.info,
                    "rows": None if callback is None else callback.rows,
                    "tracker_s": None if callback is None else callback.seconds}
            out = {"samples": r.samples, "sigmas": r.sigmas, "final_sigma": r.final_sigma,
                   "meta": json.dumps(meta)}
            if r.phi_rel_err is not None:
                out["phi_rel_err"] = r.phi_rel_err
            if generator is not None:
                out["generator"] = generator.get_state()
            return {k: (v.numpy() if isinstance(v, torch.Tensor) else v) for k, v in out.items()}
        got = memo_arrays("samples", key, compute)
        meta = json.loads(str(got["meta"]))
        if generator is not None:
            generator.set_state(torch.from_numpy(got["generator"].copy()))
        if callback is not None and not callback.rows:  # a hit: the rows the run recorded
            callback.rows, callback.seconds = list(meta["rows"]), float(meta["tracker_s"])
        err = got.get("phi_rel_err")
        return SampleResult(torch.from_numpy(got["samples"]), int(meta["nfe"]), torch.from_numpy(got["sigmas"]),
                            torch.from_numpy(got["final_sigma"]), None if err is None else torch.from_numpy(err),
                            int(meta["steps"]), float(meta["wall_s"]), dict(meta["info"]))
    return inner


@_memo_sample
@timed("sampling")
def sample_unconditional(model, x, schedule: AscentSchedule, *, generator=None, callback=None, progress=True,
                         amp=False) -> SampleResult:
    """Unconditional samples by stochastic coarse-to-fine ascent (`_ascent`) from the starting images ``x``
    (N, C, H, W) along ``schedule``; nfe = one forward per step (+1 if max_steps stops images early)."""
    fast = sampler_compiled(model, x, schedule)
    out, nfe, sigmas, t, t0 = _ascent(model, x, schedule, generator, callback, progress, amp, fast=fast)
    return _finish(model, out, nfe, sigmas, t, t0, amp=amp, info=dict(sampler="ascent"), fast=fast)


@_memo_sample
@timed("sampling")
def guided_ascent(model, x, schedule: AscentSchedule, target, *, guide: Guide = Guide(),
                  projection: Projection = Projection(), polish: Polish | None = None, generator=None, callback=None,
                  progress=True, amp=False) -> SampleResult:
    """Self-guided reconstruction, "forward" form (docs/method.md 6): `_ascent` where, before each score step,
    y is projected (`project`) so its spatial block mean matches phi(x_c, sigma_t), sigma_t being the
    image's effective sigma at its previous step (sigma0 at the first), with step size
    ``projection.lr`` x sigma_t ** ``projection.lr_sigma_power`` per image. Per step: projection
    (1 + 2 x iterations) + 1 forward. ``polish``: the polish of `guided_backward`, at sigma_L.
    Returns N = rows of ``x`` samples, N // T per target, target-major."""
    g = _guided(model, target, x, guide, amp)
    proj = projection
    if not isinstance(proj.iters, int) or not isinstance(proj.lr, (int, float)):
        raise ValueError(f"projection: the ascent takes one iters and one lr for every step, got iters={proj.iters!r}, "
                         f"lr={proj.lr!r}")
    dev = next(model.parameters()).device
    m_dev, its = g.mask.to(dev), []

    def project_step(ya, active, sig):
        tv = torch.stack([g.target(float(s))[i // g.n_samples] for s, i in zip(sig.tolist(), active.tolist())])
        lr = proj.lr * sig.float() ** proj.lr_sigma_power if proj.lr_sigma_power else proj.lr
        if proj.method == "newton":
            mm = sig if proj.max_move is None else proj.max_move * sig
        else:
            mm = None if proj.max_move is None else proj.max_move * sig
        ya, k, used, _, _ = project(model, ya, tv.to(dev), m_dev[active], g.block, proj.method, proj.iters, lr,
                                    proj.tol, max_move=mm, amp=amp)
        its.append(used.float().mean().item())
        return ya, k

    fast = sampler_compiled(model, x, schedule)
    out, nfe, sigmas, t, t0 = _ascent(model, x, schedule, generator, callback, progress, amp, guide=project_step,
                                      desc="guided_ascent", fast=fast)
    if polish is not None and polish.iters:
        out, c = _polish(model, out, g, polish, float(schedule.sigma_L), base_seed(generator), 0, amp)
        nfe += c
    return _finish(model, out, nfe, sigmas, t, t0, g, amp=amp,
                   info=dict(sampler="guided_ascent", mean_proj_iters=sum(its) / max(1, len(its))), fast=fast)


@_memo_sample
@timed("sampling")
def guided_backward(model, x, schedule, target, *, guide: Guide = Guide(), projection: Projection = Projection(),
                    polish: Polish | None = None, generator=None, callback=None, progress=True,
                    amp=False) -> SampleResult:
    """Self-guided reconstruction, "backward" (fixed schedule) form (docs/method.md 6).

    From the starting images ``x``, for sigma_k in ``schedule`` (the authors': `linear_sigmas`, 1 -> 0.03 in 100
    steps): x_tilde = x + sigma_k z; project x_tilde onto phi(x_c, sigma_k) (`project`); x = D(x_tilde).
    Per step: projection (1 + 2 x iterations) + 1 forward. ``projection.iters`` and ``projection.lr``: a value
    or one per step; the step size at sigma_k is lr x sigma_k ** ``lr_sigma_power`` (0: the authors' constant
    lr; 0.5 shrinks Adam's per-pixel step with the noise level, see PRESETS); ``max_move`` (a factor of
    sigma_k) clips each projection step. ``polish`` (ours; None: none): after the last step, `project_averaged`
    moves the returned x itself so that phi(x, sigma_last), averaged over fresh noise draws, matches the target.
    Returns N = rows of ``x`` samples, N // T per target, target-major."""
    g = _guided(model, target, x, guide, amp)
    sched = _sigmas(schedule)
    fast = sampler_compiled(model, x, schedule)
    proj = projection
    iters = _per_step(proj.iters, len(sched), "projection.iters", integer=True)
    lrs = _per_step(proj.lr, len(sched), "projection.lr")
    t0 = time.perf_counter()
    y0 = _begin(model, x)
    N, shape, dev = y0.shape[0], tuple(y0.shape[1:]), y0.device
    seed, m_dev = base_seed(generator), g.mask.to(dev)
    sigmas, nfe, its, xk = [], 0, [], y0
    rows = torch.arange(N, device=dev)
    bar = _bar(progress, len(sched), "guided_backward")
    for k, sk in enumerate(sched.tolist()):
        y = xk + sk * _noise(N, shape, seed, k, dev)
        tv = g.target(sk).repeat_interleave(g.n_samples, 0).to(dev)
        mm = None if proj.max_move is None else proj.max_move * sk
        lr = lrs[k] * sk ** proj.lr_sigma_power
        y, c, used, _, _ = project(model, y, tv, m_dev, g.block, proj.method, iters[k], lr, proj.tol, mm, amp)
        xk = _denoise(model, y, amp, fast)
        nfe += c + 1
        its.append(used.float().mean().item())
        s = _eff_sigma(y, xk)
        _check_finite(xk, k, s)
        sigmas.append(s.cpu())
        if callback is not None:
            callback(Step(step=k, nfe=nfe, sigma=s, y=y, x0=xk, active=rows))
        bar.update(1)
    bar.close()
    if polish is not None and polish.iters:
        xk, c = _polish(model, xk, g, polish, float(sched[-1]), seed, len(sched), amp)
        nfe += c
    return _finish(model, xk, nfe, sigmas, len(sched), t0, g, amp=amp,
                   info=dict(sampler="guided_backward", mean_proj_iters=sum(its) / max(1, len(its))), fast=fast)


class Tracker:
    """A callback recording, every ``every`` steps, the cumulative nfe and the quality of the current
    denoised estimate x0 against target images: `phi_error` (``n_noise`` draws) and PSNR. Samples are
    target-major, ``n_samples`` per target. Costs extra network calls (not in nfe).

        tr = Tracker(model, targets, n_samples=8); self_guided(..., callback=tr); tr.rows -> list of dicts
    """

    def __init__(self, model, targets, n_samples=1, every=5, n_noise=4, block="mid"):
        self.model, self.every, self.n_noise, self.block = model, int(every), int(n_noise), block
        self.targets = targets.repeat_interleave(n_samples, 0)
        self.t_phi = targets_phi(model, self.targets, n_noise, block)
        self.rows, self.seconds = [], 0.0  # seconds spent here (subtract from the sampler's wall_s)

    def __call__(self, s: Step):
        """Every ``every`` steps, append a row (step, nfe, sigma, phi_rel_err, psnr) for the current x0."""
        if s.step % self.every:
            return
        t0 = time.perf_counter()
        x = s.x0.detach().float().cpu().clamp(0, 1)
        idx = s.active.cpu()
        err = phi_error(self.model, x, self.t_phi[idx], self.n_noise, self.block)
        self.rows.append(dict(step=s.step, nfe=s.nfe, sigma=float(s.sigma.mean()), phi_rel_err=float(err.mean()),
                              psnr=float(psnr(x, self.targets[idx]).mean())))
        self.seconds += time.perf_counter() - t0


# ------------------------------------------------------------------------------------------ presets
@dataclass(frozen=True)
class Preset:
    """A named self-guided setting: the schedule (sigmas, or an AscentSchedule for the forward form) and options."""

    schedule: tuple | AscentSchedule
    projection: Projection
    polish: Polish | None = None


PRESETS = {
    # The authors' settings (docs/method.md 6).
    ("backward", "reference"): Preset(tuple(linear_sigmas().tolist()),
                                      Projection(method="adam", iters=100, lr=0.01, tol=0.01)),
    ("forward", "reference"): Preset(AscentSchedule(sigma0=1.0, sigma_L=0.05, h0=0.01, beta=0.01),
                                     Projection(method="adam", iters=100, lr=0.01, tol=0.01)),
    # Ours, chosen on the shipped tux32 with `python -m scripts.bench_sampler` (lib/tools/sampler_bench.py: 8
    # held-out tuxphoto targets x 2 samples, seeds 0 and 1, the same batch for every preset); its latest numbers
    # are in figures/bench/sampler_bench.json and the README's sampler table. Three changes to the reference:
    # (1) 28 log-spaced sigmas (the reference spends most of its 100 linear steps at high sigma, where phi
    # matters least); (2) at most 5 Adam iterations per projection with a step that shrinks with the noise,
    # lr 0.07 sqrt(sigma_k) (a constant lr made the low-sigma projections overshoot, and the reference runs to
    # its 100-iteration cap at almost every step: sampler_reference_mean_proj_iters); (3) a polish: 16 Adam
    # steps (lr 0.003) on the returned image so that its phi at the last sigma, averaged over 2 fresh noise
    # draws, matches the target (`project_averaged`; 4 calls per step). Cost, by construction:
    # 28 x (1 + 2 x 5 + 1) + 16 x 4 = 400 NFE per batch against 100 x (1 + 2 x 100 + 1) = 20200 for the reference.
    # Rejected in exploratory runs of the same bench with other settings: fewer steps with more iterations
    # (too little diversity), 3-4 iterations per step (a larger phi error, less diversity), no polish (a phi
    # error 2-3x larger), lr 0.1 sqrt(sigma) (a lower PSNR to the target, a higher final effective sigma).
    ("backward", "fast"): Preset(tuple(geometric_sigmas(1.0, 0.03, 28).tolist()),
                                 Projection(method="adam", iters=5, lr=0.07, lr_sigma_power=0.5, tol=0.01),
                                 Polish(iters=16, draws=2, lr=0.003)),
    # Forward form, ours, on the same bench (sampler_forward_fast_*). A constant projection lr put back more
    # than each ascent step removed (the effective sigma stalled, the phi error stayed large); a projection
    # step proportional to the noise (lr 0.05 sigma_t), 5 iterations, larger ascent steps (h0 0.3, beta 0.15)
    # and the backward form's polish (12 steps x 4 draws) reach sigma_L = 0.05. It costs about as many calls
    # as the backward fast preset but ends with a larger phi error and less diversity (the bench's
    # sampler_forward_fast_phi_rel_err and _diversity): the backward form is the one to use.
    # max_steps caps a run that does not converge.
    ("forward", "fast"): Preset(AscentSchedule(sigma0=1.0, sigma_L=0.05, h0=0.3, beta=0.15, max_steps=100),
                                Projection(method="adam", iters=5, lr=0.05, lr_sigma_power=1.0, tol=0.01),
                                Polish(iters=12, draws=4, lr=0.003)),
}


UNCONDITIONAL_PRESETS = {  # schedules of `sample_unconditional`
    "reference": AscentSchedule(sigma0=1.0, sigma_L=0.01, h0=0.01, beta=0.01),  # authors' (sigma0 3 in some figures)
    "fast": AscentSchedule(sigma0=1.0, sigma_L=0.02, h0=0.2, beta=0.1),
}


def _override(group, value):
    """A preset's option group with an override: None keeps it, a dict replaces the fields it names, anything
    else replaces the group."""
    if value is None:
        return group
    if isinstance(value, dict):
        if not dataclasses.is_dataclass(group):
            raise ValueError(f"override {value!r}: the preset's {type(group).__name__} has no fields to change; "
                             f"pass the whole value")
        return dataclasses.replace(group, **value)
    return value


@timed("sampling")
def self_guided(model, target, n_samples=1, preset="fast", form="backward", *, mean=None, schedule=None,
                guide=None, projection=None, polish=None, generator=None, callback=None, progress=True,
                amp=False) -> SampleResult:
    """Self-guided reconstruction with a named preset ("reference" or "fast") of either form ("backward" ->
    `guided_backward`, "forward" -> `guided_ascent`): ``n_samples`` per target from `flat_start` of ``mean``.
    ``schedule``, ``guide``, ``projection``, ``polish`` override the preset's: a value replaces it, a dict
    replaces the fields it names (``projection=dict(iters=3)``; ``schedule=dict(sigma_L=0.3)`` in the forward
    form; ``polish=0`` or ``polish=dict(iters=0)``: no polish)."""
    if (form, preset) not in PRESETS:
        raise ValueError(f"preset/form: expected preset in ('reference', 'fast') and form in ('backward', "
                         f"'forward'), got preset={preset!r}, form={form!r}")
    if not (isinstance(n_samples, int) and n_samples >= 1):
        raise ValueError(f"n_samples: expected an integer >= 1, got {n_samples!r}")
    p = PRESETS[(form, preset)]
    g = _override(Guide(), guide)
    tgt = make_target(model, target, check_block(model, g.block), g.n_noise, g.seed, amp)
    x = flat_start(model, tgt.n * n_samples, mean, getattr(tgt, "shape", None) or None)
    pol = None if polish == 0 else _override(p.polish, polish)
    fn = guided_backward if form == "backward" else guided_ascent
    return fn(model, x, _override(p.schedule, schedule), tgt, guide=g, projection=_override(p.projection, projection),
              polish=pol, generator=generator, callback=callback, progress=progress, amp=amp)
