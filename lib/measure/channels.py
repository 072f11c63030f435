"""Sparsity and channel selectivity of block representations (docs/method.md 5.1-5.3, 5.8).

    pr = participation_ratio(phi)                 # per image, in (0, 1]; 1 = dense
    prs = block_pr(model, images, sigma=0.0)       # {"a1": {"in": (N,), "out": (N,)}, ...}
    st = channel_stats(phi)                        # per channel: frac_active, lifetime_pr, kurtosis...
    split = split_channels(phi)                    # specialized / common / dead / other channel indices
    top = top_images(phi, channels, k=10)          # max-activating images per channel
    pur = purity(top, {"class": labels, ...})      # how pure those top-k sets are
    rob = noise_robustness(model, images, [0.1, 0.2])  # relative change of block means vs sigma = 0
    n90 = energy_channels(phi, 0.9)                # channels carrying 90% of each image's energy

Functions take numpy arrays or torch tensors and return numpy arrays (float64 for statistics).
A row of zeros has no defined participation ratio: it is returned as NaN.
"""
from __future__ import annotations

import numpy as np
import torch
from scipy import stats as _stats

from lib.core.checks import check_sigma
from lib.model.compiled import use_compiled
from lib.model.hooks import resolve_blocks
from lib.model.unet import block_aliases
from lib.representation.phi import phi as phi_of  # parameters named phi hold phi arrays

__all__ = ["participation_ratio", "energy_participation_ratio", "block_pr", "channel_stats",
           "split_channels", "kurtotic_channels", "liveness_fraction", "RARE_BELOW", "class_channel_pair", "top_images",
           "off_images", "purity", "noise_robustness", "energy_channels", "as_numpy"]


def as_numpy(x, name: str, ndim: tuple[int, ...] = (2,)) -> np.ndarray:
    """``x`` (numpy array or torch tensor) as a finite float64 array with one of the ``ndim``s."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a numeric array, got {type(x).__name__}") from None
    if a.ndim not in ndim:
        raise ValueError(f"{name}: expected {' or '.join(f'{d}-D' for d in ndim)} array, got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{name}: empty array (shape {a.shape})")
    if not np.isfinite(a).all():
        raise ValueError(f"{name}: contains NaN or inf")
    return a


def _pr(a: np.ndarray, p: int) -> np.ndarray:
    """(sum |a|^p)^2 / (C sum |a|^(2p)) along the last axis; NaN where the row is all zeros."""
    C = a.shape[-1]
    s1 = (np.abs(a) ** p).sum(-1)
    s2 = (np.abs(a) ** (2 * p)).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = s1 ** 2 / (C * s2)
    return np.where(s2 > 0, out, np.nan)


def participation_ratio(v) -> np.ndarray | float:
    """Normalized participation ratio PR(v) = (sum_c |v_c|)^2 / (C sum_c v_c^2) of each row of ``v``.

    docs/method.md 5.1. In [1/C, 1]: 1/C for a one-hot vector, 1 for a constant one (dense). ``v`` is a
    vector (C,) -> float, or a matrix (N, C) -> (N,) array. All-zero rows give NaN.
    """
    a = as_numpy(v, "v", ndim=(1, 2))
    out = _pr(a, 1)
    return float(out) if a.ndim == 1 else out


def energy_participation_ratio(v) -> np.ndarray | float:
    """Energy version (sum_c v_c^2)^2 / (C sum_c v_c^4) of each row of ``v`` (same range and shapes as
    `participation_ratio`; it weighs large entries more, so it reads as "fraction of channels carrying
    the energy")."""
    a = as_numpy(v, "v", ndim=(1, 2))
    out = _pr(a, 2)
    return float(out) if a.ndim == 1 else out


def _default_blocks(model) -> list[str]:
    return list(block_aliases(model.config.levels))


def block_pr(model, images: torch.Tensor, sigma: float = 0.0, n_noise: int = 1, blocks=None,
             seed: int = 0, batch_size: int = 256, energy: bool = False, amp=False) -> dict:
    """Per-image PR of the spatially averaged input and output of each block (docs/method.md 5.1, Fig. 1).

    blocks: names or aliases (default a1..a(2L), i.e. all blocks but the output block). Returns
    {block: {"in": (N,), "out": (N,), "c_in", "c_out" (channel counts), "live_in", "live_out" (varying
    fractions, `liveness_fraction`)}} keyed by the names as given. For decoder blocks the input is
    the concatenation of the upsampled tensor and the skip connection, as the block sees it.
    energy=True uses `energy_participation_ratio` instead.
    """

    blocks = _default_blocks(model) if blocks is None else ([blocks] if isinstance(blocks, str) else list(blocks))
    modules = [resolve_blocks(model, b)[0] for b in blocks]
    outs, ins = phi_of(model, images, sigma, n_noise=n_noise, blocks=modules, seed=seed,
                    batch_size=batch_size, inputs=True, amp=amp)
    f = energy_participation_ratio if energy else participation_ratio
    return {b: {"in": f(ins[m]), "out": f(outs[m]), "c_in": int(ins[m].shape[1]), "c_out": int(outs[m].shape[1]),
                "live_in": liveness_fraction(ins[m]), "live_out": liveness_fraction(outs[m])}
            for b, m in zip(blocks, modules)}


def liveness_fraction(X) -> float:
    """Fraction of the energy of the rows of X that varies across rows: E||x - mean||^2 / E||x||^2
    (0 when every row is the same vector; see lib.measure.readout.liveness)."""
    a = as_numpy(X, "X")
    total = float((a ** 2).sum(1).mean())
    return float(((a - a.mean(0)) ** 2).sum(1).mean()) / total if total > 0 else 0.0


def _active_mask(a: np.ndarray, threshold, rel_threshold) -> np.ndarray:
    if threshold is not None:
        return a > float(threshold)
    if not 0 <= rel_threshold < 1:
        raise ValueError(f"rel_threshold: expected a fraction in [0, 1), got {rel_threshold!r}")
    peak = np.abs(a).max(0)
    return (a > rel_threshold * peak) & (peak > 0)


def channel_stats(phi, threshold: float | None = None, rel_threshold: float = 0.05) -> dict:
    """Statistics of each channel across images, for phi of shape (N images, C channels).

    Returns a dict of (C,) float arrays:
      mean, std, max            over images;
      frac_active               fraction of images with phi_c > threshold; the default threshold is
                                relative: rel_threshold (5%) of the channel's largest value over images;
      lifetime_pr               PR of the column phi[:, c] across images (low = active for few images);
      kurtosis                  excess kurtosis (Fisher, 0 for a Gaussian; NaN for a constant channel);
      skew                      skewness;
      dead                      1.0 where the channel is constant over images (0 everywhere for ReLUs).
    """
    a = as_numpy(phi, "phi")
    if a.shape[0] < 4:
        raise ValueError(f"phi: need at least 4 images (rows) for channel statistics, got {a.shape[0]}")
    std = a.std(0)
    scale = np.maximum(np.abs(a).max(0), 1e-30)
    dead = std <= 1e-9 * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        kurt = _stats.kurtosis(a, axis=0, fisher=True, bias=True)
        skew = _stats.skew(a, axis=0, bias=True)
    kurt = np.where(dead, np.nan, kurt)
    skew = np.where(dead, np.nan, skew)
    return {
        "mean": a.mean(0), "std": std, "max": a.max(0),
        "frac_active": _active_mask(a, threshold, rel_threshold).mean(0),
        "lifetime_pr": _pr(a.T, 1),
        "kurtosis": kurt, "skew": skew, "dead": dead.astype(np.float64),
    }


SPLIT_RULES = ("kurtosis", "quantile")
RARE_BELOW = 0.01  # channels active for fewer than this fraction of images are "rare": no kurtosis claim


def kurtotic_channels(phi, threshold: float = 3.0, min_active_frac: float = RARE_BELOW) -> int:
    """Number of channels with excess kurtosis across images above ``threshold``, among the live ones
    active for at least ``min_active_frac`` of the images (see `split_channels`)."""
    return int(len(split_channels(phi, specialized_kurtosis=threshold, min_active_frac=min_active_frac)["specialized"]))


def split_channels(phi, rule: str = "kurtosis", specialized_kurtosis: float = 3.0,
                   common_kurtosis: float = 1.0, common_active: float = 0.5, quantile: float = 0.2,
                   min_active_frac: float = RARE_BELOW, stats: dict | None = None) -> dict:
    """Split channels into specialized and common (docs/method.md 7), from phi of shape (N, C).

    rule="kurtosis" (default): specialized = excess kurtosis > ``specialized_kurtosis`` (3: heavier
      tails than a Laplace distribution); common = excess kurtosis < ``common_kurtosis`` (1: close to
      Gaussian) and active (see `channel_stats`) for at least ``common_active`` of the images.
    rule="quantile": specialized = the top ``quantile`` fraction of live channels by kurtosis; common =
      the bottom ``quantile`` fraction among those active for >= ``common_active`` of the images.
    Dead (constant) channels are in neither; nor are "rare" ones, active for fewer than ``min_active_frac``
    (1%) of the images (at least one image): a channel that fires for one or two images has the largest
    possible kurtosis but says nothing measurable. Returns a dict of int arrays: "specialized"
    (sorted by kurtosis, highest first), "common" (lowest first), "rare", "dead", "other"; and "rule".
    """
    if rule not in SPLIT_RULES:
        raise ValueError(f"rule: expected one of {SPLIT_RULES}, got {rule!r}")
    if not 0 <= common_active <= 1:
        raise ValueError(f"common_active: expected a fraction in [0, 1], got {common_active!r}")
    if not 0 <= min_active_frac < 1:
        raise ValueError(f"min_active_frac: expected a fraction in [0, 1), got {min_active_frac!r}")
    st = stats if stats is not None else channel_stats(phi)
    kurt, act = st["kurtosis"], st["frac_active"]
    n = as_numpy(phi, "phi").shape[0] if phi is not None else None
    dead = st["dead"] > 0
    need = max(1, int(np.ceil(min_active_frac * n))) if n else 1
    rare = ~dead & (np.rint(act * (n or 0)) < need) if n else np.zeros_like(dead)
    live = np.flatnonzero(~dead & ~rare)
    k = np.where(dead, -np.inf, kurt)
    if rule == "kurtosis":
        spec = live[k[live] > specialized_kurtosis]
        com = live[(k[live] < common_kurtosis) & (act[live] >= common_active)]
        desc = (f"specialized: excess kurtosis > {specialized_kurtosis:g}; common: excess kurtosis < "
                f"{common_kurtosis:g} and active for >= {common_active:.0%} of images")
    else:
        if not 0 < quantile <= 0.5:
            raise ValueError(f"quantile: expected a fraction in (0, 0.5], got {quantile!r}")
        m = max(1, int(round(quantile * len(live)))) if len(live) else 0
        order = live[np.argsort(-k[live], kind="stable")]
        spec = order[:m]
        cand = order[::-1]
        cand = cand[act[cand] >= common_active]
        com = np.setdiff1d(cand[:m], spec)
        desc = (f"specialized: top {quantile:.0%} of live channels by excess kurtosis; common: bottom "
                f"{quantile:.0%} among channels active for >= {common_active:.0%} of images")
    desc += f"; channels active for fewer than {need} images are 'rare' and in neither group"
    spec = spec[np.argsort(-k[spec], kind="stable")]
    com = com[np.argsort(k[com], kind="stable")]
    other = np.setdiff1d(live, np.concatenate([spec, com]))
    return {"specialized": spec.astype(np.int64), "common": com.astype(np.int64),
            "rare": np.flatnonzero(rare).astype(np.int64), "dead": np.flatnonzero(dead).astype(np.int64),
            "other": other.astype(np.int64), "rule": desc}


def class_channel_pair(phi, labels, channels=None) -> dict:
    """Two classes and two channels that best show a union of subspaces (Fig. 5), chosen automatically.

    Per class c and channel j, the effect size e[c, j] = (mean of phi_j over class c - mean over all
    images) / std of phi_j. For classes (A, B): jA = argmax_j e[A, j] - e[B, j] (high for A, low for B),
    jB = argmax_j e[B, j] - e[A, j]; the pair's score is the smaller of the two differences, and the
    class pair with the highest score wins. ``channels`` restricts the candidates (default: all
    non-constant channels). Returns {"classes": (A, B), "channels": (jA, jB), "score", "auc": (AUC of
    phi_jA for A vs B images, AUC of phi_jB for B vs A images)}; an AUC near 1 means the two classes
    are separated on their own channels.
    """
    a = as_numpy(phi, "phi")
    y = np.asarray(labels)
    if y.ndim != 1 or len(y) != len(a):
        raise ValueError(f"labels: expected {len(a)} labels (one per row of phi), got shape {y.shape}")
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError("labels: need at least two classes")
    std = a.std(0)
    cand = np.flatnonzero(std > 0) if channels is None else _channels(channels, a.shape[1])
    cand = cand[std[cand] > 0]
    if len(cand) < 2:
        raise ValueError("channels: need at least two non-constant candidate channels")
    z = (a[:, cand] - a[:, cand].mean(0)) / std[cand]
    e = np.stack([z[y == c].mean(0) for c in classes])          # (classes, cand)
    best = (-np.inf, None)
    for i in range(len(classes)):
        for j in range(i + 1, len(classes)):
            d = e[i] - e[j]
            ja, jb = int(np.argmax(d)), int(np.argmin(d))
            score = min(d[ja], -d[jb])
            if ja != jb and score > best[0]:
                best = (score, (i, j, ja, jb))
    i, j, ja, jb = best[1]
    from sklearn.metrics import roc_auc_score
    A, B = y == classes[i], y == classes[j]
    ca, cb = int(cand[ja]), int(cand[jb])
    auc_a = roc_auc_score(np.r_[np.ones(A.sum()), np.zeros(B.sum())], np.r_[a[A, ca], a[B, ca]])
    auc_b = roc_auc_score(np.r_[np.ones(B.sum()), np.zeros(A.sum())], np.r_[a[B, cb], a[A, cb]])
    return {"classes": (classes[i], classes[j]), "channels": (ca, cb), "score": float(best[0]),
            "auc": (float(auc_a), float(auc_b))}


def _channels(channels, C: int) -> np.ndarray:
    ch = np.atleast_1d(np.asarray(channels))
    if ch.size == 0 or not np.issubdtype(ch.dtype, np.integer) or ch.min() < 0 or ch.max() >= C:
        raise ValueError(f"channels: expected integer channel indices in [0, {C}), got {channels!r}")
    return ch.astype(np.int64)


def top_images(phi, channels, k: int = 10) -> np.ndarray:
    """Indices of the ``k`` images with the largest phi_c, for each channel c: (len(channels), k),
    largest first (ties broken by image index)."""
    a = as_numpy(phi, "phi")
    ch = _channels(channels, a.shape[1])
    if not 1 <= int(k) <= a.shape[0]:
        raise ValueError(f"k: expected 1 <= k <= {a.shape[0]} (number of images), got {k!r}")
    return np.stack([np.argsort(-a[:, c], kind="stable")[:int(k)] for c in ch])


def off_images(phi, channel: int, n: int = 10, seed: int = 0, threshold: float | None = None,
               rel_threshold: float = 0.05) -> np.ndarray:
    """``n`` random images (seeded) for which ``channel`` is off (not active in the sense of
    `channel_stats`); fewer if fewer exist."""
    a = as_numpy(phi, "phi")
    c = int(_channels(channel, a.shape[1])[0])
    off = np.flatnonzero(~_active_mask(a[:, [c]], threshold, rel_threshold)[:, 0])
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(off, size=min(int(n), len(off)), replace=False)) if len(off) else off


def purity(index_sets, factors: dict) -> dict:
    """Purity of sets of image indices under each labelling in ``factors`` ({name: (N,) labels}).

    index_sets: (S, k) int array (e.g. from `top_images`). For each set and factor: the fraction of
    its images sharing the most frequent value ("purity") and that value ("mode"). Returns
    {name: {"purity": (S,), "mode": (S,), "chance": float}}, where chance is the expected purity of
    a random set of the same size (estimated with 200 seeded draws).
    """
    idx = np.asarray(index_sets)
    if idx.ndim == 1:
        idx = idx[None]
    if idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"index_sets: expected an (S, k) integer array, got shape {idx.shape}")
    if not isinstance(factors, dict) or not factors:
        raise ValueError("factors: expected a non-empty dict {name: labels}")
    out = {}
    rng = np.random.default_rng(0)
    for name, lab in factors.items():
        lab = np.asarray(lab)
        if lab.ndim != 1 or idx.max() >= len(lab) or idx.min() < 0:
            raise ValueError(f"factors[{name!r}]: expected 1-D labels covering indices up to {idx.max()}")
        _, codes = np.unique(lab, return_inverse=True)
        pur, mode = [], []
        for row in idx:
            cnt = np.bincount(codes[row])
            pur.append(cnt.max() / len(row))
            mode.append(lab[row][np.argmax(codes[row] == cnt.argmax())])
        rand = [np.bincount(codes[rng.choice(len(lab), idx.shape[1], replace=False)]).max() / idx.shape[1]
                for _ in range(200)]
        out[name] = {"purity": np.asarray(pur), "mode": np.asarray(mode), "chance": float(np.mean(rand))}
    return out


def noise_robustness(model, images: torch.Tensor, sigmas, blocks=None, n_noise: int = 4, seed: int = 0,
                     batch_size: int = 256, amp=False) -> dict:
    """Relative change of each block's spatial-mean vector with noise (docs/method.md 5.8).

    For each image and sigma in ``sigmas``: ||m(x, sigma) - m(x, 0)|| / ||m(x, 0)||, with m the
    noise-averaged spatial mean (`lib.representation.phi.phi`, ``n_noise`` draws). Returns
    {block: (len(sigmas), N) array} keyed by the names as given (default a1..a(2L)); images whose
    clean vector is zero give NaN.
    """

    sig = [check_sigma(s, "sigmas") for s in np.atleast_1d(np.asarray(sigmas, dtype=np.float64))]
    blocks = _default_blocks(model) if blocks is None else ([blocks] if isinstance(blocks, str) else list(blocks))
    modules = [resolve_blocks(model, b)[0] for b in blocks]
    fast = use_compiled(model, images.shape[0] * (1 + len(sig) * int(n_noise)))  # decided once for all the calls
    clean = phi_of(model, images, 0.0, 1, blocks=modules, batch_size=batch_size, amp=amp, compiled=fast)
    ref = {m: clean[m].double().numpy() for m in modules}
    out = {b: np.empty((len(sig), images.shape[0])) for b in blocks}
    for i, s in enumerate(sig):
        noisy = phi_of(model, images, s, n_noise, blocks=modules, seed=seed + i, batch_size=batch_size, amp=amp,
                       compiled=fast)
        for b, m in zip(blocks, modules):
            num = np.linalg.norm(noisy[m].double().numpy() - ref[m], axis=1)
            den = np.linalg.norm(ref[m], axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                out[b][i] = np.where(den > 0, num / den, np.nan)
    return out


def energy_channels(v, frac: float = 0.9) -> np.ndarray | int:
    """Smallest number of channels whose squared values carry ``frac`` of the energy sum_c v_c^2,
    per row of ``v`` ((C,) -> int, (N, C) -> (N,) int array; 0 for an all-zero row)."""
    a = as_numpy(v, "v", ndim=(1, 2))
    if not 0 < float(frac) <= 1:
        raise ValueError(f"frac: expected a fraction in (0, 1], got {frac!r}")
    a2 = np.atleast_2d(a)
    e = np.sort(a2 ** 2, axis=1)[:, ::-1]
    tot = e.sum(1, keepdims=True)
    cum = np.cumsum(e, axis=1)
    n = (cum < float(frac) * tot * (1 - 1e-12)).sum(1) + 1
    n = np.where(tot[:, 0] > 0, n, 0).astype(np.int64)
    return int(n[0]) if a.ndim == 1 else n
