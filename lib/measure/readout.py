"""The readout: how every claim about a representation is measured in this repository.

    live = liveness(phi)                      # {"varying_fraction", "mean_cosine", "degenerate", "n"}
    eff = effective_channels(phi)             # PR x C per image: how many channels are active
    r = probe(Xtr, ytr, Xte, yte, seed=0)     # logistic regression, C chosen by cross-validation
    k = knn_accuracy(Xtr, ytr, Xte, yte)      # k = 20, cosine, on standardized features
    rows = readout_grid(model, train, test)   # sigma x block grid, trained vs untrained vs pixels
    s = score(Xte, yte, Xtr, ytr)              # one representation: a Score (liveness, probe, kNN, clusters)
    res = probe_with_controls(model, train, test, sigma=ANALYSIS_SIGMA)  # phi and every control: a Readout

Why each rule (measured on this repository's models):
- A blind denoiser needs its middle block only when there is noise to remove: on clean images its phi is
  nearly one constant vector for every image. ``liveness`` measures the fraction of a representation's
  energy that varies across images, E||x - mean||^2 / E||x||^2, and the mean cosine between two images.
  Below DEGENERATE_BELOW (5%), a sparsity, selectivity or clustering statistic describes one constant
  vector, not the images: claims then read "degenerate", never "holds".
- The normalized participation ratio divides by the channel count, which doubles at the middle block;
  ``effective_channels`` (PR x C) counts active channels in absolute terms and is reported beside it.
- A probe with a fixed C on a few hundred images underfits: ``probe`` trains on the dataset's train split
  (10k images by default), picks C by stratified 3-fold cross-validation on the training rows and reports
  train and test accuracy; ``knn_accuracy`` reads the same features without a fitted model.
- Controls: raw pixels, pixels reduced by PCA to the representation's dimension, and untrained networks of
  the same configuration (same initialisation scheme) over several init seeds.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from lib.core.device import amp_enabled
from lib.core.hashing import digest, weights_sha256
from lib.core.memo import memo_arrays, memo_json
from lib.core.profile import stage, timed
from lib.measure.channels import as_numpy, liveness_fraction, participation_ratio
from lib.measure.clustering import kmeans, limit_threads, scores
from lib.measure.probe import wilson_interval
from lib.model.compiled import use_compiled
from lib.model.hooks import resolve_blocks
from lib.model.unet import UNet
from lib.representation.phi import extraction_amp, noise_averaged, phi

DEGENERATE_BELOW = 0.05          # varying fraction under which a representation is "degenerate"
READOUT_SIGMAS = (0.0, 0.025, 0.05, 0.1, 0.2, 0.4, 0.8)
ANALYSIS_SIGMA = 0.2             # phi's noise level for every analysis; chosen from the readout grid (notebook 00)
ANALYSIS_NOISE = 4               # noise draws per image for phi at ANALYSIS_SIGMA
KNN_K = 20
PROBE_CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)
PROBE_TRAIN_IMAGES = 10_000
PROBE_CV_ROWS = 3000             # training rows the cross-validation of C uses (the final fit uses all)
UNTRAINED_SEEDS = (0, 1, 2)
PROBE_SEEDS = (0, 1, 2)

__all__ = ["DEGENERATE_BELOW", "READOUT_SIGMAS", "ANALYSIS_SIGMA", "ANALYSIS_NOISE", "KNN_K", "PROBE_CS",
           "PROBE_TRAIN_IMAGES", "UNTRAINED_SEEDS", "PROBE_SEEDS", "liveness", "liveness_note", "effective_channels",
           "standardize", "zscore", "Classifier", "fit_probe", "fit_knn", "probe", "ridge_probe", "knn_accuracy",
           "pca_like", "untrained_twin", "check_trained_sigma", "cluster_ami",
           "Score", "score", "Readout", "readout_grid", "probe_with_controls", "mean_sd"]


def liveness(X) -> dict:
    """How much a representation (N images, D dims) varies across images.

    varying_fraction = E_i ||x_i - mean||^2 / E_i ||x_i||^2  (0: every image gives the same vector;
    1: zero mean), mean_cosine = the mean cosine similarity over pairs of distinct images (zero rows
    count as 0), degenerate = varying_fraction < DEGENERATE_BELOW.
    """
    a = as_numpy(X, "X")
    n = a.shape[0]
    if n < 2:
        raise ValueError(f"X: liveness needs at least 2 images (rows), got {n}")
    frac = liveness_fraction(a)
    norms = np.linalg.norm(a, axis=1)
    u = np.divide(a, norms[:, None], out=np.zeros_like(a), where=norms[:, None] > 0)
    s = u.sum(0)
    mean_cos = float((s @ s - (norms > 0).sum()) / (n * (n - 1)))
    return {"varying_fraction": frac, "mean_cosine": mean_cos, "degenerate": bool(frac < DEGENERATE_BELOW), "n": n}


def liveness_note(live: dict, what: str = "phi") -> str:
    """One line for a notebook: the liveness numbers and what they allow."""
    head = (f"{what}: {live['varying_fraction']:.1%} of its energy varies across the {live['n']} images "
            f"(mean cosine between two images {live['mean_cosine']:.3f})")
    if live["degenerate"]:
        return head + (f" -> DEGENERATE (< {DEGENERATE_BELOW:.0%}): sparsity, selectivity and clustering claims "
                       "cannot be measured on it")
    return head + " -> live"


def effective_channels(v) -> np.ndarray | float:
    """PR(v) x C: the number of active channels of each row (1 for a one-hot vector, C for a constant one)."""
    a = as_numpy(v, "v", ndim=(1, 2))
    return participation_ratio(a) * a.shape[-1]


def _moments(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and stds of training rows; constant columns get std inf (they standardize to 0)."""
    mu, sd = a.mean(0), a.std(0)
    return mu, np.where(sd > 1e-12 * np.maximum(np.abs(mu), 1), sd, np.inf)


def standardize(Xtr, Xte) -> tuple[np.ndarray, np.ndarray]:
    """Both sets z-scored with the training rows' mean and std (constant columns are left at 0)."""
    a, b = as_numpy(Xtr, "Xtr"), as_numpy(Xte, "Xte")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Xte: expected {a.shape[1]} columns like Xtr, got {b.shape[1]}")
    mu, sd = _moments(a)
    return (a - mu) / sd, (b - mu) / sd


def zscore(X) -> np.ndarray:
    """Each column of X centred and divided by its std across rows (constant columns: centred only)."""
    a = as_numpy(X, "X")
    sd = a.std(0)
    return (a - a.mean(0)) / np.where(sd > 0, sd, 1.0)


def _labels(ytr, yte, ntr: int, nte: int) -> tuple[np.ndarray, np.ndarray]:
    ytr, yte = np.asarray(ytr), np.asarray(yte)
    if ytr.shape != (ntr,):
        raise ValueError(f"ytr: expected {ntr} labels (one per training row), got shape {ytr.shape}")
    if yte.shape != (nte,):
        raise ValueError(f"yte: expected {nte} labels (one per test row), got shape {yte.shape}")
    classes, counts = np.unique(ytr, return_counts=True)
    if len(classes) < 2:
        raise ValueError("ytr: need at least two classes among the training labels")
    missing = np.setdiff1d(np.unique(yte), classes)
    if len(missing):
        raise ValueError(f"ytr: classes {missing.tolist()} of the test rows have no training rows (empty class); "
                         "a probe cannot predict them")
    return ytr, yte


def _result(pred, yte, train_acc, extra) -> dict:
    k = int((pred == yte).sum())
    lo, hi = wilson_interval(k, len(yte))
    _, cnt = np.unique(yte, return_counts=True)
    return {"accuracy": k / len(yte), "ci_low": lo, "ci_high": hi, "train_accuracy": float(train_acc),
            "n_train": int(extra.pop("n_train")), "n_test": int(len(yte)), "chance": float(cnt.max() / len(yte)),
            **extra}


@dataclass
class Classifier:
    """A classifier fitted on training rows, with their standardization: ``predict(X)`` labels new rows
    (samples, other images) exactly as the test rows of `probe` / `knn_accuracy` are labelled."""

    kind: str              # "probe" (logistic regression) or "knn"
    mu: np.ndarray
    sd: np.ndarray
    estimator: object      # the fitted scikit-learn estimator
    train_accuracy: float
    info: dict

    def predict(self, X) -> np.ndarray:
        """Labels of the rows ``X`` (N, D), standardized like the training rows."""
        a = as_numpy(X, "X")
        if a.shape[1] != len(self.mu):
            raise ValueError(f"X: expected {len(self.mu)} columns like the classifier's training rows, "
                             f"got {a.shape[1]}")
        with limit_threads():
            return self.estimator.predict((a - self.mu) / self.sd)


def _check_test(Xtr, ytr, Xte, yte) -> np.ndarray:
    """The test labels, after checking that the test rows have the training rows' columns and one label each."""
    a, b = as_numpy(Xtr, "Xtr"), as_numpy(Xte, "Xte")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"Xte: expected {a.shape[1]} columns like Xtr, got {b.shape[1]}")
    return _labels(ytr, yte, len(a), len(b))[1]


def _train_rows(Xtr, ytr):
    a = as_numpy(Xtr, "Xtr")
    ytr, _ = _labels(ytr, np.asarray(ytr)[:0], len(a), 0)
    mu, sd = _moments(a)
    return a, (a - mu) / sd, ytr, mu, sd


@timed("probes")
def fit_probe(Xtr, ytr, seed: int = 0, Cs=PROBE_CS, folds: int = 3, max_iter: int = 300,
              cv_rows: int = PROBE_CV_ROWS) -> Classifier:
    """Multinomial logistic regression (L2) on standardized features, its inverse strength C chosen from
    ``Cs`` by stratified ``folds``-fold cross-validation on (a seeded, stratified subsample of at most
    ``cv_rows`` of) the training rows, then refit on all of them. info: C, cv_accuracy (per C), n_train.

    The fitted coefficients are kept in the content-keyed cache (`lib.core.memo`, keyed by the rows, labels
    and settings); the returned estimator is rebuilt from them on a hit and a miss alike."""
    raw, a, ytr, mu, sd = _train_rows(Xtr, ytr)
    from sklearn.linear_model import LogisticRegression
    key = {"rows": digest(raw, ytr), "seed": int(seed), "cs": [float(c) for c in Cs], "folds": int(folds),
           "max_iter": int(max_iter), "cv_rows": int(cv_rows)}

    def compute():
        clf, train_acc, best, cv = _fit_logistic(a, ytr, seed, Cs, folds, max_iter, cv_rows)
        return {"coef": clf.coef_, "intercept": clf.intercept_, "classes": clf.classes_, "train_acc": train_acc,
                "C": best, "cv_C": np.array(list(cv), dtype=np.float64),
                "cv_acc": np.array(list(cv.values()), dtype=np.float64)}
    got = memo_arrays("probe_fit", key, compute)
    clf = LogisticRegression(C=float(got["C"]), max_iter=int(max_iter), random_state=int(seed))
    clf.coef_, clf.intercept_, clf.classes_ = got["coef"], got["intercept"], got["classes"]
    clf.n_features_in_ = a.shape[1]
    cv = {float(c): float(v) for c, v in zip(got["cv_C"], got["cv_acc"])}
    return Classifier("probe", mu, sd, clf, float(got["train_acc"]),
                      {"n_train": len(a), "C": float(got["C"]), "cv_accuracy": cv})


def _fit_logistic(a, ytr, seed, Cs, folds, max_iter, cv_rows):
    """`fit_probe`'s fits on standardized rows: (estimator, train accuracy, chosen C, {C: CV accuracy})."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    def fit(X, y, C):
        return LogisticRegression(C=float(C), max_iter=int(max_iter), random_state=int(seed)).fit(X, y)
    _, cnt = np.unique(ytr, return_counts=True)
    nf = int(min(folds, cnt.min()))
    with warnings.catch_warnings(), limit_threads():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cv = {}
        if len(Cs) > 1 and nf >= 2:
            sub = np.arange(len(a))
            if len(a) > cv_rows:  # the choice of C needs far fewer rows than the final fit
                from sklearn.model_selection import train_test_split
                sub, _ = train_test_split(sub, train_size=int(cv_rows), stratify=ytr, random_state=int(seed))
            asub, ysub = a[sub], ytr[sub]
            splits = list(StratifiedKFold(nf, shuffle=True, random_state=int(seed)).split(asub, ysub))
            for C in Cs:
                cv[float(C)] = float(np.mean([(fit(asub[i], ysub[i], C).predict(asub[j]) == ysub[j]).mean()
                                              for i, j in splits]))
            best = max(cv, key=lambda c: (cv[c], -c))  # ties: the stronger regularization
        else:
            best = float(Cs[0])
        clf = fit(a, ytr, best)
        train_acc = float((clf.predict(a) == ytr).mean())
    return clf, train_acc, best, cv


@timed("probes")
def probe(Xtr, ytr, Xte, yte, seed: int = 0, Cs=PROBE_CS, folds: int = 3, max_iter: int = 300,
          cv_rows: int = PROBE_CV_ROWS) -> dict:
    """`fit_probe` on the training rows, scored on the test rows.

    Returns accuracy (test), ci_low/ci_high (Wilson 95%), train_accuracy, C, cv_accuracy (per C),
    n_train, n_test, chance (majority-class rate of the test rows)."""
    yte = _check_test(Xtr, ytr, Xte, yte)
    c = fit_probe(Xtr, ytr, seed, Cs, folds, max_iter, cv_rows)
    return _result(c.predict(Xte), yte, c.train_accuracy, dict(c.info))


@timed("probes")
def ridge_probe(Xtr, ytr, Xte, yte, alphas=(1e-1, 1e0, 1e1, 1e2, 1e3, 1e4, 1e5)) -> dict:
    """A fast linear probe for grids: one-vs-all ridge regression (targets +-1, no intercept) on
    standardized features, its strength chosen among ``alphas`` by exact leave-one-out accuracy.

    One thin SVD of the training rows, X = U S V^T, serves every alpha: the fitted values are
    U diag(s^2 / (s^2 + alpha)) U^T Y and the leave-one-out ones follow from the hat
    matrix's diagonal h = sum_j U_ij^2 s_j^2 / (s_j^2 + alpha), as (Yhat - h Y) / (1 - h).
    Kept in the content-keyed cache (`lib.core.memo`)."""
    yte = _check_test(Xtr, ytr, Xte, yte)
    key = {"rows": digest(as_numpy(Xtr, "Xtr"), np.asarray(ytr), as_numpy(Xte, "Xte"), yte),
           "alphas": [float(x) for x in alphas]}
    return memo_json("ridge", key, lambda: _ridge_probe(Xtr, ytr, Xte, yte, alphas))


def _ridge_probe(Xtr, ytr, Xte, yte, alphas) -> dict:
    a, b = standardize(Xtr, Xte)
    ytr, yte = _labels(ytr, yte, len(a), len(b))
    classes, yi = np.unique(ytr, return_inverse=True)
    Y = -np.ones((len(a), len(classes)))
    Y[np.arange(len(a)), yi] = 1.0
    with limit_threads():
        U, sv, Vt = np.linalg.svd(a, full_matrices=False)
        UtY = U.T @ Y
        best = None
        for alpha in alphas:
            f = sv ** 2 / (sv ** 2 + float(alpha))
            fitted = U @ (f[:, None] * UtY)
            h = (U ** 2) @ f
            loo = (fitted - h[:, None] * Y) / np.maximum(1.0 - h, 1e-12)[:, None]
            acc = float((loo.argmax(1) == yi).mean())
            if best is None or acc > best[0]:
                best = (acc, float(alpha), f)
        _, alpha, f = best
        W = Vt.T @ ((f / np.maximum(sv, 1e-12))[:, None] * UtY)   # ridge weights (p, classes)
        pred = classes[(b @ W).argmax(1)]
        train_acc = float((classes[(a @ W).argmax(1)] == ytr).mean())
    return _result(pred, yte, train_acc, {"n_train": len(a), "alpha": alpha, "loo_accuracy": best[0]})


def fit_knn(Xtr, ytr, k: int = KNN_K) -> Classifier:
    """A k-nearest-neighbour vote (cosine similarity, standardized features, k = 20) over the training rows."""
    _, a, ytr, mu, sd = _train_rows(Xtr, ytr)
    if not 1 <= int(k) <= len(a):
        raise ValueError(f"k: expected 1 <= k <= {len(a)} (training rows), got {k!r}")
    from sklearn.neighbors import KNeighborsClassifier
    with limit_threads():
        clf = KNeighborsClassifier(n_neighbors=int(k), metric="cosine", algorithm="brute").fit(a, ytr)
    return Classifier("knn", mu, sd, clf, float("nan"), {"n_train": len(a), "k": int(k)})


@timed("probes")
def knn_accuracy(Xtr, ytr, Xte, yte, k: int = KNN_K) -> float:
    """Accuracy of `fit_knn` on the test rows (kept in the content-keyed cache, `lib.core.memo`)."""
    yte = _check_test(Xtr, ytr, Xte, yte)
    key = {"rows": digest(as_numpy(Xtr, "Xtr"), np.asarray(ytr), as_numpy(Xte, "Xte"), yte), "k": int(k)}
    return float(memo_json("knn", key, lambda: float((fit_knn(Xtr, ytr, k).predict(Xte) == yte).mean())))


def pca_like(Xtr, Xte, dims: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Both sets projected on the first ``dims`` principal components of the training rows."""
    a, b = as_numpy(Xtr, "Xtr"), as_numpy(Xte, "Xte")
    dims = int(min(dims, a.shape[0], a.shape[1]))

    def compute():
        from sklearn.decomposition import PCA
        with stage("probes"), limit_threads():
            p = PCA(n_components=dims, random_state=int(seed)).fit(a)
            return {"train": p.transform(a), "test": p.transform(b)}
    got = memo_arrays("pca", {"rows": digest(a, b), "dims": dims, "seed": int(seed)}, compute)
    return got["train"], got["test"]


def check_trained_sigma(model, sigma: float) -> bool:
    """Warn (and return False) when ``sigma`` lies above the noise levels the checkpoint was trained on
    (its train_config.sigma_max, 1 by default): the readout there measures extrapolation, not the model."""
    meta = getattr(model, "checkpoint_metadata", {}) or {}
    top = float(meta.get("train_config", {}).get("sigma_max", 1.0))
    if float(sigma) > top:
        warnings.warn(f"sigma {sigma:g} is above the largest training noise level {top:g} of this checkpoint: "
                      "the readout there measures extrapolation (images are in [0, 1], so sigma is too)", stacklevel=2)
        return False
    return True


def untrained_twin(model, init_seed: int) -> UNet:
    """A network of ``model``'s configuration (same initialisation scheme, see UNetConfig.gain_init) with
    weights drawn from ``init_seed``, on the model's device, in eval mode."""
    g = torch.get_rng_state()
    torch.manual_seed(int(init_seed))
    try:
        net = UNet(model.config)
    finally:
        torch.set_rng_state(g)
    return net.to(next(model.parameters()).device).eval()


def cluster_ami(X, labels, k: int | None = None, seed: int = 0, n_init: int = 4, standardized: bool = False) -> float:
    """AMI between k-means clusters of the rows of X (k = number of label values by default) and labels."""
    a = as_numpy(X, "X")
    y = np.asarray(labels)
    k = len(np.unique(y)) if k is None else int(k)
    if k > len(a):
        raise ValueError(f"k: {k} clusters asked for {len(a)} images; need at least as many images as clusters")
    if standardized:
        a = zscore(a)
    return scores(kmeans(a, k, seed=seed, n_init=n_init), y)["ami"]


@dataclass(frozen=True)
class Score:
    """One representation read once (`score`): on the held-out rows its liveness and k-means clusters; with a
    train split, a tuned logistic probe (test accuracy with its Wilson 95% interval, train accuracy) and a kNN
    vote fitted on it (None without one). ``clusters``: {factor: {"nmi", "ami", "ari"}} of k-means on the raw
    rows, ``clusters_std`` the same on standardized rows ({} when not asked for); k = the number of classes."""

    n: int
    dims: int
    varying_fraction: float
    mean_cosine: float
    degenerate: bool
    clusters: dict
    clusters_std: dict
    probe_acc: float | None = None
    probe_train_acc: float | None = None
    probe_ci_low: float | None = None
    probe_ci_high: float | None = None
    knn_acc: float | None = None
    n_train: int | None = None

    def flat(self) -> dict:
        """The readout's record keys: varying_fraction, mean_cosine, degenerate, dims, probe_acc,
        probe_train_acc, probe_ci_low, probe_ci_high, knn_acc (with a train split), <factor>_ami and
        <factor>_ami_std (standardized rows)."""
        out = {"varying_fraction": self.varying_fraction, "mean_cosine": self.mean_cosine,
               "degenerate": self.degenerate, "dims": self.dims}
        if self.probe_acc is not None:
            out.update(probe_acc=self.probe_acc, probe_train_acc=self.probe_train_acc, probe_ci_low=self.probe_ci_low,
                       probe_ci_high=self.probe_ci_high, knn_acc=self.knn_acc)
        for f, c in self.clusters.items():
            out[f"{f}_ami"] = c["ami"]
            if f in self.clusters_std:
                out[f"{f}_ami_std"] = self.clusters_std[f]["ami"]
        return out


def score(Xte, yte, Xtr=None, ytr=None, seed: int = 0, fast: bool = False, factors: dict | None = None,
          k: int | None = None, standardized: bool = True) -> Score:
    """The readout of one representation: liveness and k-means (``k`` clusters, default the number of classes
    among ``yte``; scored against the class and each of ``factors``, {name: test labels}) on the test rows;
    with training rows, the probe (tuned logistic, or the ridge probe when ``fast``) and the kNN accuracy.
    ``standardized``: also cluster the z-scored rows. Kept in the content-keyed cache (`lib.core.memo`, keyed by
    the rows, labels and settings themselves)."""
    b, yte = as_numpy(Xte, "Xte"), np.asarray(yte)
    train = Xtr is not None
    facs = {"class": yte, **{f: np.asarray(v) for f, v in (factors or {}).items()}}
    k = len(np.unique(yte)) if k is None else int(k)
    key = {"rows": digest(b, facs, *((as_numpy(Xtr, "Xtr"), np.asarray(ytr)) if train else ())),
           "seed": int(seed), "fast": bool(fast), "k": k, "standardized": bool(standardized), "knn_k": KNN_K,
           "cs": list(PROBE_CS), "cv_rows": PROBE_CV_ROWS}

    def compute():
        live = liveness(b)
        out = {"n": int(len(b)), "dims": int(b.shape[1]), "varying_fraction": live["varying_fraction"],
               "mean_cosine": live["mean_cosine"], "degenerate": live["degenerate"],
               "clusters": _clusters(b, facs, k, seed), "clusters_std": _clusters(zscore(b), facs, k, seed)
               if standardized else {}}
        if train:
            p = (ridge_probe if fast else probe)(Xtr, ytr, b, yte, **({} if fast else {"seed": seed}))
            out.update(probe_acc=p["accuracy"], probe_train_acc=p["train_accuracy"], probe_ci_low=p["ci_low"],
                       probe_ci_high=p["ci_high"], knn_acc=knn_accuracy(Xtr, ytr, b, yte), n_train=p["n_train"])
        return out
    return Score(**memo_json("score", key, compute))


def _clusters(a: np.ndarray, factors: dict, k: int, seed: int, n_init: int = 4) -> dict:
    """{factor: {"nmi", "ami", "ari"}} of one k-means clustering of the rows ``a`` against each factor."""
    if k > len(a):
        raise ValueError(f"k: {k} clusters asked for {len(a)} images; need at least as many images as clusters")
    lab = kmeans(a, k, seed=seed, n_init=n_init)
    return {f: {m: float(v) for m, v in scores(lab, y).items() if m in ("nmi", "ami", "ari")}
            for f, y in factors.items()}


def _block_reps(model, x, sigma, blocks, n_noise, seed, batch_size: int = 256, compiled: bool = False) -> dict:
    """{block: (N, C) phi} for ``blocks`` and "output": D(x + sigma z) flattened (first draw), from one full
    forward pass per batch of images x draws (`lib.representation.phi.noise_averaged`, the loop phi runs)."""
    with stage("extraction"):
        (r,) = noise_averaged(model, x, [sigma], n_noise, resolve_blocks(model, blocks), seed, batch_size,
                              output=True, compiled=compiled)
    return {**{k: v.numpy() for k, v in r.outputs.items()}, "output": r.denoised.numpy()}


def readout_grid(model, train, test, sigmas=READOUT_SIGMAS, blocks=None, n_noise: int = 2,
                 untrained_seeds=(0,), seed: int = 0, progress: bool = False) -> list[dict]:
    """The readout on a grid: for each sigma, each block (default enc1..dec2) and the denoiser's output
    D(x + sigma z), of the trained model and its untrained twins, plus raw pixels (sigma-independent).

    ``train``/``test``: ImageSets (the probe and kNN fit on train, everything is scored on test); the
    fast ridge probe is used. Returns rows {"model", "sigma", "block", ...`Score.flat` keys}.
    """
    blocks = list(model.block_names[:-1] if blocks is None else blocks)
    for s in sigmas:
        check_trained_sigma(model, s)
    xtr, xte = train.float(), test.float()
    key = {"weights": weights_sha256(model),
           "images": digest(xtr, np.asarray(train.labels), xte, np.asarray(test.labels)),
           "sigmas": [float(s) for s in sigmas], "blocks": blocks, "n_noise": int(n_noise),
           "untrained_seeds": [int(s) for s in untrained_seeds], "seed": int(seed)}
    # the whole grid's image-draws decide whether its extraction runs compiled (lib.model.compiled)
    work = (1 + len(untrained_seeds)) * (len(xtr) + len(xte)) * sum(1 if s == 0 else int(n_noise) for s in sigmas)
    fast = use_compiled(model, work)
    if fast:  # compiled kernels round differently, and the extraction may run in bf16
        dev = next(model.parameters()).device
        key["kernels"] = "inductor" + ("+bf16" if amp_enabled(dev, extraction_amp(False, True)) else "")
    return memo_json("readout_grid", key, lambda: _readout_grid(model, train, test, xtr, xte, sigmas, blocks, n_noise,
                                                                untrained_seeds, seed, progress, fast))


def _readout_grid(model, train, test, xtr, xte, sigmas, blocks, n_noise, untrained_seeds, seed, progress,
                  fast) -> list[dict]:
    rows = []
    px = score(xte.flatten(1).numpy(), test.labels, xtr.flatten(1).numpy(), train.labels, seed=seed, fast=True)
    rows.append({"model": "pixels", "sigma": None, "block": "pixels", **px.flat()})
    nets = [("trained", model)] + [(f"untrained-{s}", untrained_twin(model, s)) for s in untrained_seeds]
    it = [(s, name, net) for s in sigmas for name, net in nets]
    if progress:
        from tqdm.auto import tqdm
        it = tqdm(it, desc="readout grid")
    for s, name, net in it:
        rtr = _block_reps(net, xtr, s, blocks, n_noise, seed + 101, compiled=fast)
        rte = _block_reps(net, xte, s, blocks, n_noise, seed, compiled=fast)
        for b in rtr:
            rows.append({"model": name, "sigma": float(s), "block": b,
                         **score(rte[b], test.labels, rtr[b], train.labels, seed=seed, fast=True).flat()})
    return rows


def mean_sd(values) -> tuple[float, float]:
    """(mean, sample sd) of ``values``; sd 0.0 for a single value."""
    v = np.asarray(list(values), dtype=np.float64)
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0


CONTROLS = ("untrained", "pixel", "pca_pixel")


@dataclass(frozen=True)
class Readout:
    """phi of one block at one sigma against every control (`probe_with_controls`): the trained network over
    probe seeds (noise draws and CV folds), untrained twins over init seeds, raw pixels, and pixels reduced by
    PCA to phi's dimension; each a `Score`. ``eff_channels``: phi's median effective channel count (PR x C) on
    the test rows (first seed)."""

    sigma: float
    n_noise: int
    block: str
    train_images: int
    test_images: int
    n_classes: int
    eff_channels: float
    phi: tuple
    untrained: tuple
    pixel: tuple
    pca_pixel: tuple

    REPS = ("phi",) + CONTROLS

    def values(self, rep: str, key: str) -> list:
        """``key`` (a `Score.flat` key) of representation ``rep`` ("phi", "untrained", "pixel", "pca_pixel"),
        one value per seed."""
        return [sc.flat()[key] for sc in getattr(self, rep)]

    def mean(self, rep: str, key: str) -> float:
        """The mean of ``key`` over ``rep``'s seeds."""
        return mean_sd(self.values(rep, key))[0]

    def gaps(self) -> dict:
        """{"probe_acc", "knn_acc"}: phi's mean minus the best control's (NaN controls skipped; NaN if none)."""
        out = {}
        for m in ("probe_acc", "knn_acc"):
            ctrl = [v for v in (self.mean(c, m) for c in CONTROLS) if v == v]
            out[m] = self.mean("phi", m) - max(ctrl) if ctrl else float("nan")
        return out

    def flat(self) -> dict:
        """The flat record notebooks write to numbers.json: sigma, n_noise, block, probe_train_images,
        probe_test_images, n_classes, phi_eff_channels, and <rep>_<key> (mean over seeds) with <rep>_<key>_sd
        for the seeded representations, for every `Score.flat` key."""
        out = {"sigma": self.sigma, "n_noise": self.n_noise, "block": self.block,
               "probe_train_images": self.train_images, "probe_test_images": self.test_images,
               "n_classes": self.n_classes, "phi_eff_channels": self.eff_channels}
        for rep in self.REPS:
            runs = [sc.flat() for sc in getattr(self, rep)]
            for k, v in runs[0].items():
                if isinstance(v, (bool, np.bool_)):
                    out[f"{rep}_{k}"] = bool(v)
                    continue
                m, sd = mean_sd(r[k] for r in runs)
                out[f"{rep}_{k}"] = m
                if len(runs) > 1:
                    out[f"{rep}_{k}_sd"] = sd
        return out


def probe_with_controls(model, train, test, sigma: float = ANALYSIS_SIGMA, n_noise: int = ANALYSIS_NOISE,
                        block: str = "mid", seeds=PROBE_SEEDS, untrained_seeds=UNTRAINED_SEEDS,
                        factors: dict | None = None) -> Readout:
    """The full readout of one block at one sigma with every control: a `Readout`.

    trained: phi over ``seeds`` (noise draws and CV folds), untrained twins over ``untrained_seeds``, raw
    pixels and pixels PCA-reduced to phi's dimension; the probes fit on ``train``, everything is scored on
    ``test`` (ImageSets); ``factors``: other test labellings the k-means clusters are scored against."""
    check_trained_sigma(model, sigma)
    xtr, xte = train.float(), test.float()
    ytr, yte = train.labels, test.labels

    def phis(net, s):
        return (phi(net, xtr, sigma, n_noise, block, seed=1000 + s).numpy(),
                phi(net, xte, sigma, n_noise, block, seed=s).numpy())

    def read(a, b, s):
        return score(b, yte, a, ytr, seed=s, factors=factors)
    trained, eff = [], None
    for s in seeds:
        a, b = phis(model, s)
        trained.append(read(a, b, s))
        if eff is None:
            eff = float(np.nanmedian(effective_channels(b)))
    untrained = [read(*phis(untrained_twin(model, s), seeds[0]), seeds[0]) for s in untrained_seeds]
    ptr, pte = xtr.flatten(1).numpy(), xte.flatten(1).numpy()
    qtr, qte = pca_like(ptr, pte, trained[0].dims, seed=seeds[0])
    return Readout(float(sigma), int(n_noise), block, int(len(xtr)), int(len(xte)), int(len(np.unique(ytr))), eff,
                   tuple(trained), tuple(untrained), (read(ptr, pte, seeds[0]),), (read(qtr, qte, seeds[0]),))
