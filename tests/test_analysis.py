"""Known-answer tests of lib.measure.channels, lib.measure.clustering, lib.measure.probe and lib.measure.distances
(fast, CPU)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from lib.measure import channels as analysis
from lib.measure import clustering, distances, probe
from lib.model.unet import UNet, preset


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return UNet(preset("tiny")).eval()


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 3, 16, 16, generator=g)


# ---------------------------------------------------------------- analysis

def test_participation_ratio_known_values():
    C = 8
    assert analysis.participation_ratio(np.eye(C)[2]) == pytest.approx(1 / C)
    assert analysis.participation_ratio(np.full(C, 3.0)) == pytest.approx(1.0)
    assert analysis.energy_participation_ratio(np.eye(C)[0]) == pytest.approx(1 / C)
    m = np.stack([np.eye(C)[0], np.ones(C), np.r_[np.ones(4), np.zeros(4)]])
    np.testing.assert_allclose(analysis.participation_ratio(torch.tensor(m)), [1 / C, 1, 0.5])
    assert np.isnan(analysis.participation_ratio(np.zeros((2, C)))).all()


def test_energy_channels():
    assert analysis.energy_channels(np.eye(5)[1], 0.9) == 1
    np.testing.assert_array_equal(analysis.energy_channels(np.stack([np.ones(10), [3, 1, 0, 0]  + [0] * 6]), 0.9),
                                  [9, 1])
    assert analysis.energy_channels(np.ones(10), 1.0) == 10


def test_channel_stats_and_split():
    rng = np.random.default_rng(0)
    n = 4000
    gauss = 5 + rng.normal(size=n)                                 # common: near-Gaussian, always on
    sparse = np.where(rng.random(n) < 0.05, rng.exponential(5, n), 0)  # specialized: rarely on
    dead = np.zeros(n)
    phi = np.stack([gauss, sparse, dead], 1)
    st = analysis.channel_stats(phi)
    assert abs(st["kurtosis"][0]) < 0.3
    assert st["kurtosis"][1] > 10 and np.isnan(st["kurtosis"][2])
    assert st["frac_active"][0] == 1.0 and st["frac_active"][1] < 0.1 and st["frac_active"][2] == 0
    assert st["lifetime_pr"][0] > 0.9 and st["lifetime_pr"][1] < 0.2
    sp = analysis.split_channels(phi)
    assert list(sp["specialized"]) == [1] and list(sp["common"]) == [0] and list(sp["dead"]) == [2]
    sq = analysis.split_channels(phi, rule="quantile", quantile=0.5)
    assert list(sq["specialized"]) == [1] and list(sq["common"]) == [0]


def test_top_off_purity():
    phi = np.array([[0.0, 1], [5, 0], [3, 0], [0, 2], [4, 0]])
    top = analysis.top_images(phi, [0, 1], k=2)
    np.testing.assert_array_equal(top, [[1, 4], [3, 0]])
    assert set(analysis.off_images(phi, 0, n=10)) == {0, 3}
    pur = analysis.purity(top, {"class": np.array([0, 1, 1, 0, 1])})
    np.testing.assert_allclose(pur["class"]["purity"], [1.0, 1.0])
    np.testing.assert_array_equal(pur["class"]["mode"], [1, 0])


def test_analysis_bad_inputs():
    with pytest.raises(ValueError, match="v"):
        analysis.participation_ratio(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="v"):
        analysis.participation_ratio([1.0, np.nan])
    with pytest.raises(ValueError, match="phi"):
        analysis.channel_stats(np.ones((2, 3)))
    with pytest.raises(ValueError, match="rule"):
        analysis.split_channels(np.random.rand(10, 3), rule="magic")
    with pytest.raises(ValueError, match="channels"):
        analysis.top_images(np.ones((5, 2)), [2])
    with pytest.raises(ValueError, match="k"):
        analysis.top_images(np.ones((5, 2)), [0], k=6)
    with pytest.raises(ValueError, match="frac"):
        analysis.energy_channels(np.ones(3), 0)


def test_block_pr_and_noise_robustness_tiny(tiny, images):
    prs = analysis.block_pr(tiny, images)
    assert list(prs) == ["a1", "a2", "a3", "a4", "a5", "a6"]
    for v in prs.values():
        assert v["in"].shape == (6,) and v["out"].shape == (6,)
        assert np.all((v["out"] > 0) & (v["out"] <= 1 + 1e-9))
    rob = analysis.noise_robustness(tiny, images, [0.1, 0.5], blocks=["mid", "a1"], n_noise=2)
    assert rob["mid"].shape == (2, 6) and np.all(rob["a1"] >= 0)
    with pytest.raises(ValueError, match="sigmas"):
        analysis.noise_robustness(tiny, images, [-1.0], blocks="mid")


# ---------------------------------------------------------------- clustering

def _blobs(sep=8.0, n=100, d=5, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d))
    b[:, 0] += sep
    return a, b


def test_kmeans_scores_perfect():
    a, b = _blobs()
    X = np.r_[a, b]
    truth = np.r_[np.zeros(100), np.ones(100)]
    lab = clustering.kmeans(X, 2, seed=0)
    s = clustering.scores(lab, truth)
    assert s["nmi"] == pytest.approx(1.0) and s["ari"] == pytest.approx(1.0)
    lab2, centers = clustering.kmeans(X, 2, seed=0, return_centers=True)
    np.testing.assert_array_equal(lab, lab2)
    assert centers.shape == (2, 5)
    s_wrong = clustering.scores(np.random.default_rng(0).integers(0, 2, 200), truth)
    assert abs(s_wrong["ari"]) < 0.05


def test_separation_ratio_known_blobs():
    """The paper's ratio ||c_A - c_B|| / sqrt(s_A^2 + s_B^2): unit-std blobs 4 apart give 4 / sqrt(2)."""
    a, b = _blobs(sep=4.0, n=20000, d=3)
    s = clustering.separation(a, b)
    assert s["distance"] == pytest.approx(4.0, abs=0.05)
    assert s["spread"] == pytest.approx(np.sqrt(2.0), abs=0.03)
    assert clustering.separation_ratio(a, b) == pytest.approx(4.0 / np.sqrt(2.0), rel=0.03)
    assert (s["n_a"], s["n_b"]) == (20000, 20000)
    g = clustering.group_separations(np.r_[a, b], np.r_[np.zeros(20000), np.ones(20000)])
    assert g["ratio"][0] == pytest.approx(s["ratio"])


def test_tsne_and_clustering_bad_inputs():
    a, b = _blobs(n=20)
    emb = clustering.tsne(np.r_[a, b], seed=0)
    assert emb.shape == (40, 2) and np.isfinite(emb).all()
    with pytest.raises(ValueError, match="k"):
        clustering.kmeans(a, 0)
    with pytest.raises(ValueError, match="truth"):
        clustering.scores([0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="Xb"):
        clustering.separation(a, b[:, :2])
    with pytest.raises(ValueError, match="Xa"):
        clustering.separation(a[:1], b)


# ---------------------------------------------------------------- probe

def test_wilson_interval():
    lo, hi = probe.wilson_interval(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-3) and hi == pytest.approx(0.5962, abs=1e-3)
    lo, hi = probe.wilson_interval(10, 10)
    assert hi == 1.0 and 0.6 < lo < 0.8
    with pytest.raises(ValueError, match="k"):
        probe.wilson_interval(11, 10)


# ---------------------------------------------------------------- distances

def test_neighbours_and_auc():
    X = np.array([[0.0], [0.1], [5.0], [5.2], [10.0]])
    np.testing.assert_array_equal(distances.nearest_neighbours(X, [0, 2], k=2), [[1, 2], [3, 1]])
    labels = np.array([0, 0, 1, 1, 2])
    dd = distances.class_distance_distributions(X, labels)
    assert len(dd["same"]) == 2 and len(dd["diff"]) == 8
    assert distances.distance_auc(dd["same"], dd["diff"]) == 1.0
    assert distances.same_class_auc(X, labels) == 1.0
    assert distances.band_ratio(np.array([1.0, 2, 3]), np.array([2.0, 4, 6])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="queries"):
        distances.nearest_neighbours(X, [5])
    with pytest.raises(ValueError, match="labels"):
        distances.class_distance_distributions(X, labels[:3])


def test_conditional_density_distance_tiny(tiny, images):
    x1, x2 = images[:3], images[3:]
    d, curve, ratios = distances.conditional_density_distance(tiny, x1, x2, sigmas=[0.1, 0.3], steps=2,
                                                              phi_noise=1, return_curve=True)
    assert d.shape == (3,) and np.all(d >= 0) and curve.shape == (2, 3)
    same = distances.conditional_density_distance(tiny, x1, x1, sigmas=[0.1, 0.3], steps=2, phi_noise=1)
    assert same.shape == (3,)
    # identical pairs: the two projections see the same target (different noise draws for the
    # targets only), so they are much closer than distinct pairs on average
    assert same.mean() < d.mean()
    y, ratio = distances.project_to_phi(tiny, images, torch.zeros(6, 32), steps=3, lr=0.01)
    assert y.shape == images.shape and ratio.shape == (6,)
    with pytest.raises(ValueError, match="sigmas"):
        distances.conditional_density_distance(tiny, x1, x2, sigmas=[0.3, 0.1])
    with pytest.raises(ValueError, match="x2"):
        distances.conditional_density_distance(tiny, x1, images[:2], sigmas=[0.1, 0.3])


def test_score_table():
    a, b = _blobs(n=30)
    X = np.r_[a, b]
    y = np.r_[np.zeros(30), np.ones(30)]
    rows = clustering.score_table({"blobs": X, "noise": np.random.default_rng(0).normal(size=(60, 5))},
                                  {"class": y, "four": np.arange(60) % 4}, n_init=2)
    assert len(rows) == 4 and rows[0]["k"] == 2 and rows[1]["k"] == 4
    assert rows[0]["ami"] == pytest.approx(1.0) and abs(rows[2]["ami"]) < 0.2
    with pytest.raises(ValueError, match="factors"):
        clustering.score_table({"blobs": X}, {})


def test_class_distances_sampled_matches_full():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = rng.integers(0, 3, 50)
    full = distances.class_distance_distributions(X, y, chunk=7)
    assert len(full["same"]) + len(full["diff"]) == 50 * 49 // 2
    D = distances.pairwise_distances(X)
    i, j = np.triu_indices(50, 1)
    np.testing.assert_allclose(np.sort(full["same"]), np.sort(D[i, j][y[i] == y[j]]), atol=1e-9)
    samp = distances.class_distance_distributions(X, y, max_pairs=100)
    assert len(samp["same"]) + len(samp["diff"]) == 100


def test_rare_channels_and_class_channel_pair():
    rng = np.random.default_rng(0)
    n = 300
    y = np.repeat([0, 1, 2], 100)
    phi = rng.normal(1, 0.1, size=(n, 4))
    phi[y == 0, 1] += 2           # channel 1 belongs to class 0
    phi[y == 2, 3] += 2           # channel 3 belongs to class 2
    single = np.zeros(n)
    single[5] = 1.0               # fires for one image only: rare, not specialized
    sp = analysis.split_channels(np.c_[phi, single])
    assert list(sp["rare"]) == [4] and 4 not in sp["specialized"]
    pair = analysis.class_channel_pair(phi, y)
    assert set(pair["classes"]) == {0, 2}
    assert dict(zip(pair["classes"], pair["channels"])) == {0: 1, 2: 3}
    assert min(pair["auc"]) > 0.99
    with pytest.raises(ValueError, match="labels"):
        analysis.class_channel_pair(phi, y[:5])
