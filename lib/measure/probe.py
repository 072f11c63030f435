"""Linear probe: how linearly decodable are labels from a representation (docs/method.md 5.7).

Here: the paper's probe noise level and the Wilson interval of an accuracy.

    lo, hi = wilson_interval(k, n)              # 95% interval of k correct out of n
    PAPER_PROBE_SIGMA                           # the authors' probe sigma, 50/255

The authors' script trains one linear layer (512 -> classes) on phi at sigma = 50/255. Every probe this
repository reports is `lib.measure.readout.probe` (the readout): logistic regression on the dataset's train
split with C chosen by cross-validation, scored on the test split, with kNN and controls beside it. (The
older single-split probe with a fixed C, which nothing but its tests used any more, is gone.)
"""
from __future__ import annotations

import math

from scipy.stats import norm

# The authors' probe noise level, 50 on their 0-255 scale, in our units (images in [0, 1]).
PAPER_PROBE_SIGMA = 50 / 255

__all__ = ["PAPER_PROBE_SIGMA", "wilson_interval"]


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
