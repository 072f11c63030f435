"""k-means on representations and how well clusters or classes separate (docs/method.md 5.6, Figs. 6, 15).

    lab = kmeans(phi, k=10, seed=0)                    # sklearn k-means++, n_init=10
    scores(lab, ds.labels)                             # {"nmi": ..., "ari": ...}
    r = separation(phi[lab == 0], phi[lab == 1])       # {"distance", "spread", "ratio"}
    seps = group_separations(phi, lab, max_pairs=200)  # the same for many pairs of groups
    emb = tsne(phi, seed=0)                            # (N, 2)

Separation of two groups A and B (our precise definition of the paper's separation plot):
    d      = ||mu_A - mu_B||                      distance between the centroids
    u      = (mu_A - mu_B) / d                    the line joining them
    s_G^2  = variance of {x . u : x in G}         each group's spread along that line (ddof 0)
    spread = sqrt(s_A^2 + s_B^2)                  the paper's spread (the std of the difference of two
                                                  projections, one from each group)
    ratio  = d / spread
Two Gaussian blobs with unit std along the line whose centroids are 4 apart have ratio 4 / sqrt(2) = 2.83;
the paper's reference lines are at ratio 1, 2 and 4; ImageNet classes sit at about 1 or below. Every
ratio is reported with the sizes of its two groups (a ratio between two tiny clusters is noisy).
"""
from __future__ import annotations

import contextlib

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score, normalized_mutual_info_score

from lib.core.profile import timed
from lib.measure.channels import as_numpy
from lib.measure.kmeans import torch_kmeans

# OpenMP/BLAS threads used by sklearn here. 1 by default: on a busy CPU (training in the background)
# OpenMP spin-waiting made k-means and t-SNE 20-40x slower than one thread. None: library default.
THREADS: int | None = 1


def limit_threads(threads: int | None = None):
    """Context manager limiting OpenMP/BLAS threads to ``threads`` (default `THREADS`; None: no limit)."""
    from threadpoolctl import threadpool_limits
    n = THREADS if threads is None else threads
    return contextlib.nullcontext() if n is None else threadpool_limits(int(n))

__all__ = ["THREADS", "limit_threads", "kmeans", "scores", "score_table", "separation", "separation_ratio",
           "group_separations", "tsne"]


def _labels(y, name: str, n: int | None = None) -> np.ndarray:
    a = np.asarray(y)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{name}: expected a non-empty 1-D label array, got shape {a.shape}")
    if n is not None and len(a) != n:
        raise ValueError(f"{name}: expected {n} labels, got {len(a)}")
    return a


TORCH_KMEANS_ROWS = 50_000  # from this many rows on, kmeans() switches to the torch implementation


@timed("kmeans")
def kmeans(X, k: int, seed: int = 0, n_init: int = 10, return_centers: bool = False, max_iter: int = 300):
    """k-means (sklearn, k-means++ initialisation, ``n_init`` restarts, seeded) on the rows of X (N, D);
    from TORCH_KMEANS_ROWS rows on, lib.measure.kmeans (k-means++ + Lloyd in torch, GPU when present).

    Returns the cluster label of each row, an (N,) int64 array (and the (k, D) centroids when
    return_centers=True).
    """
    a = as_numpy(X, "X")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= a.shape[0]:
        raise ValueError(f"k: expected an integer in [1, {a.shape[0]}] (number of rows), got {k!r}")
    if a.shape[0] >= TORCH_KMEANS_ROWS:  # paper scale: torch k-means (GPU when present, lib.measure.kmeans)
        lab, centers, _ = torch_kmeans(a, int(k), int(seed), max_iter=int(max_iter))
        lab, centers = np.asarray(lab, np.int64), np.asarray(centers)
        return (lab, centers) if return_centers else lab
    km = KMeans(n_clusters=int(k), init="k-means++", n_init=int(n_init), random_state=int(seed),
                max_iter=int(max_iter))
    with limit_threads():
        lab = km.fit_predict(a).astype(np.int64)
    return (lab, km.cluster_centers_) if return_centers else lab


def scores(pred, truth) -> dict:
    """Agreement of a clustering ``pred`` with labels ``truth`` (any hashable values): NMI (arithmetic
    normalisation, sklearn's default), AMI (NMI corrected for chance) and ARI. All are 1 for a
    perfect match (up to relabelling); AMI and ARI are ~0 for chance, while NMI grows with the
    number of clusters and labels even for random ones (compare NMI only at equal k and labels)."""
    p = _labels(pred, "pred")
    t = _labels(truth, "truth", len(p))
    return {"nmi": float(normalized_mutual_info_score(t, p)), "ami": float(adjusted_mutual_info_score(t, p)),
            "ari": float(adjusted_rand_score(t, p))}


def score_table(representations: dict, factors: dict, k="factor", seed: int = 0, n_init: int = 10,
                max_k_frac: float = 0.2) -> list[dict]:
    """k-means on each representation ({name: (N, D)}) scored against each labelling ({factor: (N,)}).

    k="factor": one clustering per factor with k = its number of distinct values (capped at
    ``max_k_frac`` * N); an int: one clustering with that k for all factors. Returns rows
    {"representation", "factor", "k", "nmi", "ami", "ari"} (list of dicts, ready for a DataFrame).
    """
    if not isinstance(representations, dict) or not representations:
        raise ValueError("representations: expected a non-empty dict {name: (N, D) array}")
    if not isinstance(factors, dict) or not factors:
        raise ValueError("factors: expected a non-empty dict {name: (N,) labels}")
    rows = []
    for rname, X in representations.items():
        a = as_numpy(X, f"representations[{rname!r}]")
        cache = {}
        for fname, y in factors.items():
            y = _labels(y, f"factors[{fname!r}]", a.shape[0])
            kk = min(len(np.unique(y)), max(2, int(max_k_frac * a.shape[0]))) if k == "factor" else int(k)
            if kk not in cache:
                cache[kk] = kmeans(a, kk, seed=seed, n_init=n_init)
            rows.append({"representation": rname, "factor": fname, "k": kk, **scores(cache[kk], y)})
    return rows


def separation(Xa, Xb) -> dict:
    """Centroid distance, spread along the joining line and their ratio for groups Xa (Na, D) and
    Xb (Nb, D); see the module docstring for the definition. Each group needs >= 2 rows."""
    a, b = as_numpy(Xa, "Xa"), as_numpy(Xb, "Xb")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Xb: expected {a.shape[1]} columns like Xa, got {b.shape[1]}")
    for name, g in (("Xa", a), ("Xb", b)):
        if g.shape[0] < 2:
            raise ValueError(f"{name}: need at least 2 rows to measure a spread, got {g.shape[0]}")
    diff = a.mean(0) - b.mean(0)
    d = float(np.linalg.norm(diff))
    if d == 0:
        return {"distance": 0.0, "spread": float("nan"), "ratio": 0.0, "n_a": int(a.shape[0]), "n_b": int(b.shape[0])}
    u = diff / d
    spread = float(np.sqrt((a @ u).var() + (b @ u).var()))
    return {"distance": d, "spread": spread, "ratio": d / spread if spread > 0 else float("inf"),
            "n_a": int(a.shape[0]), "n_b": int(b.shape[0])}


def separation_ratio(Xa, Xb) -> float:
    """``separation(Xa, Xb)["ratio"]``: centroid distance over the spread sqrt(s_A^2 + s_B^2) along the joining line."""
    return separation(Xa, Xb)["ratio"]


def group_separations(X, labels, pairs=None, max_pairs: int | None = 500, min_size: int = 2,
                      seed: int = 0) -> dict:
    """`separation` for pairs of groups of ``labels`` (groups with fewer than ``min_size`` rows are
    skipped). pairs: explicit list of (label_a, label_b), else all pairs, subsampled (seeded) to
    ``max_pairs``. Returns a dict of (P,) arrays: a, b, distance, spread, ratio, n_a, n_b (group sizes)."""
    a = as_numpy(X, "X")
    lab = _labels(labels, "labels", a.shape[0])
    vals, counts = np.unique(lab, return_counts=True)
    ok = vals[counts >= max(2, int(min_size))]
    if pairs is None:
        ii, jj = np.triu_indices(len(ok), 1)
        pairs = list(zip(ok[ii], ok[jj]))
        if max_pairs is not None and len(pairs) > max_pairs:
            sel = np.sort(np.random.default_rng(seed).choice(len(pairs), int(max_pairs), replace=False))
            pairs = [pairs[i] for i in sel]
    rows = {"a": [], "b": [], "distance": [], "spread": [], "ratio": [], "n_a": [], "n_b": []}
    okset = set(ok.tolist())
    for p, q in pairs:
        if p not in okset or q not in okset:
            raise ValueError(f"pairs: group {p!r} or {q!r} missing or smaller than {min_size} rows")
        s = separation(a[lab == p], a[lab == q])
        rows["a"].append(p), rows["b"].append(q)
        for key in ("distance", "spread", "ratio", "n_a", "n_b"):
            rows[key].append(s[key])
    return {k: np.asarray(v) for k, v in rows.items()}


def tsne(X, seed: int = 0, perplexity: float = 30.0, pca_dims: int | None = 50) -> np.ndarray:
    """2-D t-SNE embedding (sklearn, PCA initialisation, seeded) of the rows of X; the rows are first
    reduced to ``pca_dims`` principal components when D is larger. Perplexity is capped at (N-1)/3."""
    a = as_numpy(X, "X")
    n = a.shape[0]
    if n < 5:
        raise ValueError(f"X: t-SNE needs at least 5 rows, got {n}")
    if not perplexity > 0:
        raise ValueError(f"perplexity: expected > 0, got {perplexity!r}")
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    with limit_threads():
        if pca_dims is not None and a.shape[1] > pca_dims and n > pca_dims:
            a = PCA(n_components=int(pca_dims), random_state=int(seed)).fit_transform(a)
        perp = float(min(perplexity, (n - 1) / 3))
        return TSNE(n_components=2, perplexity=perp, init="pca", random_state=int(seed)).fit_transform(a)
