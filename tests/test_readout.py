"""The readout's measures on small synthetic cases where the answer is known."""
import numpy as np
import pytest
import torch

from lib.data.datasets import load_dataset
from lib.measure import readout
from lib.model.unet import UNet, preset


def test_constant_representation_is_degenerate():
    X = np.tile(np.arange(1.0, 9.0), (50, 1))
    live = readout.liveness(X)
    assert live["varying_fraction"] == pytest.approx(0.0, abs=1e-12)
    assert live["mean_cosine"] == pytest.approx(1.0)
    assert live["degenerate"]
    assert "DEGENERATE" in readout.liveness_note(live)


def test_zero_mean_representation_is_fully_live():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4000, 16))
    X -= X.mean(0)
    live = readout.liveness(X)
    assert live["varying_fraction"] == pytest.approx(1.0)
    assert abs(live["mean_cosine"]) < 0.01
    assert not live["degenerate"]
    # a constant offset carrying 97% of the energy: varying fraction 3%, degenerate
    Y = X / np.sqrt((X ** 2).sum(1).mean()) * np.sqrt(0.03) + np.sqrt(0.97 / 16)
    assert readout.liveness(Y)["varying_fraction"] == pytest.approx(0.03, rel=1e-6)
    assert readout.liveness(Y)["degenerate"]


def test_effective_channels_counts_active_channels():
    assert readout.effective_channels(np.eye(8)[3]) == pytest.approx(1.0)
    assert readout.effective_channels(np.ones(8)) == pytest.approx(8.0)
    two = np.zeros((2, 10))
    two[0, :2] = 1
    two[1, :5] = 1
    np.testing.assert_allclose(readout.effective_channels(two), [2.0, 5.0])


def _separable(n=600, d=5, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    X = rng.standard_normal((n, d)) * 0.3
    X[np.arange(n), y] += 4.0
    return X, y


def test_probe_and_knn_on_linearly_separable_data_reach_one():
    X, y = _separable()
    r = readout.probe(X[:400], y[:400], X[400:], y[400:], seed=0)
    assert r["accuracy"] == 1.0 and r["train_accuracy"] == 1.0
    assert r["C"] in readout.PROBE_CS and len(r["cv_accuracy"]) == len(readout.PROBE_CS)
    assert readout.ridge_probe(X[:400], y[:400], X[400:], y[400:])["accuracy"] == 1.0
    assert readout.knn_accuracy(X[:400], y[:400], X[400:], y[400:]) == 1.0


def test_probe_on_noise_is_at_chance():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((3000, 20)), rng.integers(0, 4, 3000)
    r = readout.probe(X[:2000], y[:2000], X[2000:], y[2000:], seed=0)
    assert r["ci_low"] < 0.25 + 0.03 and r["accuracy"] < 0.31


def test_readout_bad_inputs():
    X, y = _separable()
    with pytest.raises(ValueError, match="at least 2 images"):
        readout.liveness(X[:1])
    with pytest.raises(ValueError, match="ytr: expected 400 labels"):
        readout.probe(X[:400], y[:300], X[400:], y[400:])
    with pytest.raises(ValueError, match="two classes"):
        readout.knn_accuracy(X[:400], np.zeros(400), X[400:], y[400:])
    with pytest.raises(ValueError, match="columns like Xtr"):
        readout.knn_accuracy(X[:400], y[:400], X[400:, :3], y[400:])
    with pytest.raises(ValueError, match="k: 5 clusters asked for 3 images"):
        readout.cluster_ami(X[:3], y[:3], k=5)
    with pytest.raises(ValueError, match="NaN"):
        readout.liveness(np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match=r"classes \[2\] of the test rows have no training rows"):
        readout.probe(X[:400][y[:400] != 2], y[:400][y[:400] != 2], X[400:], y[400:])


def test_sigma_outside_the_trained_range_warns():
    net = UNet(preset("tiny"))
    net.checkpoint_metadata = {"train_config": {"sigma_max": 1.0}}
    with pytest.warns(UserWarning, match="sigma 25 is above the largest training noise level 1"):
        assert not readout.check_trained_sigma(net, 25)
    assert readout.check_trained_sigma(net, 0.8)


def test_kurtotic_channels_exclude_rare_ones():
    from lib.measure.channels import kurtotic_channels
    rng = np.random.default_rng(0)
    n = 1000
    heavy = np.where(rng.random(n) < 0.05, rng.exponential(5, n), 0.0)   # active on ~5%: counted
    rare = np.zeros(n)
    rare[:4] = 3.0                                                        # active on 0.4% (< 1%): excluded
    gauss = rng.normal(5, 1, n)
    assert kurtotic_channels(np.c_[heavy, rare, gauss]) == 1
    assert kurtotic_channels(np.c_[heavy, rare, gauss], min_active_frac=0.0) == 2


def test_authors_gain_init_and_untrained_twin_share_the_scheme():
    cfg = preset("tiny", gain_init="authors")
    net = UNet(cfg)
    gains = torch.cat([m.gain.detach().flatten() for m in net.modules() if hasattr(m, "gain")])
    assert gains.abs().max() <= 0.025 + 1e-9 and (gains < 0).any() and (gains > 0).any()
    twin = readout.untrained_twin(net, 3)
    assert twin.config.gain_init == "authors"
    tg = torch.cat([m.gain.detach().flatten() for m in twin.modules() if hasattr(m, "gain")])
    assert tg.abs().max() <= 0.025 + 1e-9 and not torch.equal(tg, gains)
    assert torch.equal(torch.cat([p.flatten() for p in readout.untrained_twin(net, 3).parameters()]),
                       torch.cat([p.flatten() for p in twin.parameters()]))
    with pytest.raises(ValueError, match="gain_init"):
        preset("tiny", gain_init="zeros")


def test_probe_with_controls_and_grid_on_tiny_model():
    torch.manual_seed(0)
    net = UNet(preset("tiny")).eval()
    train = load_dataset("shapes", n=60, size=16, seed=0, split="train")
    test = load_dataset("shapes", n=40, size=16, seed=0, split="test")
    res = readout.probe_with_controls(net, train, test, sigma=0.2, n_noise=1, seeds=(0, 1), untrained_seeds=(0, 1))
    assert (len(res.phi), len(res.untrained), len(res.pixel), len(res.pca_pixel)) == (2, 2, 1, 1)
    r = res.flat()
    for rep in ("phi", "untrained", "pixel", "pca_pixel"):
        for k in ("probe_acc", "knn_acc", "class_ami", "varying_fraction"):
            assert np.isfinite(r[f"{rep}_{k}"]), (rep, k)
        assert r[f"{rep}_probe_acc"] == pytest.approx(np.mean([sc.probe_acc for sc in getattr(res, rep)]))
    assert "phi_probe_acc_sd" in r and "untrained_knn_acc_sd" in r and "pixel_knn_acc_sd" not in r
    assert r["probe_train_images"] == 60 and r["pca_pixel_dims"] == net.config.mid_width
    best = max(r[f"{c}_knn_acc"] for c in ("untrained", "pixel", "pca_pixel"))
    assert res.gaps()["knn_acc"] == pytest.approx(r["phi_knn_acc"] - best)
    rows = readout.readout_grid(net, train, test, sigmas=(0.0, 0.2), blocks=["enc1", "mid"], n_noise=1)
    assert {(r["model"], r["block"]) for r in rows} >= {("pixels", "pixels"), ("trained", "mid"),
                                                        ("untrained-0", "output")}
    assert len(rows) == 1 + 2 * 2 * 3


def test_make_evidence_keys_on_the_tiny_checkpoint():
    """`make evidence` keeps its keys and adds the readout's (the probe keys from the tuned train-split probe)."""
    from lib.training.evidence import default_evidence
    ev = default_evidence("data/checkpoints/tiny16", n=40, n_train=60)
    old = ["mid_pr_in", "mid_pr_out", "phi_class_nmi", "pixel_class_nmi", "untrained_class_nmi", "phi_probe_acc",
           "pixel_probe_acc", "untrained_probe_acc", "n_kurtotic_channels", "untrained_n_kurtotic_channels",
           "untrained_mid_pr_out", "phi_background_nmi", "pixel_background_nmi", "dataset", "images_seen", "n_images"]
    new = ["evidence_sigma", "mid_varying_fraction", "mid_eff_channels_in", "mid_eff_channels_out", "phi_knn_acc",
           "pixel_knn_acc", "untrained_knn_acc", "pca_pixel_probe_acc", "untrained_probe_acc_sd", "probe_train_images"]
    assert set(old + new) <= set(ev), sorted(set(old + new) - set(ev))
    assert ev["evidence_sigma"] == readout.ANALYSIS_SIGMA and ev["probe_train_images"] == 60
    assert 0 <= ev["mid_varying_fraction"] <= 1 and ev["mid_eff_channels_out"] >= 1
