"""Linear probe: how linearly decodable are labels from a representation (docs/method.md 5.7).

Here: the paper's probe noise level and the Wilson interval of an accuracy.

    lo, hi = wilson_interval(k, n)              # 95% interval of k correct out of n
    PAPER_PROBE_SIGMA                           # the authors' probe sigma, 50/255

The authors' script trains one linear layer (512 -> classes) on phi at sigma = 50/255. Every probe this
repository reports is `lib.measure.readout.probe` (the readout): logistic regression on the dataset's train
split with C chosen by cross-validation, scored on the test split, with kNN and controls beside it.
`linear_probe` is the older single-split probe with a fixed C (one seeded stratified split of one set of
rows, C = 1): no notebook or command uses it any more; issue 26 (item 1, one readout) decides whether it goes.
"""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.stats import norm

from lib.measure.channels import as_numpy
from lib.measure.clustering import limit_threads

# The authors' probe noise level, 50 on their 0-255 scale, in our units (images in [0, 1]).
PAPER_PROBE_SIGMA = 50 / 255

__all__ = ["PAPER_PROBE_SIGMA", "wilson_interval", "linear_probe", "train_test_split_indices"]


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion of ``k`` successes in ``n`` trials."""
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n: expected a positive integer number of trials, got {n!r}")
    if int(k) != k or not 0 <= k <= n:
        raise ValueError(f"k: expected an integer in [0, n={n}], got {k!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence: expected a number in (0, 1), got {confidence!r}")
    z = norm.ppf(0.5 + confidence / 2)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    lo = 0.0 if k == 0 else max(0.0, float(centre - half))
    hi = 1.0 if k == n else min(1.0, float(centre + half))
    return lo, hi


def train_test_split_indices(labels, test_frac: float = 0.3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified, seeded split of range(N) into (train, test) index arrays (each class contributes
    round(test_frac * its count) test items, at least one when it has >= 2 items)."""
    y = np.asarray(labels)
    if y.ndim != 1 or y.size < 2:
        raise ValueError(f"labels: expected a 1-D array with >= 2 entries, got shape {y.shape}")
    if not 0 < test_frac < 1:
        raise ValueError(f"test_frac: expected a fraction in (0, 1), got {test_frac!r}")
    rng = np.random.default_rng(seed)
    test = []
    for v in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == v))
        nt = int(round(test_frac * len(idx)))
        if len(idx) >= 2:
            nt = min(max(nt, 1), len(idx) - 1)
        test.append(idx[:nt])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(y)), test)
    return train, test


def linear_probe(X, labels, test_frac: float = 0.3, seed: int = 0, C: float = 1.0, max_iter: int = 2000,
                 train_idx=None, test_idx=None, confidence: float = 0.95) -> dict:
    """Held-out accuracy of a linear classifier of ``labels`` from the rows of X (N, D).

    Standardize with the training rows' mean/std, fit a multinomial logistic regression (L2, inverse
    strength C), predict the test rows. Give train_idx/test_idx, or a stratified split with
    ``test_frac`` is drawn from ``seed``. Returns accuracy, ci_low, ci_high (Wilson), n_train,
    n_test, train_accuracy, chance (the majority-class rate of the test rows) and pred (test
    predictions) and test_idx.
    """
    a = as_numpy(X, "X")
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != a.shape[0]:
        raise ValueError(f"labels: expected {a.shape[0]} labels (one per row of X), got shape {y.shape}")
    if len(np.unique(y)) < 2:
        raise ValueError("labels: need at least two classes")
    if not C > 0:
        raise ValueError(f"C: expected > 0, got {C!r}")
    if (train_idx is None) != (test_idx is None):
        raise ValueError("train_idx/test_idx: give both or neither")
    if train_idx is None:
        train_idx, test_idx = train_test_split_indices(y, test_frac, seed)
    train_idx, test_idx = np.asarray(train_idx), np.asarray(test_idx)
    if len(train_idx) == 0 or len(test_idx) == 0:
        raise ValueError("train_idx/test_idx: both splits must be non-empty")
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler
    sc = StandardScaler().fit(a[train_idx])
    xtr, xte = sc.transform(a[train_idx]), sc.transform(a[test_idx])
    clf = LogisticRegression(C=float(C), max_iter=int(max_iter), random_state=int(seed))
    from sklearn.exceptions import ConvergenceWarning
    with warnings.catch_warnings(), limit_threads():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.filterwarnings("ignore", message="The number of unique classes")
        clf.fit(xtr, y[train_idx])
        pred = clf.predict(xte)
        train_acc = float((clf.predict(xtr) == y[train_idx]).mean())
    k = int((pred == y[test_idx]).sum())
    lo, hi = wilson_interval(k, len(test_idx), confidence)
    _, cnt = np.unique(y[test_idx], return_counts=True)
    return {"accuracy": k / len(test_idx), "ci_low": lo, "ci_high": hi, "n_train": int(len(train_idx)),
            "n_test": int(len(test_idx)), "train_accuracy": train_acc,
            "chance": float(cnt.max() / len(test_idx)), "pred": pred, "test_idx": test_idx}
