"""Guidance toward a phi target: the targets (images, vectors, centroids, callables), channel masks, and
the projection that moves images so that their middle-block spatial mean matches a target on a mask.

Shared by the self-guided samplers (lib.sampling.samplers) and the conditional-density distance (lib.measure.distances).
"""
from __future__ import annotations

import math
import time

import torch

from lib.core.checks import check_images
from lib.core.device import autocast
from lib.model.hooks import BlockRecorder, block_channels, resolve_blocks
from lib.representation.phi import phi as phi_of

GRID_PER_DECADE = 8  # target phi grid: sigma = 10 ** (k / 8), interpolated linearly in log sigma


# ----------------------------------------------------------------------------------------- targets
class PhiTarget:
    """T target phi vectors as a function of sigma: ``target(sigma) -> (T, C)`` float32 CPU tensor."""

    n: int
    nfe: int = 0  # network calls spent computing the target
    seconds: float = 0.0  # and the time (both included in a sampler's wall_s, not in its nfe)

    def __call__(self, sigma: float) -> torch.Tensor:
        """The T target phi vectors at ``sigma``: float32 CPU (T, C)."""
        raise NotImplementedError


class ImageTarget(PhiTarget):
    """phi(x_c, sigma) of target images (or, with centroid=True, the mean over them: one target), computed
    on demand at grid points 10**(k/8) with ``n_noise`` draws (fixed ``seed``) and interpolated."""

    def __init__(self, model, images, block="mid", n_noise=10, seed=0, centroid=False, amp=False):
        self.model, self.images, self.block, self.n_noise = model, images, block, int(n_noise)
        self.seed, self.centroid, self.amp, self.cache, self.nfe, self.seconds = seed, centroid, amp, {}, 0, 0.0
        self.n = 1 if centroid else images.shape[0]
        self.shape = tuple(images.shape[1:])

    def at(self, sigma: float) -> torch.Tensor:
        """phi of the targets at exactly ``sigma``, computed once and cached."""
        key = round(float(sigma), 12)
        if key not in self.cache:
            t0 = time.perf_counter()
            v = phi_of(self.model, self.images, sigma, n_noise=self.n_noise, blocks=self.block,
                       seed=self.seed, amp=self.amp)
            draws = 1 if sigma == 0 else self.n_noise
            self.nfe += math.ceil(self.images.shape[0] / max(1, 256 // draws))
            self.cache[key] = v.mean(0, keepdim=True) if self.centroid else v
            self.seconds += time.perf_counter() - t0
        return self.cache[key]

    def __call__(self, sigma):
        """phi of the targets at ``sigma``, interpolated in log sigma between the grid points around it."""
        sigma = float(sigma)
        if sigma <= 0:
            return self.at(0.0)
        k = math.log10(max(sigma, 1e-3)) * GRID_PER_DECADE
        lo, hi = math.floor(k), math.ceil(k)
        a, b = self.at(10 ** (lo / GRID_PER_DECADE)), self.at(10 ** (hi / GRID_PER_DECADE))
        w = k - lo
        return a if hi == lo else (1 - w) * a + w * b


class ConstantTarget(PhiTarget):
    """A fixed phi (T, C) used at every sigma (approximation: the true phi(x_c, sigma) drifts with sigma)."""

    def __init__(self, v):
        self.v = v.float().cpu().reshape(-1, v.shape[-1])
        self.n = self.v.shape[0]

    def __call__(self, sigma):
        """The fixed phi, whatever ``sigma``."""
        return self.v


class CallableTarget(PhiTarget):
    """Target phi from a function ``fn(sigma) -> (T, C)`` or ``(C,)``; ``n``: the number of targets T."""
    def __init__(self, fn, n):
        self.fn, self.n = fn, n

    def __call__(self, sigma):
        """``fn(sigma)`` as a float32 CPU (T, C) tensor."""
        v = torch.as_tensor(self.fn(float(sigma))).float().cpu()
        return v.reshape(-1, v.shape[-1])


MASK_MODES = ("zero", "free")  # what a channel mask does to the channels it drops (see MaskedTarget)


class MaskedTarget(PhiTarget):
    """The authors' subspace projection: the target phi with the channels a 0/1 ``keep`` mask (T, C) drops
    set to 0, matched on every channel, so the projection pushes the dropped channels' block means to zero
    (mask mode "zero"). Mode "free" instead leaves them out of the loss, free to take any value."""

    def __init__(self, target: PhiTarget, keep: torch.Tensor):
        self.target, self.keep, self.n = target, keep.float(), target.n
        self.shape = getattr(target, "shape", None)

    @property
    def nfe(self):
        """Network calls the wrapped target spent."""
        return getattr(self.target, "nfe", 0)

    @property
    def seconds(self):
        """Seconds the wrapped target spent."""
        return getattr(self.target, "seconds", 0.0)

    def __call__(self, sigma):
        """The wrapped target at ``sigma`` with the dropped channels set to 0."""
        return self.target(sigma) * self.keep


def apply_mask(target: PhiTarget, mask, mode: str = "zero") -> tuple[PhiTarget, torch.Tensor]:
    """(target, loss weights (T, C)) for a 0/1 channel ``mask`` ((C,) or (T, C); None keeps every channel).
    mode "zero": `MaskedTarget` and weight 1 on every channel; "free": the target as is, weights = mask."""
    if mode not in MASK_MODES:
        raise ValueError(f"masked: expected one of {MASK_MODES}, got {mode!r}")
    C = target(1.0).shape[1]
    m = expand_mask(mask, target.n, C)
    if mask is None or mode == "free":
        return target, m
    return MaskedTarget(target, m), torch.ones_like(m)


def channel_count(model, block="mid") -> int:
    """Channel count of one ``block`` (raises ValueError if unknown); `lib.model.hooks.block_channels` gives
    {block: count} for several."""
    name = check_block(model, block)
    return block_channels(model, name)[name]


def check_block(model, block):
    """The module name of ``block`` (a name or paper alias); ValueError if the model has no such block."""
    try:
        return resolve_blocks(model, block)[-1]
    except ValueError as e:
        raise ValueError(f"block: the model has no block {block!r} ({e})") from None


def make_target(model, target, block="mid", n_noise=10, seed=0, amp=False) -> PhiTarget:
    """Images (T, C, H, W) in [0, 1] -> ImageTarget; tensor (T, C) or (C,) -> ConstantTarget;
    callable sigma -> (T, C) -> CallableTarget; a PhiTarget passes through. Validates sizes."""
    C = channel_count(model, block)
    if isinstance(target, PhiTarget):
        t = target
    elif callable(target):
        v = torch.as_tensor(target(1.0))
        t = CallableTarget(target, n=v.reshape(-1, v.shape[-1]).shape[0] if v.ndim else 1)
    elif isinstance(target, torch.Tensor) and target.ndim == 4:
        check_images(target, "target", channels=model.config.in_channels, multiple=model.config.downsampling)
        t = ImageTarget(model, target, block, n_noise, seed, amp=amp)
    elif isinstance(target, torch.Tensor) and target.ndim in (1, 2):
        t = ConstantTarget(target)
    else:
        raise ValueError(f"target: expected images (T, C, H, W), a phi tensor (T, {C}) or (C,), or a callable "
                         f"sigma -> phi; got {type(target).__name__} {getattr(target, 'shape', '')}")
    probe = t(1.0)
    if probe.ndim == 0 or probe.shape[-1] != C:
        raise ValueError(f"target: phi has {probe.shape[-1] if probe.ndim else 0} channels, block {block!r} has {C}")
    if probe.numel() == 0:
        raise ValueError("target: no targets (0 rows)")
    if not torch.isfinite(probe).all():
        raise ValueError(f"target: phi holds {int((~torch.isfinite(probe)).sum())} NaN/inf values")
    return t


def centroid_target(model, images, block="mid", n_noise=10, seed=0, amp=False) -> ImageTarget:
    """One target: the mean of phi(x, sigma) over a set of images (a class or a cluster), at every sigma."""
    check_images(images, "images", channels=model.config.in_channels, multiple=model.config.downsampling)
    return ImageTarget(model, images, block, n_noise, seed, centroid=True, amp=amp)


def topk_mask(phi_vectors: torch.Tensor, k: int) -> torch.Tensor:
    """0/1 mask (T, C) keeping the ``k`` largest channels of each target phi (T, C) or (C,)."""
    v = phi_vectors.reshape(-1, phi_vectors.shape[-1])
    if not (isinstance(k, int) and 1 <= k <= v.shape[1]):
        raise ValueError(f"k: expected an integer in [1, {v.shape[1]}], got {k!r}")
    m = torch.zeros_like(v)
    return m.scatter_(1, v.topk(k, dim=1).indices, 1.0)


def expand_mask(mask, T, C):
    """A 0/1 channel mask ((C,), (1, C) or (T, C); None: every channel) as a float (T, C) tensor, checked."""
    if mask is None:
        return torch.ones(T, C)
    m = torch.as_tensor(mask).float().cpu()
    if m.shape[-1] != C or m.ndim > 2 or (m.ndim == 2 and m.shape[0] not in (1, T)):
        raise ValueError(f"mask: expected shape ({C},) or ({T}, {C}), got {tuple(m.shape)}")
    if ((m != 0) & (m != 1)).any() or (m.reshape(-1, C).sum(1) == 0).any():
        raise ValueError("mask: expected 0/1 values with at least one channel kept per target")
    return m.reshape(-1, C).expand(T, C).clone()


# ------------------------------------------------------------------------------------ projection
def _adam_step(m1, m2, g, t: int, lr, b1: float = 0.9, b2: float = 0.999):
    """One Adam update at iteration ``t`` (from 1): (new first moment, new second moment, step to subtract)."""
    m1 = b1 * m1 + (1 - b1) * g
    m2 = b2 * m2 + (1 - b2) * g * g
    return m1, m2, lr * (m1 / (1 - b1 ** t)) / ((m2 / (1 - b2 ** t)).sqrt() + 1e-8)


def project(model, y, target, mask, block="mid", method="adam", iters=100, lr=0.01, tol=0.01,
            max_move=None, amp=False, plateau=None, patience=5):
    """Move each image of ``y`` so the spatial mean of ``block`` matches ``target`` (N, C) on ``mask``.

    Loss per image: mean over masked channels of (mean_spatial a(y) - target)^2, gradient through a forward
    pass stopped after the block; ``lr`` is a float or an (N,) tensor of per-image step sizes. method
    "adam": a fresh Adam (lr) per call, each image stops when its loss
    is below ``tol`` x its first loss, at most ``iters`` iterations (the authors' projection). method
    "newton": ``iters`` steps y -= lr * (||r||^2 / ||J^T r||^2) J^T r, the step that zeroes the residual if
    J J^T were isotropic (Gauss-Newton with a scalar curvature); each step's norm per image is clipped to
    ``max_move`` x sqrt(dim) (e.g. the noise level). plateau (a fraction, e.g. 0.02): an image also stops
    when its loss fell by less than that fraction over the last ``patience`` iterations (its residual has
    stopped falling). Returns (y, nfe, iterations used per image, loss0, loss).
    """
    n, dim = y.shape[0], y[0].numel()
    y = y.detach().clone()
    lr_n = torch.as_tensor(lr, dtype=torch.float32, device=y.device).reshape(-1).expand(n)  # float or (N,)
    active = torch.arange(n, device=y.device)
    m1, m2 = torch.zeros_like(y), torch.zeros_like(y)
    used, loss0, loss = torch.zeros(n, dtype=torch.long), torch.zeros(n), torch.zeros(n)
    hist = torch.full((iters + 1, n), float("inf")) if plateau is not None else None
    nfe = 0
    for it in range(iters + 1):
        yi = y[active].requires_grad_(True)
        with torch.enable_grad():
            with autocast(y.device, amp), BlockRecorder(model, block, grad=True, stop=True) as rec:
                model(yi)
            r = (rec.outputs[block].float().mean((2, 3)) - target[active]) * mask[active]
            li = r.pow(2).sum(1) / mask[active].sum(1)
        nfe += 1
        li_c = li.detach().cpu()
        if it == 0:
            loss0[active.cpu()] = li_c
        loss[active.cpu()] = li_c
        done = (li_c <= tol * loss0[active.cpu()]) if method == "adam" else torch.zeros_like(li_c, dtype=torch.bool)
        if hist is not None:
            hist[it, active.cpu()] = li_c
            if it >= patience:
                done = done | (li_c > (1 - float(plateau)) * hist[it - patience, active.cpu()])
        if it == iters or bool(done.all()):
            break
        g, = torch.autograd.grad(li.sum(), yi)
        nfe += 1
        keep = ~done.to(y.device)
        act, g = active[keep], g[keep]
        if method == "adam":
            m1[act], m2[act], step = _adam_step(m1[act], m2[act], g, it + 1, lr_n[act].view(-1, 1, 1, 1))
        elif method == "newton":
            gn = g.flatten(1).pow(2).sum(1).clamp_min(1e-20)
            step = g * (2 * lr_n[act] * li.detach()[keep] / gn).view(-1, 1, 1, 1)
        else:
            raise ValueError(f"method: expected 'adam' or 'newton', got {method!r}")
        if max_move is not None:
            norm = step.flatten(1).norm(dim=1) / math.sqrt(dim)
            mm = torch.as_tensor(max_move, device=y.device).float().reshape(-1).expand(n)[act]
            step = step * (mm / norm.clamp_min(1e-12)).clamp(max=1.0).view(-1, 1, 1, 1)
        y[act] = y[act] - step.to(y.dtype)
        used[act.cpu()] += 1
        active = act
    return y.detach(), nfe, used, loss0, loss


def project_averaged(model, x, target, mask, sigma, noise, iters=10, lr=0.003, block="mid", amp=False):
    """Move each image of ``x`` so that its noise-averaged block mean, the mean over K draws of
    mean_spatial a(x + sigma z_k), matches ``target`` (N, C) on ``mask``: Adam (``lr``), ``iters`` steps,
    fresh draws each step from ``noise(step) -> (K, N, C, H, W)``. Unlike `project` (one draw, the noisy image
    itself moves), this matches phi(x, sigma) of a clean image, the quantity phi_rel_err measures (with other
    draws). Cost: each step is one forward stopped after the block and one backward on K x N images, counted
    as 2 K network calls. Returns (x, nfe, loss per image at the last step)."""
    x = x.detach().clone()
    m1, m2 = torch.zeros_like(x), torch.zeros_like(x)
    nfe, loss = 0, torch.zeros(x.shape[0])
    for it in range(iters):
        z = noise(it).to(x.device)
        K = z.shape[0]
        xi = x.requires_grad_(True)
        with torch.enable_grad():
            y = (xi.unsqueeze(0) + sigma * z).flatten(0, 1)
            with autocast(x.device, amp), BlockRecorder(model, block, grad=True, stop=True) as rec:
                model(y)
            a = rec.outputs[block].float().mean((2, 3)).reshape(K, x.shape[0], -1).mean(0)
            li = ((a - target) * mask).pow(2).sum(1) / mask.sum(1)
            g, = torch.autograd.grad(li.sum(), xi)
        nfe += 2 * K
        loss = li.detach().cpu()
        m1, m2, step = _adam_step(m1, m2, g, it + 1, lr)
        x = (x - step).detach()
    return x.detach(), nfe, loss
