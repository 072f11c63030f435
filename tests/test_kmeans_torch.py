"""lib.measure.kmeans against sklearn on small blobs (CPU)."""
import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans
from sklearn.cluster import kmeans_plusplus as sk_kmeans_plusplus
from sklearn.metrics import adjusted_rand_score

from lib.measure.kmeans import kmeans_plusplus, torch_kmeans


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 4, (12, 16))
    lab = rng.integers(0, 12, 3000)
    X = (centers[lab] + rng.normal(0, 1.5, (3000, 16))).astype(np.float32)
    return X, lab


def test_same_init_same_inertia_as_sklearn(blobs):
    X, _ = blobs
    init, _ = sk_kmeans_plusplus(X, 12, random_state=3)
    km = KMeans(12, init=init, n_init=1, max_iter=300).fit(X)
    lab, cen, inertia = torch_kmeans(X, 12, seed=0, init=init)
    assert inertia == pytest.approx(km.inertia_, rel=0.01)
    assert adjusted_rand_score(lab, km.labels_) > 0.99
    assert lab.dtype == np.int64 and lab.shape == (3000,) and cen.shape == (12, 16) and cen.dtype == np.float32
    # the reported inertia is the one of the returned labels and centers
    assert inertia == pytest.approx(float(((X - cen[lab]) ** 2).sum()), rel=1e-4)
    # streaming the rows in batches gives the same answer
    lab_b, _, inertia_b = torch_kmeans(X, 12, seed=0, init=init, batch_size=256)
    assert inertia_b == pytest.approx(inertia, rel=1e-5) and (lab_b == lab).mean() > 0.999


def test_own_init_is_seeded_and_as_good_as_sklearn(blobs):
    X, truth = blobs
    a = torch_kmeans(X, 12, seed=1, n_init=3)
    b = torch_kmeans(torch.from_numpy(X), 12, seed=1, n_init=3)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[2] == b[2]
    sk = KMeans(12, n_init=3, random_state=1).fit(X)
    assert a[2] <= sk.inertia_ * 1.05
    # k-means++ picks data rows
    c = kmeans_plusplus(X, 5, seed=2, device="cpu").numpy()
    assert all((np.abs(X - r).sum(1) == 0).any() for r in c)


def test_minibatch_close_to_full(blobs):
    X, _ = blobs
    init, _ = sk_kmeans_plusplus(X, 12, random_state=3)
    full = torch_kmeans(X, 12, seed=0, init=init)[2]
    lab, cen, inertia = torch_kmeans(X, 12, seed=0, init=init, method="minibatch", batch_size=256, max_iter=100)
    assert inertia <= full * 1.05


def test_empty_clusters_are_relocated():
    X = np.concatenate([np.zeros((50, 2)), np.ones((50, 2)) * 10]).astype(np.float32)
    X += np.random.default_rng(0).normal(0, 0.1, X.shape).astype(np.float32)
    init = np.array([[0, 0], [10, 10], [100, 100]], np.float32)  # the third attracts nothing
    lab, cen, _ = torch_kmeans(X, 3, init=init)
    assert len(np.unique(lab)) == 3


@pytest.mark.parametrize("kw,msg", [(dict(k=0), "k:"), (dict(k=5, method="elkan"), "method"),
                                    (dict(k=5, method="minibatch"), "batch_size"),
                                    (dict(k=5, init=np.zeros((4, 16))), "init")])
def test_errors(blobs, kw, msg):
    with pytest.raises(ValueError, match=msg):
        torch_kmeans(blobs[0], **kw)


def test_clustering_switches_to_torch_above_threshold(monkeypatch, blobs):
    from lib.measure import clustering
    X = blobs[0] if isinstance(blobs, tuple) else blobs
    monkeypatch.setattr(clustering, "TORCH_KMEANS_ROWS", 100)
    lab = clustering.kmeans(X, 12, seed=0)
    assert lab.shape == (len(X),) and lab.dtype == np.int64 and len(np.unique(lab)) == 12
