"""Distances in representation space and between the conditional densities they induce (docs/method.md 5.5,
Fig. 8).

    nn = nearest_neighbours(phi, queries=[0, 5], k=5)        # (Q, k) indices, self excluded
    d = class_distance_distributions(phi, labels)            # {"same": ..., "diff": ...}
    auc = distance_auc(d["same"], d["diff"])                 # P(same-class pair is closer)
    cd = conditional_density_distance(model, x1, x2, sigmas) # (P,) one per image pair
    band_ratio(phi_sq_dist, cd)                              # spread of slopes through the origin

Conditional-density distance: our estimator (docs/method.md 7)
---------------------------------------------------------
The authors' earlier work compares two densities p, q through their noisy versions p_s, q_s (s = sigma):
    KL(p || q) = integral_0^inf  s * E_{y ~ p_s} || grad log p_s(y) - grad log q_s(y) ||^2  ds.
Here p = p(x | phi1) and q = p(x | phi2). We estimate, for image pair (x1, x2) with targets
t_j(s) = phi(x_j, s) (noise-averaged middle-block means at the current noise level):

  1. y = x1 + s z  (z ~ N(0, I), ``n_noise`` draws): a draw from p_s, taking x1 as a sample of
     p(x | phi1) (x1 has that representation by definition).
  2. Guided projection P_j(y): ``steps`` Adam steps (step ``lr``, a fresh optimizer) on the pixels
     of y minimizing mean_c (mean_spatial a4(y') - t_j(s))^2, through the forward pass stopped after
     the middle block (`lib.model.hooks.BlockRecorder(stop=True, grad=True)`). This is the self-guided
     projection of docs/method.md 6, truncated to a few steps.
  3. Guided score estimate (Miyasawa/Tweedie applied after the projection):
        score_j(y) ~= (D(P_j(y)) - y) / s^2,
     so the score difference is  (D(P_1(y)) - D(P_2(y))) / s^2  (the common y cancels).
  4. Delta(s) = E_z || D(P_1 y) - D(P_2 y) ||^2 / s^4  (sum over pixels, mean over draws); with
     symmetric=True also with y drawn around x2 and the two results averaged (symmetrized KL).
  5. distance = integral of s * Delta(s) ds over the grid ``sigmas`` (trapezoid rule).

The integral is truncated to [min(sigmas), max(sigmas)]; its value depends on steps/lr, so compare
distances computed with the same settings only (the analysis uses ranks and slope ratios).
Cost per pair and sigma: 2 * (1 + symmetric) * n_noise * (steps forward+backward passes to the
middle block + 1 full forward).
"""
from __future__ import annotations

import numpy as np
import torch

from lib.core.checks import check_images, check_sigma
from lib.core.device import autocast, per_sample_noise
from lib.measure.channels import as_numpy
from lib.measure.denoising import EVAL_SIGMAS, denoise
from lib.model.hooks import resolve_blocks
from lib.representation.phi import phi
from lib.sampling.guidance import channel_count, project

__all__ = ["pairwise_distances", "nearest_neighbours", "class_distance_distributions", "distance_auc",
           "same_class_auc", "project_to_phi", "conditional_density_distance", "band_ratio"]


def pairwise_distances(X, Y=None, squared: bool = False) -> np.ndarray:
    """Euclidean distances between the rows of X (N, D) and Y (M, D) (default Y = X): (N, M)."""
    a = as_numpy(X, "X")
    b = a if Y is None else as_numpy(Y, "Y")
    if b.shape[1] != a.shape[1]:
        raise ValueError(f"Y: expected {a.shape[1]} columns like X, got {b.shape[1]}")
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T
    d2 = np.maximum(d2, 0)
    if Y is None:
        np.fill_diagonal(d2, 0)
    return d2 if squared else np.sqrt(d2)


def nearest_neighbours(X, queries, k: int = 5, exclude_self: bool = True) -> np.ndarray:
    """Indices of the ``k`` nearest rows of X (Euclidean) to each query row index, nearest first:
    (Q, k). With exclude_self the query itself is not returned."""
    a = as_numpy(X, "X")
    q = np.atleast_1d(np.asarray(queries))
    if q.size == 0 or not np.issubdtype(q.dtype, np.integer) or q.min() < 0 or q.max() >= len(a):
        raise ValueError(f"queries: expected row indices in [0, {len(a)}), got {queries!r}")
    if not 1 <= int(k) <= len(a) - int(exclude_self):
        raise ValueError(f"k: expected 1 <= k <= {len(a) - int(exclude_self)}, got {k!r}")
    d = pairwise_distances(a[q], a, squared=True)
    if exclude_self:
        d[np.arange(len(q)), q] = np.inf
    return np.stack([np.argsort(row, kind="stable")[:int(k)] for row in d])


def class_distance_distributions(X, labels, max_pairs: int | None = None, seed: int = 0,
                                 chunk: int = 512) -> dict:
    """Euclidean distances of image pairs with the same label and with different labels.

    All pairs i < j are used, or ``max_pairs`` of them drawn at random (seeded, with replacement,
    i != j) when given and smaller. Distances are computed in row chunks (memory ~ chunk x N).
    Returns {"same": (S,), "diff": (D,)}.
    """
    a = as_numpy(X, "X")
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(a):
        raise ValueError(f"labels: expected {len(a)} labels (one per row of X), got shape {y.shape}")
    n = len(a)
    if n < 2:
        raise ValueError("X: need at least 2 rows")
    sq = (a * a).sum(1)
    if max_pairs is None or n * (n - 1) // 2 <= int(max_pairs):
        same, diff = [], []
        for s0 in range(0, n - 1, int(chunk)):
            rows = np.arange(s0, min(n - 1, s0 + int(chunk)))
            d2 = sq[rows, None] + sq[None] - 2 * a[rows] @ a.T
            d = np.sqrt(np.maximum(d2, 0))
            mask = np.arange(n)[None] > rows[:, None]
            eq = y[rows, None] == y[None]
            same.append(d[mask & eq])
            diff.append(d[mask & ~eq])
        return {"same": np.concatenate(same), "diff": np.concatenate(diff)}
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, int(max_pairs) * 2)
    j = rng.integers(0, n, int(max_pairs) * 2)
    keep = i != j
    i, j = i[keep][:int(max_pairs)], j[keep][:int(max_pairs)]
    d = np.concatenate([np.linalg.norm(a[i[k:k + chunk]] - a[j[k:k + chunk]], axis=1)
                        for k in range(0, len(i), int(chunk))])
    same = y[i] == y[j]
    return {"same": d[same], "diff": d[~same]}


def distance_auc(same, diff) -> float:
    """ROC AUC of (small) distance as a detector of same-class pairs: the probability that a random
    same-class pair is closer than a random different-class pair (ties count half). 1 = perfect,
    0.5 = chance."""
    s = as_numpy(same, "same", ndim=(1,))
    d = as_numpy(diff, "diff", ndim=(1,))
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(np.r_[np.ones(len(s)), np.zeros(len(d))], -np.r_[s, d]))


def same_class_auc(X, labels, max_pairs: int | None = None, seed: int = 0) -> float:
    """`distance_auc` of the `class_distance_distributions` of X."""
    dd = class_distance_distributions(X, labels, max_pairs, seed)
    if len(dd["same"]) == 0 or len(dd["diff"]) == 0:
        raise ValueError("labels: need both same-label and different-label pairs")
    return distance_auc(dd["same"], dd["diff"])


def partial_spearman(x, y, z) -> float:
    """Spearman correlation of x and y with z partialled out: the partial Pearson correlation of the ranks,
    (r_xy - r_xz r_yz) / sqrt((1 - r_xz^2)(1 - r_yz^2)). Here: does the phi distance track the density
    distance beyond what the pixel distance already explains?"""
    from scipy.stats import rankdata
    r = [rankdata(np.asarray(v, dtype=np.float64)) for v in (x, y, z)]
    if len({len(v) for v in r}) != 1 or len(r[0]) < 4:
        raise ValueError(f"x, y, z: expected three arrays of equal length >= 4, got lengths {[len(v) for v in r]}")
    c = np.corrcoef(np.stack(r))
    rxy, rxz, ryz = c[0, 1], c[0, 2], c[1, 2]
    den = np.sqrt((1 - rxz ** 2) * (1 - ryz ** 2))
    return float((rxy - rxz * ryz) / den) if den > 0 else float("nan")


def band_ratio(x, y, q: float = 0.05) -> float:
    """Width of the band of slopes through the origin holding the (x, y) points: the (1-q) quantile
    of y/x divided by its q quantile (pairs with x <= 0 are dropped). The paper finds ~3 for
    phi-distance vs conditional-density distance."""
    a, b = as_numpy(x, "x", ndim=(1,)), as_numpy(y, "y", ndim=(1,))
    if len(a) != len(b):
        raise ValueError(f"y: expected {len(a)} values like x, got {len(b)}")
    if not 0 <= q < 0.5:
        raise ValueError(f"q: expected a quantile in [0, 0.5), got {q!r}")
    ok = a > 0
    if ok.sum() < 2:
        raise ValueError("x: need at least 2 positive values")
    r = b[ok] / a[ok]
    lo, hi = np.quantile(r, [q, 1 - q])
    return float(hi / lo) if lo > 0 else float("inf")


def project_to_phi(model, y: torch.Tensor, target: torch.Tensor, steps: int = 10, lr: float = 0.01,
                   block: str = "mid", plateau: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Move the pixels of ``y`` (N, C, H, W) so that the spatial mean of ``block`` approaches ``target``
    (N, C_block): ``steps`` Adam steps of size ``lr`` (float, or an (N,) tensor of per-image step
    sizes) on mean_c (mean_spatial a(y') - target)^2, with the forward pass stopped after the block.
    With ``plateau`` (e.g. 0.02), ``steps`` is a maximum: an image stops once its loss fell by less than
    that fraction over 5 steps (`lib.sampling.guidance.project`). Returns (projected y, per-image loss after /
    before) without gradients. Model weights get no gradients. The Adam loop is `lib.sampling.guidance.project`
    (shared with the samplers)."""
    name = resolve_blocks(model, block)[0]
    if not isinstance(y, torch.Tensor) or y.ndim != 4:
        raise ValueError(f"y: expected an (N, C, H, W) tensor, got {getattr(y, 'shape', type(y))}")
    if not isinstance(target, torch.Tensor) or target.ndim != 2 or target.shape[0] != y.shape[0]:
        raise ValueError(f"target: expected an ({y.shape[0]}, C) tensor, got {getattr(target, 'shape', type(target))}")
    if int(steps) < 0:
        raise ValueError(f"steps: expected >= 0, got {steps!r}")
    if target.shape[1] != channel_count(model, name):
        raise ValueError(f"target: expected shape ({y.shape[0]}, {channel_count(model, name)}) for block "
                         f"{block!r}, got {tuple(target.shape)}")
    dev = next(model.parameters()).device
    tgt = target.detach().to(dev, torch.float32)
    yp = y.detach().to(dev, torch.float32)
    lr_n = lr.to(dev, torch.float32) if torch.is_tensor(lr) else float(lr)
    yp, _, _, first, last = project(model, yp, tgt, torch.ones_like(tgt), name, method="adam",
                                    iters=int(steps), lr=lr_n, tol=0.0, plateau=plateau)
    ratio = torch.where(first > 0, last / first.clamp_min(1e-30), torch.zeros_like(last))
    return yp, ratio.cpu()


def conditional_density_distance(model, x1: torch.Tensor, x2: torch.Tensor, sigmas=EVAL_SIGMAS,
                                 n_noise: int = 1, steps: int = 6, lr: float = 0.02, phi_noise: int = 4,
                                 symmetric: bool = True, seed: int = 0, batch_size: int = 256,
                                 amp: bool | str = False, return_curve: bool = False, progress: bool = False,
                                 plateau: float | None = None):
    """Distance between p(x | phi(x1)) and p(x | phi(x2)) for each image pair (row i of x1, x2).

    Estimator: see the module docstring (guided scores from a truncated self-guided projection,
    integrated over sigma with weight sigma). x1, x2: (P, C, H, W) in [0, 1]. lr: the Adam step size
    at every sigma (0.01-0.05 cut the phi-matching loss toward another image's phi by 5-20x in 6 steps
    at sigma 0.05-0.8 on the 32x32 model). All (pair, sigma, direction, draw, target) combinations are
    projected together in batches of ``batch_size``. amp: bf16 autocast for the forward passes
    (see `lib.core.device.autocast`). Returns a (P,) float64 array; with return_curve=True also the
    (len(sigmas), P) array of Delta(s) and, per sigma, the median loss ratio (after/before) of the
    projections toward the other image's phi (the ones that have to move y). plateau: run each projection
    until its loss stops falling (see `project_to_phi`), ``steps`` being the maximum.
    """

    sig = _check_cdd_args(model, x1, x2, sigmas, n_noise, steps)
    P, S, R, D = x1.shape[0], len(sig), int(n_noise), 2 if symmetric else 1
    dev = next(model.parameters()).device
    y, t1, t2, lr_all = _projection_rows(model, x1, x2, sig, R, D, lr, phi_noise, seed, amp)
    # 2. project every row toward both targets, denoise, and take the squared difference of the two denoised
    n = y.shape[0]
    half = max(1, int(batch_size) // 2)
    sq = torch.empty(n)
    ratio = torch.empty(2, n)
    it = range(0, n, half)
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="conditional-density distance", leave=False)
    for b0 in it:
        sl = slice(b0, b0 + half)
        m = y[sl].shape[0]
        yy = torch.cat([y[sl], y[sl]])
        with autocast(dev, amp):
            yp, rr = project_to_phi(model, yy, torch.cat([t1[sl], t2[sl]]), steps,
                                    torch.cat([lr_all[sl], lr_all[sl]]), plateau=plateau)
        den = denoise(model, yp, batch_size=2 * m, amp=amp)
        sq[sl] = (den[:m] - den[m:]).flatten(1).pow(2).sum(1)
        ratio[0, sl], ratio[1, sl] = rr[:m], rr[m:]
    # 3. Delta(sigma) per pair, integrated over sigma with weight sigma
    sq = sq.double().numpy().reshape(S, D, P, R)
    delta = sq.mean(axis=(1, 3)) / sig[:, None] ** 4
    ratio = ratio.double().numpy().reshape(2, S, D, P * R)       # target t1 / t2, sigma, direction
    other = np.concatenate([ratio[1, :, 0]] + ([ratio[0, :, 1]] if D == 2 else []), axis=1)
    ratios = np.median(other, axis=1)
    dist = np.trapezoid(sig[:, None] * delta, sig, axis=0)
    return (dist, delta, ratios) if return_curve else dist


def _check_cdd_args(model, x1, x2, sigmas, n_noise, steps) -> np.ndarray:
    """`conditional_density_distance`'s inputs checked; its sigmas as a float64 array."""
    C = model.config.in_channels
    check_images(x1, "x1", channels=C, multiple=model.config.downsampling)
    check_images(x2, "x2", channels=C, multiple=model.config.downsampling)
    if x1.shape != x2.shape:
        raise ValueError(f"x2: expected the shape of x1 {tuple(x1.shape)}, got {tuple(x2.shape)}")
    sig = np.asarray([check_sigma(s, "sigmas") for s in np.atleast_1d(sigmas)], dtype=np.float64)
    if len(sig) < 2 or (sig <= 0).any() or (np.diff(sig) <= 0).any():
        raise ValueError(f"sigmas: expected >= 2 increasing positive noise levels, got {sigmas!r}")
    if int(n_noise) < 1 or int(steps) < 0:
        raise ValueError(f"n_noise/steps: expected n_noise >= 1 and steps >= 0, got {n_noise!r}, {steps!r}")
    return sig


def _projection_rows(model, x1, x2, sig, R, D, lr, phi_noise, seed, amp):
    """1. The rows to project: for each sigma, direction (noisy x1, and x2 when symmetric), pair and draw, the
    noisy image y with both targets phi(x1, sigma) and phi(x2, sigma) and its step size. Returns (y, t1, t2, lr)."""
    P = x1.shape[0]
    ys, t1s, t2s, lrs = [], [], [], []
    for si, s in enumerate(sig):
        t1 = phi(model, x1, s, phi_noise, blocks="mid", seed=seed + 7919 * si, amp=amp)
        t2 = phi(model, x2, s, phi_noise, blocks="mid", seed=seed + 7919 * si + 1, amp=amp)
        for di, xa in enumerate([x1, x2][:D]):
            z = per_sample_noise(P, xa.shape[1:], seed + 104729 * (si + 1) + di, draws=R)
            ys.append((xa.float().unsqueeze(1) + float(s) * z).reshape(P * R, *xa.shape[1:]))
            t1s.append(t1.repeat_interleave(R, 0))
            t2s.append(t2.repeat_interleave(R, 0))
            lrs.append(torch.full((P * R,), float(lr)))
    return torch.cat(ys), torch.cat(t1s), torch.cat(t2s), torch.cat(lrs)
