"""lib.measure.kernel_distance: KID against a hand-computed value, ~0 for one distribution, clearly positive
for a shifted one, its interval and permutation null, and its input checks."""
import numpy as np
import pytest
import torch

from lib.measure import kernel_distance as KD


def test_hand_computed_tiny_example():
    # d = 1, k(a, b) = (ab + 1)^3. X = {0, 1}: k(0, 1) = 1 -> XX = 1. Y = {1, 2}: k(1, 2) = 27 -> YY = 27.
    # XY: k(0,1) + k(0,2) + k(1,1) + k(1,2) = 1 + 1 + 8 + 27 = 37 -> 37 / 4. KID = 1 + 27 - 2 * 37/4 = 9.5.
    assert KD.kid([[0.0], [1.0]], [[1.0], [2.0]]) == pytest.approx(9.5)
    # d = 2 divides the dot product: X = {(0,0), (1,1)}: k = (0 + 1)^3 = 1; Y = {(1,1), (1,1)}: k = (2/2 + 1)^3 = 8;
    # XY: 1, 1, 8, 8 -> 18 / 4. KID = 1 + 8 - 9 = 0.
    assert KD.kid([[0, 0], [1, 1]], [[1, 1], [1, 1]]) == pytest.approx(0.0)


def test_matches_brute_force_and_masks():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(0.3, 1, size=(5, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(a, b) for a in x for b in y) / 35
    assert KD.kid(x, y) == pytest.approx(xx + yy - 2 * xy)
    assert KD.kid_test(x, y, n_resamples=10)["kid"] == pytest.approx(xx + yy - 2 * xy)


def test_same_distribution_near_zero_shifted_clearly_positive():
    g = torch.Generator().manual_seed(0)
    a = 0.5 + 0.1 * torch.randn(200, 3, 4, 4, generator=g)
    b = 0.5 + 0.1 * torch.randn(200, 3, 4, 4, generator=g)
    same, shifted = KD.kid_test(a, b, seed=1), KD.kid_test(a, b + 0.2, seed=1)
    assert abs(same["kid"]) < same["null_95"] and same["ci_low"] <= 0 <= same["ci_high"]
    assert shifted["kid"] > 20 * max(same["null_95"], 1e-9) and shifted["ci_low"] > shifted["null_95"] > 0
    assert shifted["ci_low"] < shifted["kid"] < shifted["ci_high"] and (shifted["n_x"], shifted["n_y"]) == (200, 200)
    assert KD.kid_test(a, b + 0.2, seed=1) == shifted  # seeded


def test_interval_covers_the_spread_of_independent_estimates():
    """The half-sampling interval's width is about that of KID over independent draws (within a factor 2)."""
    rng = np.random.default_rng(0)
    draws = [KD.kid(rng.normal(size=(60, 4)), rng.normal(0.5, 1, size=(60, 4))) for _ in range(60)]
    true_width = np.quantile(draws, 0.975) - np.quantile(draws, 0.025)
    r = KD.kid_test(rng.normal(size=(60, 4)), rng.normal(0.5, 1, size=(60, 4)), seed=0)
    assert 0.5 * true_width < r["ci_high"] - r["ci_low"] < 2 * true_width


@pytest.mark.parametrize("x, y, match", [
    (np.zeros(5), np.zeros((5, 2)), "x: expected"),
    (np.zeros((5, 2)), np.zeros((1, 2)), "y: expected at least 2"),
    (np.zeros((5, 2)), np.zeros((5, 3)), "same feature dimension"),
    (np.full((5, 2), np.nan), np.zeros((5, 2)), "x: holds NaN"),
    (np.array([["a", "b"]] * 3), np.zeros((3, 2)), "x: expected a numeric"),
])
def test_bad_inputs_name_the_argument(x, y, match):
    with pytest.raises(ValueError, match=match):
        KD.kid(x, y)


def test_interval_needs_four_and_resamples():
    with pytest.raises(ValueError, match="at least 4"):
        KD.kid_test(np.zeros((3, 2)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="n_resamples"):
        KD.kid_test(np.zeros((5, 2)), np.zeros((5, 2)), n_resamples=3)


def test_notebook03_sample_quality_table():
    """nb03's helper on a tiny network: four rows with both spaces; the real halves sit near the floor and
    below the blurred images; sample sets report the share their sampler clamped; numbers keys as named."""
    from types import SimpleNamespace

    from lib.data.datasets import load_dataset
    from lib.model.unet import UNet, preset
    from lib.notebook import nb03_sampling as nb

    torch.manual_seed(0)
    model = UNet(preset("tiny")).eval()
    pool = load_dataset("tuxphoto", 48, size=16, split="test").float()
    fake = SimpleNamespace(samples=pool[:8].flip(-1), info={"outside_01": 0.25})
    rows = nb.sample_quality(model, pool, {"guided": fake}, exclude=range(8), n_real=20, blur=2.0, n_resamples=20)
    assert [r["set"] for r in rows] == ["real halves", "blurred", "guided"]
    R = {r["set"]: r for r in rows}
    assert R["real halves"]["n"] == 20 and R["real halves"]["n_reference"] == 20 and R["guided"]["n"] == 8
    assert R["real halves"]["pixels"]["kid"] < R["blurred"]["pixels"]["kid"]
    assert R["guided"]["outside_01"] == 0.25 and R["blurred"]["outside_01"] != R["blurred"]["outside_01"]
    num = nb.quality_numbers(rows)
    assert {"kid_pixels_real_halves", "kid_features_blurred_ci_low", "kid_features_guided_null_95",
            "outside_01_guided"} <= set(num) and "outside_01_blurred" not in num and num["kid_n_reference"] == 20
    assert len(nb.quality_display(rows)) == 3 and "guided" in nb.quality_note(rows)
    with pytest.raises(ValueError, match="at least 8"):
        nb.sample_quality(model, pool[:10], {}, exclude=range(5))
