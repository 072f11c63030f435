"""k-means in torch, for phi of ImageNet size (1.28 M x 512, k up to 10 000) on a GPU.

    labels, centers, inertia = torch_kmeans(X, k=1000, seed=0)                  # Lloyd, exact
    labels, centers, inertia = torch_kmeans(X, k, seed, batch_size=65536)       # X streamed in row batches
    labels, centers, inertia = torch_kmeans(X, k, seed, method="minibatch", batch_size=4096, max_iter=2000)
    (lib.measure.clustering.kmeans, which returns labels only, switches to this from TORCH_KMEANS_ROWS rows on;
    sklearn below)

- init: greedy k-means++ (sklearn's variant: 2 + log k candidates per step, keep the one that lowers the
  potential most), run on a seeded random subsample of ``init_size`` rows (default: all rows up to
  100 000, else max(100 000, 10 k)), or an explicit (k, D) array of initial centers.
- method="lloyd": full-batch Lloyd iterations. Rows go to the device ``batch_size`` at a time (all at
  once when None and they fit), so X may be a np.memmap larger than the device memory; the result does
  not depend on ``batch_size`` beyond float rounding. Stops when the squared shift of the centers is
  below ``tol`` times the mean per-feature variance (sklearn's rule) or labels stop changing. Empty
  clusters are moved to the rows farthest from their centers.
- method="minibatch": Sculley's mini-batch k-means (per-center learning rate 1 / count), ``max_iter``
  seeded batches of ``batch_size`` rows; then one full pass for labels and inertia.
Returns labels (N,) int64, centers (k, D) float32 and inertia (the sum of squared distances of each row
to its center, computed in float64) as numpy/float.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from lib.core.device import pick_device
from lib.core.profile import timed

DEFAULT_INIT_SIZE = 100_000


def _as_2d(X) -> np.ndarray | torch.Tensor:
    if isinstance(X, torch.Tensor):
        X = X.detach()
    elif not isinstance(X, np.ndarray):
        X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] < 1:
        raise ValueError(f"X: expected a non-empty (N, D) array, got shape {tuple(X.shape)}")
    return X


def _rows(X, idx_or_slice, dev) -> torch.Tensor:
    part = X[idx_or_slice]
    if isinstance(part, np.ndarray):
        part = torch.from_numpy(np.array(part, dtype=np.float32, copy=True))  # memmaps are read-only
    return part.to(dev, torch.float32)


def _batches(N: int, batch_size: int | None):
    b = N if batch_size is None else int(batch_size)
    for s in range(0, N, b):
        yield slice(s, min(N, s + b))


def _sqdist(x: torch.Tensor, c: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """(n, k) squared distances, clamped at 0 (||x||^2 - 2 x.c + ||c||^2)."""
    d = (x * x).sum(1, keepdim=True) - 2.0 * (x @ c.T) + c2
    return d.clamp_min_(0)


@timed("kmeans")
def kmeans_plusplus(X, k: int, seed: int = 0, device="auto", n_local_trials: int | None = None) -> torch.Tensor:
    """Greedy k-means++ centers (k, D) of the rows of X (held on the device), seeded."""
    dev = pick_device(device)
    x = _rows(X, slice(None), dev)
    N = x.shape[0]
    g = torch.Generator(device="cpu").manual_seed(int(seed))
    trials = n_local_trials or 2 + int(math.log(k))
    x2 = (x * x).sum(1)
    centers = torch.empty(k, x.shape[1], device=dev)
    first = int(torch.randint(N, (1,), generator=g))
    centers[0] = x[first]
    closest = (x2 - 2 * x @ x[first] + x2[first]).clamp_min_(0).double()
    pot = closest.sum()
    for c in range(1, k):
        r = torch.rand(trials, generator=g, dtype=torch.float64).to(dev) * pot
        cand = torch.searchsorted(torch.cumsum(closest, 0), r).clamp_(max=N - 1)
        xc = x[cand]
        d = (x2[None, :] - 2 * xc @ x.T + x2[cand][:, None]).clamp_min_(0).double()  # (trials, N)
        d = torch.minimum(d, closest[None, :])
        pots = d.sum(1)
        best = int(torch.argmin(pots))
        centers[c] = xc[best]
        closest, pot = d[best], pots[best]
    return centers


def _assign(X, centers, dev, batch_size, farthest: int = 0):
    """Labels, per-cluster sums and counts, inertia (float64) and, optionally, the farthest rows."""
    k, D = centers.shape
    c2 = (centers * centers).sum(1)[None, :]
    labels, sums = [], torch.zeros(k, D, device=dev, dtype=torch.float64)
    counts = torch.zeros(k, device=dev, dtype=torch.float64)
    inertia = torch.zeros((), device=dev, dtype=torch.float64)
    far_d, far_x = None, None
    for sl in _batches(len(X), batch_size):
        x = _rows(X, sl, dev)
        d = _sqdist(x, centers, c2)
        mind, lab = d.min(1)
        labels.append(lab)
        sums.index_add_(0, lab, x.double())
        counts += torch.bincount(lab, minlength=k).double()
        inertia += mind.double().sum()
        if farthest:
            m = min(farthest, len(mind))
            v, i = torch.topk(mind, m)
            far_d = v if far_d is None else torch.cat([far_d, v])
            far_x = x[i] if far_x is None else torch.cat([far_x, x[i]])
            if len(far_d) > farthest:
                v, i = torch.topk(far_d, farthest)
                far_d, far_x = v, far_x[i]
    return torch.cat(labels), sums, counts, inertia, far_x


def _fits(X, dev) -> bool:
    nbytes = X.shape[0] * X.shape[1] * 4
    if dev.type == "cuda":
        free, _ = torch.cuda.mem_get_info(dev)
        return nbytes * 3 < free
    return isinstance(X, torch.Tensor) or nbytes < 4 << 30


@timed("kmeans")
def torch_kmeans(X, k: int, seed: int = 0, init=None, n_init: int = 1, max_iter: int = 300, tol: float = 1e-4,
                 batch_size: int | None = None, method: str = "lloyd", init_size: int | None = None,
                 device="auto", progress: bool = False):
    """k-means of the rows of X (N, D). Returns (labels int64 (N,), centers float32 (k, D), inertia)."""
    X = _as_2d(X)
    N, D = X.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= N:
        raise ValueError(f"k: expected an integer in [1, {N}] (number of rows), got {k!r}")
    if method not in ("lloyd", "minibatch"):
        raise ValueError(f"method: expected 'lloyd' or 'minibatch', got {method!r}")
    if method == "minibatch" and not batch_size:
        raise ValueError("method='minibatch' needs a batch_size")
    dev = pick_device(device)
    if batch_size is None and method == "lloyd" and not _fits(X, dev):
        batch_size = 65536
    if batch_size is None:  # everything on the device once
        X = _rows(X, slice(None), dev)
    best = None
    runs = 1 if init is not None else int(n_init)
    for r in range(runs):
        s = int(seed) + 7919 * r
        if init is not None:
            c0 = torch.as_tensor(np.asarray(init, np.float32)).to(dev)
            if tuple(c0.shape) != (k, D):
                raise ValueError(f"init: expected shape ({k}, {D}), got {tuple(c0.shape)}")
        else:
            m = init_size or (N if N <= DEFAULT_INIT_SIZE else max(DEFAULT_INIT_SIZE, 10 * k))
            m = min(N, max(int(m), k))
            sub = np.sort(np.random.default_rng(s).choice(N, m, replace=False)) if m < N else slice(None)
            c0 = kmeans_plusplus(X[sub] if m < N else X, k, s, dev)
        run = _lloyd if method == "lloyd" else _minibatch
        res = run(X, c0, dev, batch_size, max_iter, tol, s, progress)
        if best is None or res[2] < best[2]:
            best = res
    return best


def _tol_abs(X, dev, batch_size, tol) -> float:
    s = torch.zeros(X.shape[1], device=dev, dtype=torch.float64)
    s2 = torch.zeros_like(s)
    for sl in _batches(len(X), batch_size):
        x = _rows(X, sl, dev).double()
        s += x.sum(0)
        s2 += (x * x).sum(0)
    var = s2 / len(X) - (s / len(X)) ** 2
    return float(tol * var.mean())


def _lloyd(X, centers, dev, batch_size, max_iter, tol, seed, progress):
    tol_abs = _tol_abs(X, dev, batch_size, tol)
    k = centers.shape[0]
    prev = None
    from tqdm.auto import trange
    for _ in trange(int(max_iter), desc="k-means", disable=not progress, leave=False):
        labels, sums, counts, _, far = _assign(X, centers, dev, batch_size, farthest=k)
        new = (sums / counts.clamp_min(1)[:, None]).float()
        empty = torch.nonzero(counts == 0).flatten()
        if len(empty):  # relocate empty clusters to the rows farthest from their centers
            new[empty] = far[:len(empty)]
        shift = float(((new - centers) ** 2).sum())
        centers = new
        if prev is not None and torch.equal(labels, prev):
            break
        prev = labels
        if shift <= tol_abs:
            break
    labels, _, _, inertia, _ = _assign(X, centers, dev, batch_size)
    return labels.cpu().numpy().astype(np.int64), centers.cpu().numpy(), float(inertia)


def _minibatch(X, centers, dev, batch_size, max_iter, tol, seed, progress):
    N, k = len(X), centers.shape[0]
    centers = centers.clone()
    counts = torch.zeros(k, device=dev, dtype=torch.float32)
    rng = np.random.default_rng(seed + 1)
    from tqdm.auto import trange
    for _ in trange(int(max_iter), desc="mini-batch k-means", disable=not progress, leave=False):
        idx = np.sort(rng.choice(N, min(int(batch_size), N), replace=False))
        x = _rows(X, torch.from_numpy(idx).to(X.device) if isinstance(X, torch.Tensor) else idx, dev)
        c2 = (centers * centers).sum(1)[None, :]
        lab = _sqdist(x, centers, c2).argmin(1)
        bc = torch.bincount(lab, minlength=k).float()
        bs = torch.zeros_like(centers).index_add_(0, lab, x)
        counts += bc
        hit = bc > 0
        # c <- c + (sum_batch - n_batch c) / count_total  (per-center learning rate 1/count)
        centers[hit] += (bs[hit] - bc[hit, None] * centers[hit]) / counts[hit, None]
    labels, _, _, inertia, _ = _assign(X, centers, dev, batch_size)
    return labels.cpu().numpy().astype(np.int64), centers.cpu().numpy(), float(inertia)
