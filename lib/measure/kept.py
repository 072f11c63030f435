"""What self-guided samples keep of their target: the factor-matching measure behind section 3's claim.

    readers = fit_readers(model, train_images, {"class": y, "background": b})   # on real images only
    rows = kept_table(model, readers, pool, pool_factors, target_idx, samples, n_samples, unconditional)
    nn = nearest_real(samples, pool, target_idx, n_samples)

A *reader* predicts one factor of the data (class, background, instance) from an image, and is trained on
real held-out images only, never on samples: a linear probe on phi(x, ANALYSIS_SIGMA) (`readout.fit_probe`)
and a kNN vote on the pixels (`readout.fit_knn`). For every factor and reader, `kept_table` reports the
fraction of images whose prediction matches their target's factor, for:

- ``guided``: the self-guided samples of the target (T x n_samples, target-major);
- ``unconditional``: samples drawn without guidance, matched to a random target (the exact expectation
  over all targets: sum over classes of P(prediction = c) x P(target factor = c));
- ``target``: the target itself (the reader's accuracy on these real images: the ceiling);
- ``second_real``: another real image of the pool with the same factor value as the target (what
  "keeping the factor" looks like for a real image that shares nothing else with the target).

Samples keep a factor when ``guided`` is clearly above ``unconditional`` (its 95% interval excludes it) and
approach ``second_real``. `nearest_real` asks the stricter question whether a sample is a near copy of its
target: the fraction whose nearest pool image (pixel RMSE) is the target, with chance 1 / pool size.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lib.core.checks import finite_images
from lib.measure.probe import wilson_interval
from lib.measure.readout import ANALYSIS_NOISE, ANALYSIS_SIGMA, KNN_K, Classifier, fit_knn, fit_probe
from lib.representation.phi import phi

KEPT_FACTORS = ("class", "background", "instance")  # the categorical factors the measure reads, if present
READERS = ("probe", "knn")
MIN_PER_VALUE = 3  # training images a factor value needs to enter a reader


@dataclass
class FactorReader:
    """Classifiers of one factor, fitted on real images: ``probe`` on phi(x, sigma), ``knn`` on pixels."""

    factor: str
    probe: Classifier
    knn: Classifier
    sigma: float
    n_noise: int
    seed: int


def dataset_factors(data, names=KEPT_FACTORS) -> dict[str, np.ndarray]:
    """{factor: labels} of an ImageSet for the categorical factors in ``names`` it has ("class" is its labels)."""
    out = {}
    for name in names:
        if name == "class":
            out[name] = np.asarray(data.labels)
        elif name in data.factors and np.issubdtype(np.asarray(data.factors[name]).dtype, np.integer):
            out[name] = np.asarray(data.factors[name])
    return out


def features(model, images, sigma=ANALYSIS_SIGMA, n_noise=ANALYSIS_NOISE, seed=0) -> dict[str, np.ndarray]:
    """What the two readers see: {"probe": phi(x, sigma) (N, C), "knn": pixels (N, D)}."""
    x = finite_images(images, "images")
    return {"probe": phi(model, x, sigma, n_noise=n_noise, seed=seed).numpy(),
            "knn": x.flatten(1).numpy().astype(np.float64)}


def fit_readers(model, images, factors: dict, sigma=ANALYSIS_SIGMA, n_noise=ANALYSIS_NOISE, seed=0,
                feats: dict | None = None) -> dict[str, FactorReader]:
    """One `FactorReader` per factor, fitted on real ``images`` (N, C, H, W) with labels ``factors``
    {name: (N,)}. Values with fewer than ``MIN_PER_VALUE`` images are left out of the fit (the probe's
    3-fold cross-validation needs them), factors left with fewer than two values are skipped.
    ``feats``: precomputed `features`."""
    f = feats or features(model, images, sigma, n_noise, seed)
    out = {}
    for name, y in factors.items():
        y = np.asarray(y)
        if len(y) != len(f["knn"]):
            raise ValueError(f"factors[{name!r}]: expected {len(f['knn'])} labels, got {len(y)}")
        vals, cnt = np.unique(y, return_counts=True)
        rows = np.isin(y, vals[cnt >= MIN_PER_VALUE])
        if len(np.unique(y[rows])) < 2:
            continue
        k = min(KNN_K, int(rows.sum()))
        out[name] = FactorReader(name, fit_probe(f["probe"][rows], y[rows], seed=seed),
                                 fit_knn(f["knn"][rows], y[rows], k=k), float(sigma), int(n_noise), int(seed))
    if not out:
        raise ValueError("factors: no factor with at least two values to read")
    return out


def predict(readers: dict, model, images, feats: dict | None = None) -> dict[str, dict[str, np.ndarray]]:
    """{factor: {reader: predicted labels (N,)}} for ``images`` (features computed once)."""
    r0 = next(iter(readers.values()))
    f = feats or features(model, images, r0.sigma, r0.n_noise, r0.seed + 7919)
    return {name: {"probe": r.probe.predict(f["probe"]), "knn": r.knn.predict(f["knn"])} for name, r in readers.items()}


def second_real(labels, target_idx, seed=0) -> np.ndarray:
    """For each target index, another index of ``labels`` with the same value (-1 if there is none)."""
    labels, rng = np.asarray(labels), np.random.default_rng(seed)
    out = []
    for t in np.asarray(target_idx):
        same = np.flatnonzero((labels == labels[t]) & (np.arange(len(labels)) != t))
        out.append(int(rng.choice(same)) if len(same) else -1)
    return np.asarray(out, dtype=int)


def expected_match(pred, labels) -> float:
    """Probability that a prediction drawn from ``pred`` equals a label drawn from ``labels`` (independent
    uniform draws): the match rate of samples assigned to random targets, without the draw's noise."""
    pred, labels = np.asarray(pred), np.asarray(labels)
    if not len(pred) or not len(labels):
        return float("nan")
    vals = np.union1d(pred, labels)
    p = np.array([(pred == v).mean() for v in vals])
    q = np.array([(labels == v).mean() for v in vals])
    return float((p * q).sum())


def kept_table(model, readers: dict, pool, pool_factors: dict, target_idx, samples, n_samples: int,
               unconditional=None, seed: int = 0) -> list[dict]:
    """One row per factor x reader (see the module docstring): guided (with its Wilson 95% interval),
    unconditional, target, second_real, n (samples), chance (majority rate of the targets' values), and
    pool_accuracy / pool_chance (the reader on every pool image, and the pool's majority rate).

    pool: real held-out images (P, C, H, W), disjoint from the readers' training images; pool_factors:
    {factor: (P,)}; target_idx: (T,) indices of the targets in the pool; samples: (T x n_samples, ...)."""
    pool = finite_images(pool, "pool")
    samples = finite_images(samples, "samples")
    tidx = np.asarray(target_idx, dtype=int)
    if tidx.ndim != 1 or not len(tidx) or tidx.min() < 0 or tidx.max() >= len(pool):
        raise ValueError(f"target_idx: expected indices into the pool of {len(pool)} images, got {tidx}")
    if not (isinstance(n_samples, int) and n_samples >= 1) or len(samples) != len(tidx) * n_samples:
        raise ValueError(f"samples: expected {len(tidx)} targets x {n_samples} samples = {len(tidx) * n_samples} "
                         f"images, got {len(samples)}")
    if samples.shape[1:] != pool.shape[1:]:
        raise ValueError(f"samples: expected images of shape {tuple(pool.shape[1:])} like the pool, "
                         f"got {tuple(samples.shape[1:])}")
    pred_pool = predict(readers, model, pool)
    pred_s = predict(readers, model, samples)
    pred_u = None if unconditional is None else predict(readers, model, finite_images(unconditional, "unconditional"))
    rows = []
    for name in readers:
        if name not in pool_factors:
            raise ValueError(f"pool_factors: no labels for factor {name!r} (have {sorted(pool_factors)})")
        y = np.asarray(pool_factors[name])
        if len(y) != len(pool):
            raise ValueError(f"pool_factors[{name!r}]: expected {len(pool)} labels, got {len(y)}")
        y_t = y[tidx]
        partner = second_real(y, tidx, seed)
        ok = partner >= 0
        _, cnt = np.unique(y_t, return_counts=True)
        _, cnt_pool = np.unique(y, return_counts=True)
        for reader in READERS:
            hit = pred_s[name][reader] == np.repeat(y_t, n_samples)
            lo, hi = wilson_interval(int(hit.sum()), len(hit))
            rows.append({
                "factor": name, "reader": reader, "n": int(len(hit)), "chance": float(cnt.max() / len(y_t)),
                "guided": float(hit.mean()), "guided_ci_low": lo, "guided_ci_high": hi,
                "unconditional": float("nan") if pred_u is None else expected_match(pred_u[name][reader], y_t),
                "target": float((pred_pool[name][reader][tidx] == y_t).mean()),
                "second_real": (float((pred_pool[name][reader][partner[ok]] == y_t[ok]).mean()) if ok.any()
                                else float("nan")),
                "pool_accuracy": float((pred_pool[name][reader] == y).mean()),
                "pool_chance": float(cnt_pool.max() / len(y)),
            })
    return rows


def kept_factor(rows: list[dict]) -> dict:
    """The (factor, reader) that reads real images best, as Cohen's kappa of its pool accuracy against the
    majority rate: the factor samples can be asked to keep. Returns that row."""
    if not rows:
        raise ValueError("rows: empty kept-factor table")

    def kappa(r):
        return (r["pool_accuracy"] - r["pool_chance"]) / max(1e-9, 1 - r["pool_chance"])
    return max(rows, key=kappa)


def nearest_real(samples, pool, target_idx, n_samples: int) -> dict:
    """Is each sample a near copy of its target? For every sample, the pool image nearest in pixel RMSE.

    Returns nearest_is_target (fraction of samples), target_rank_median (rank of the target among the pool
    by distance, 0 = nearest), chance (1 / pool size), distance_to_target and distance_to_nearest (means)."""
    s, p = finite_images(samples, "samples").flatten(1), finite_images(pool, "pool").flatten(1)
    tidx = torch.as_tensor(np.repeat(np.asarray(target_idx, dtype=int), n_samples))
    if len(tidx) != len(s):
        raise ValueError(f"samples: expected {len(tidx)} (targets x n_samples), got {len(s)}")
    d = torch.cdist(s.double(), p.double()).div(s.shape[1] ** 0.5)
    d_t = d[torch.arange(len(s)), tidx]
    rank = (d < d_t[:, None]).sum(1)
    return {"nearest_is_target": float((rank == 0).double().mean()),
            "target_rank_median": float(rank.double().median()), "chance": 1.0 / len(p),
            "distance_to_target": float(d_t.mean()), "distance_to_nearest": float(d.min(1).values.mean())}
