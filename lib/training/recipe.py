"""A training run's recipe: its settings (`TrainConfig`) and the functions of (seed, step) that fix its numbers.

The lr schedule (`lr_at`), the data order (`BatchStream`: epoch e is permutation (seed, e) of the pool), the noise
levels and draws (`sigma_from_uniform`, `noise_for_step`) and the snapshot points (`snapshot_due`) depend only on
the settings and the step, never on the process that runs them: this is what lets a resumed run reproduce an
uninterrupted one exactly and a continued leg (``lib.training.lineage``) pick up where the last one stopped.
``lib.training.trainer`` runs the recipe.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field

import torch

from lib.core.checks import amp_name, check_field_types, check_sigma
from lib.core.device import seeded_generator


@dataclass
class TrainConfig:
    """Every setting of a training run: output folder, network, data, optimizer and lr schedule, noise levels,
    checkpoints, snapshots and evidence, device and speed options (`scripts.train` takes each as a flag)."""
    out: str = "runs/tux32"
    preset: str = "cpu32"
    model: dict = field(default_factory=dict)  # UNetConfig overrides, e.g. {"norm": "batch"}
    dataset: str = "tuxphoto"
    size: int = 32
    n_train: int = 60000
    n_val: int = 256
    batch_size: int = 64
    lr: float = 1e-3
    # "cosine" | "step" (halve every lr_step_images) | "drop" (lr, then lr / 10 from lr_step_images on) | "constant"
    schedule: str = "cosine"
    lr_step_images: int = 5_000_000
    lr_min: float = 1e-5
    warmup_images: int = 0  # linear warmup of the lr from lr / warmup_steps to the schedule's value over these images
    total_images: int = 1_000_000
    sigma_dist: str = "u2"  # "u2" (sigma = u^2) | "uniform" | "loguniform" (on [sigma_min, sigma_max])
    sigma_max: float = 1.0
    sigma_min: float = 0.01  # lower end of "loguniform" only
    seed: int = 0
    ckpt_every: int = 500  # steps
    log_every: int = 50  # steps
    snapshot_every_images: int = 0  # 0: no snapshots
    snapshot_log: bool = False  # also snapshot when images seen crosses 1, 2, 5 x 10^k (10k, 20k, 50k, ...)
    evidence_every_images: int = 0  # 0: off; else log lib.training.evidence metrics on n_evidence held-out images
    n_evidence: int = 500
    device: str = "auto"
    amp: str = "auto"  # "auto" | "true" | "false" (also yes/no, on/off, 1/0): bf16 autocast
    channels_last: bool = True
    compile: bool = False  # torch.compile the training forward (`make bench` with --compile measures what it pays)
    ema_decay: float = 0.0  # > 0: keep an EMA of the weights beside the raw ones (in --out/ema/)
    threads: int = 0  # 0: the idle cores (lib.core.device.choose_threads; LIB_THREADS overrides)
    data_cache: str = "data/cache"

    def __post_init__(self):
        if isinstance(self.amp, bool):  # JSON true/false
            self.amp = amp_name(self.amp)
        check_field_types(self, "train config")
        self.amp = amp_name(self.amp)
        if self.schedule not in ("cosine", "step", "drop", "constant"):
            raise ValueError(f"schedule: expected cosine, step, drop or constant, got {self.schedule!r}")
        if self.sigma_dist not in SIGMA_DISTS:
            raise ValueError(f"sigma_dist: expected one of {', '.join(SIGMA_DISTS)}, got {self.sigma_dist!r}")
        if self.sigma_dist == "loguniform" and not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"sigma_min: expected 0 < sigma_min < sigma_max for loguniform, "
                             f"got {self.sigma_min} and {self.sigma_max}")
        for k in ("batch_size", "n_train", "n_val", "total_images", "ckpt_every", "log_every", "size"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"{k}: expected a positive integer, got {getattr(self, k)!r}")
        if not self.sigma_max > 0:
            raise ValueError(f"sigma_max: expected > 0, got {self.sigma_max}")
        check_sigma(self.sigma_max, "sigma_max")
        for k in ("lr", "lr_min"):
            if not (math.isfinite(getattr(self, k)) and getattr(self, k) > 0):
                raise ValueError(f"{k}: expected a finite number > 0, got {getattr(self, k)!r}")
        if self.warmup_images < 0:
            raise ValueError(f"warmup_images: expected >= 0 (0: no warmup), got {self.warmup_images}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"ema_decay: expected 0 (off) or a decay in (0, 1) such as 0.999, got {self.ema_decay!r}")
        if self.threads < 0:
            raise ValueError(f"threads: expected >= 0 (0: torch's default), got {self.threads}")

    @property
    def total_steps(self) -> int:
        """Optimizer steps in the run: ``total_images`` // ``batch_size`` (at least 1)."""
        return max(1, self.total_images // self.batch_size)

    def compatible(self) -> dict:
        """The fields that must not change when resuming."""
        d = dataclasses.asdict(self)
        keys = ["preset", "model", "dataset", "size", "n_train", "batch_size", "seed", "sigma_dist", "sigma_max"]
        return {k: d[k] for k in keys + (["sigma_min"] if self.sigma_dist == "loguniform" else [])}

    def schedule_fields(self) -> dict:
        """The fields that change the trained numbers from the step they change at: refused on resume
        unless --allow-changes, and then recorded in the run's history."""
        d = dataclasses.asdict(self)
        return {k: d[k] for k in ("lr", "schedule", "lr_step_images", "lr_min", "warmup_images", "total_images", "amp",
                                  "channels_last", "compile")}


SIGMA_DISTS = ("u2", "uniform", "loguniform")


def changes(old: dict, new: dict) -> dict:
    """{field: (old, new)} of the fields of ``old`` whose value differs in ``new``."""
    return {k: (v, new[k]) for k, v in old.items() if new[k] != v}


def sigma_from_uniform(cfg: TrainConfig, u: torch.Tensor) -> torch.Tensor:
    """The training noise levels for uniform draws ``u`` in [0, 1) under ``cfg.sigma_dist``."""
    if cfg.sigma_dist == "u2":
        return u * u * cfg.sigma_max
    if cfg.sigma_dist == "uniform":
        return u * cfg.sigma_max
    lo, hi = math.log(cfg.sigma_min), math.log(cfg.sigma_max)
    return torch.exp(lo + u * (hi - lo))


def log_milestones(upto: int) -> list[int]:
    """1, 2, 5 x 10^k images from 10,000 up to ``upto``: where ``snapshot_log`` keeps snapshots."""
    out, k = [], 4
    while 10 ** k <= upto:
        out += [m * 10 ** k for m in (1, 2, 5) if m * 10 ** k <= upto]
        k += 1
    return out


def snapshot_due(cfg: TrainConfig, images_seen: int) -> bool:
    """Whether the batch that brought the count to ``images_seen`` crossed a snapshot point."""
    before = images_seen - cfg.batch_size
    if cfg.snapshot_every_images and images_seen // cfg.snapshot_every_images > before // cfg.snapshot_every_images:
        return True
    return cfg.snapshot_log and any(before < m <= images_seen for m in log_milestones(images_seen))


def lr_at(cfg: TrainConfig, step: int) -> float:
    """The learning rate of step ``step``: the schedule's, times a linear warmup over ``warmup_images``."""
    warm = cfg.warmup_images // cfg.batch_size
    return _schedule_lr(cfg, step) * (min(1.0, (step + 1) / warm) if warm else 1.0)


def _schedule_lr(cfg: TrainConfig, step: int) -> float:
    if cfg.schedule == "constant":
        return cfg.lr
    if cfg.schedule == "step":
        return cfg.lr * 0.5 ** ((step * cfg.batch_size) // cfg.lr_step_images)
    if cfg.schedule == "drop":
        return cfg.lr if step * cfg.batch_size < cfg.lr_step_images else cfg.lr / 10
    t = min(1.0, step / cfg.total_steps)
    return cfg.lr_min + 0.5 * (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * t))


class BatchStream:
    """Global batch ``step`` of a seeded stream: epoch e is permutation (seed, e) of the pool."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.b, self.seed, self._perms = n, batch_size, seed, {}

    def _perm(self, epoch):
        if epoch not in self._perms:
            self._perms = {epoch: torch.randperm(self.n, generator=seeded_generator(self.seed, 11, epoch))}
        return self._perms[epoch]

    def indices(self, step: int) -> torch.Tensor:
        """Pool indices of global batch ``step``, crossing into the next epoch's permutation where needed."""
        k0 = step * self.b
        out, k = [], k0
        while k < k0 + self.b:
            e, p = divmod(k, self.n)
            take = min(self.n - p, k0 + self.b - k)
            out.append(self._perm(e)[p:p + take])
            k += take
        return torch.cat(out)


def noise_for_step(cfg: TrainConfig, step: int, shape, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """sigma (B,) and z ``shape`` of global batch ``step``, drawn on ``device`` (on a GPU: its own generator,
    no host work or copy per step; the draws then differ from the CPU's, but are as reproducible)."""
    dev = torch.device(device)
    g = seeded_generator(cfg.seed, 23, step, device=dev)
    u = torch.rand(shape[0], generator=g, device=dev)
    sigma = sigma_from_uniform(cfg, u)
    z = torch.randn(shape, generator=g, device=dev)
    return sigma, z
