"""Kernel distance between two sets of images or features (KID, Binkowski et al. 2018): how far a set of
samples is from real images, with an interval and a permutation null.

    kid(x, y)                        # unbiased MMD^2 with the cubic polynomial kernel, a float
    kid_test(x, y, seed=0)           # {"kid", "ci_low", "ci_high", "null_95", "n_x", "n_y"}

For feature vectors of dimension d, the kernel is k(a, b) = (a . b / d + 1)^3 and, for sets X (n vectors)
and Y (m vectors), the unbiased estimate of the squared maximum mean discrepancy is

    KID = 1/(n(n-1)) sum_{i != j} k(x_i, x_j) + 1/(m(m-1)) sum_{i != j} k(y_i, y_j) - 2/(nm) sum_{i,j} k(x_i, y_j).

It is 0 in expectation when X and Y come from the same distribution (and can then be slightly negative),
positive otherwise, and its expectation does not depend on n and m (unlike FID), so sets of a hundred
images can be compared. It depends on the scale of the features (pixels in [0, 1] and phi are different
spaces): compare KIDs within one space only, against references measured in that same space.

Two uncertainties, both from one kernel matrix of the pooled sets (no recomputation):

- ``ci_low, ci_high``: a 95% half-sampling interval. KID is recomputed on random halves of X and of Y
  (without replacement); for a U-statistic, the deviation of a half-sample estimate from the full one has
  about the variance of the full estimate (var(K_{n/2} - K_n) = var K_{n/2} - var K_n ~ 2 var K_n - var K_n),
  so the interval is KID - [97.5%, 2.5%] quantiles of (K_half - KID) (the "basic" bootstrap form);
- ``null_95``: the 95% quantile of KID when the pooled images are randomly reassigned to two sets of the same
  sizes (a permutation test): a KID above it tells the two sets apart at the 5% level.
"""
from __future__ import annotations

import numpy as np


def _features(a, name: str) -> np.ndarray:
    """(N, ...) images or features as a finite float64 (N, D) array; errors name the argument."""
    if hasattr(a, "detach"):  # torch tensors
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.ndim < 2 or not np.issubdtype(a.dtype, np.number):
        raise ValueError(f"{name}: expected a numeric array of N vectors or images (N, ...), got shape {a.shape} "
                         f"of {a.dtype}")
    a = a.reshape(len(a), -1).astype(np.float64)
    if len(a) < 2 or a.shape[1] < 1:
        raise ValueError(f"{name}: expected at least 2 vectors of dimension >= 1, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: holds NaN/inf values")
    return a


def _pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = _features(x, "x"), _features(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x, y: expected the same feature dimension, got {x.shape[1]} and {y.shape[1]}")
    return x, y


def polynomial_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """k(a_i, b_j) = (a_i . b_j / d + 1)^3 for rows of a (n, d) and b (m, d): an (n, m) matrix."""
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def _mmd2(K: np.ndarray, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Unbiased MMD^2 for each column of the 0/1 masks A, B (N, P) over the pooled kernel matrix K (N, N):
    column p selects set X (A[:, p] = 1) and set Y (B[:, p] = 1), disjoint."""
    d = np.diag(K)
    na, nb = A.sum(0), B.sum(0)
    KA, KB = K @ A, K @ B
    xx = ((A * KA).sum(0) - d @ A) / (na * (na - 1))
    yy = ((B * KB).sum(0) - d @ B) / (nb * (nb - 1))
    xy = (A * KB).sum(0) / (na * nb)
    return xx + yy - 2 * xy


def kid(x, y) -> float:
    """The unbiased KID (module docstring) between x (n, ...) and y (m, ...), n, m >= 2, rows flattened."""
    x, y = _pair(x, y)
    n, m = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())


def kid_test(x, y, n_resamples: int = 200, seed: int = 0) -> dict:
    """KID between x (n, ...) and y (m, ...) with its 95% half-sampling interval and the 95% quantile of its
    permutation null (module docstring), from ``n_resamples`` random halves and as many permutations.
    n, m >= 4 (a half needs two vectors). Returns {"kid", "ci_low", "ci_high", "null_95", "n_x", "n_y"}."""
    x, y = _pair(x, y)
    if len(x) < 4 or len(y) < 4:
        raise ValueError(f"x, y: expected at least 4 vectors each for the interval, got {len(x)} and {len(y)}")
    if not (isinstance(n_resamples, int) and n_resamples >= 10):
        raise ValueError(f"n_resamples: expected an integer >= 10, got {n_resamples!r}")
    n, m = len(x), len(y)
    z = np.concatenate([x, y])
    K = polynomial_kernel(z, z)
    rng = np.random.default_rng(seed)
    full_a = np.r_[np.ones(n), np.zeros(m)][:, None]
    value = float(_mmd2(K, full_a, 1 - full_a)[0])
    A, B = np.zeros((n + m, n_resamples)), np.zeros((n + m, n_resamples))
    for p in range(n_resamples):  # random halves of each set
        A[rng.choice(n, n // 2, replace=False), p] = 1
        B[n + rng.choice(m, m // 2, replace=False), p] = 1
    dev = _mmd2(K, A, B) - value
    P = np.zeros((n + m, n_resamples))
    for p in range(n_resamples):  # the pooled sets reassigned at random
        P[rng.permutation(n + m)[:n], p] = 1
    null = _mmd2(K, P, 1 - P)
    return {"kid": value, "ci_low": float(value - np.quantile(dev, 0.975)),
            "ci_high": float(value - np.quantile(dev, 0.025)), "null_95": float(np.quantile(null, 0.95)),
            "n_x": n, "n_y": m}
