"""lib.measure.kept: the kept-factor measure on cases with a known answer."""
import numpy as np
import pytest
import torch

from lib.measure import kept as K

COLOURS = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]])


def flat_images(classes, bright, seed, size=16):
    """Flat colour images: class = hue (3 values), bright = intensity (2 values), plus uniform noise."""
    g = torch.Generator().manual_seed(seed)
    c = COLOURS[torch.as_tensor(classes)] * torch.where(torch.as_tensor(bright) == 1, 1.0, 0.5)[:, None]
    x = c[:, :, None, None].expand(-1, -1, size, size)
    return (x + 0.05 * torch.rand(x.shape, generator=g)).clamp(0, 1)


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    from lib.model.unet import UNet, preset
    model = UNet(preset("tiny")).eval()
    rng = np.random.default_rng(0)
    yc, yb = np.arange(90) % 3, (np.arange(90) // 3) % 2
    readers = K.fit_readers(model, flat_images(yc, yb, 1), {"class": yc, "bright": yb})
    pc, pb = np.arange(60) % 3, rng.integers(0, 2, 60)
    pool = flat_images(pc, pb, 2)
    return model, readers, pool, {"class": pc, "bright": pb}


def test_known_answers(setup):
    model, readers, pool, factors = setup
    tidx = np.arange(6)  # two targets of each colour
    copies = (pool[tidx].repeat_interleave(2, 0)
              + 0.01 * torch.rand(12, 3, 16, 16, generator=torch.Generator().manual_seed(3)))
    yc = factors["class"][tidx]
    wrong = flat_images((np.repeat(yc, 2) + 1) % 3, np.repeat(factors["bright"][tidx], 2), 4)
    unc = flat_images(np.arange(30) % 3, np.zeros(30, int), 5)
    rows = {(r["factor"], r["reader"]): r
            for r in K.kept_table(model, readers, pool, factors, tidx, copies.clamp(0, 1), 2, unc)}
    knn = rows[("class", "knn")]
    assert knn["guided"] == 1.0 and knn["target"] == 1.0 and knn["second_real"] == 1.0 and knn["pool_accuracy"] == 1.0
    assert knn["unconditional"] == pytest.approx(1 / 3)   # 10 of each colour against 2 targets of each
    assert knn["n"] == 12 and knn["chance"] == pytest.approx(1 / 3) and knn["guided_ci_low"] > 0.7
    assert rows[("class", "probe")]["guided"] >= 0.9 and rows[("class", "probe")]["target"] >= 0.9
    wrong_rows = {(r["factor"], r["reader"]): r for r in K.kept_table(model, readers, pool, factors, tidx, wrong, 2)}
    assert wrong_rows[("class", "knn")]["guided"] == 0.0 and np.isnan(wrong_rows[("class", "knn")]["unconditional"])
    assert wrong_rows[("bright", "knn")]["guided"] == 1.0  # the brightness was kept, the hue was not


def test_nearest_real_and_helpers(setup):
    _, _, pool, factors = setup
    tidx = np.array([0, 7, 20])
    near = K.nearest_real(pool[tidx].repeat_interleave(2, 0), pool, tidx, 2)
    assert near["nearest_is_target"] == 1.0 and near["target_rank_median"] == 0 and near["chance"] == 1 / 60
    assert near["distance_to_target"] == pytest.approx(0.0, abs=1e-6)
    far = K.nearest_real(pool[[1, 8, 21]], pool, tidx, 1)
    assert far["nearest_is_target"] == 0.0 and far["target_rank_median"] >= 1
    assert K.expected_match([0, 0, 1, 1], [0, 1]) == 0.5 and K.expected_match([2, 2], [0, 1]) == 0.0
    partner = K.second_real(factors["class"], tidx, seed=0)
    assert (factors["class"][partner] == factors["class"][tidx]).all() and (partner != tidx).all()
    assert (K.second_real([0, 1, 1], [0], seed=0) == -1).all()
    rows = [dict(factor="a", reader="knn", pool_accuracy=0.6, pool_chance=0.5),
            dict(factor="b", reader="probe", pool_accuracy=0.5, pool_chance=0.1)]
    assert K.kept_factor(rows)["factor"] == "b"   # kappa 0.44 beats 0.2 although its accuracy is lower


def test_bad_inputs(setup):
    model, readers, pool, factors = setup
    tidx = np.arange(3)
    with pytest.raises(ValueError, match="3 targets x 2 samples"):
        K.kept_table(model, readers, pool, factors, tidx, pool[:5], 2)
    with pytest.raises(ValueError, match="NaN"):
        K.kept_table(model, readers, pool, factors, tidx, torch.full((6, 3, 16, 16), float("nan")), 2)
    with pytest.raises(ValueError, match="target_idx"):
        K.kept_table(model, readers, pool, factors, [99], pool[:2], 2)
    with pytest.raises(ValueError, match="no labels for factor"):
        K.kept_table(model, readers, pool, {"class": factors["class"]}, tidx, pool[:6], 2)
    with pytest.raises(ValueError, match="shape"):
        K.kept_table(model, readers, pool, factors, tidx, torch.zeros(6, 3, 8, 8), 2)
    with pytest.raises(ValueError, match="at least two values"):
        K.fit_readers(model, pool[:4], {"class": np.zeros(4, int)})
