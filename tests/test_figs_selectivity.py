"""Fast tests of lib.notebook.nb02_selectivity (notebook 02's channel pickers, tables and figures) on synthetic data."""
from __future__ import annotations

import numpy as np
import pytest

from lib.measure import channels as analysis
from lib.notebook import nb02_selectivity as F


def _st(kurtosis, dead, frac_active=None):
    k = np.asarray(kurtosis, dtype=np.float64)
    return {"kurtosis": k, "dead": np.asarray(dead, dtype=np.float64),
            "frac_active": np.ones_like(k) if frac_active is None else np.asarray(frac_active, dtype=np.float64)}


def _split(spec=(), com=(), rare=()):
    return {"specialized": np.asarray(spec, dtype=np.int64), "common": np.asarray(com, dtype=np.int64),
            "rare": np.asarray(rare, dtype=np.int64)}


@pytest.fixture(scope="module")
def two_classes():
    """40 images, 4 classes of 10; ch 0 fires only for class 0, ch 1 only for class 1, ch 2-3 broad."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 10)
    f = np.zeros((40, 4))
    f[labels == 0, 0] = 5 + rng.random(10)
    f[labels == 1, 1] = 5 + rng.random(10)
    f[:, 2] = 3 + rng.normal(size=40)
    f[:, 3] = 2 + rng.random(40)
    return f, labels


def test_pick_falls_back_on_highest_kurtosis_live_channels():
    st = _st([5.0, np.nan, 2.0, 8.0, 0.1, -1.0], dead=[0, 1, 0, 0, 0, 0])
    spec, com = F.pick(_split(spec=[3], com=[5]), st, n=3)
    assert spec == [3, 0, 2]          # the one specialized, then 0 (kurt 5) and 2 (kurt 2); never the dead 1
    assert com == [5, 4]              # lowest kurtosis not already picked; 2, 0, 3 are taken and 1 is dead


def test_pick_keeps_split_order_when_enough():
    st = _st([9.0, 7.0, 5.0, 0.0, -0.5], dead=[0] * 5)
    spec, com = F.pick(_split(spec=[1, 0, 2], com=[4, 3]), st, n=2)
    assert spec == [1, 0] and com == [4, 3]


def test_shown_channels_filters_inactive_and_skips_rare_and_dead():
    st = _st([10.0, 9.0, 8.0, np.nan, 4.0, 1.0], dead=[0, 0, 0, 1, 0, 0],
             frac_active=[0.02, 0.5, 0.5, 0.0, 0.5, 0.9])
    # specialized 0 is active for 2 of 100 images < n_top // 2 = 5: dropped; 1 is rare; 3 dead
    out = F.shown_channels(_split(spec=[0, 2], rare=[1]), st, n_images=100, n_top=10, n_show=3)
    assert out.dtype == np.int64
    assert out.tolist() == [2, 0, 4]  # 2, then fill by kurtosis: 0 (kurt 10) is live and not rare


def test_shown_channels_caps_at_n_show():
    st = _st([3.0, 4.0, 5.0, 6.0], dead=[0] * 4)
    assert F.shown_channels(_split(spec=[3, 2, 1, 0]), st, 50, 10, 2).tolist() == [3, 2]


@pytest.mark.filterwarnings("ignore:Precision loss")
def test_summary_rows_counts(two_classes):
    f, _ = two_classes
    reps = {"a": f, "b": np.c_[f, np.ones(40)]}       # b has an extra constant (dead) channel
    stats = {k: analysis.channel_stats(v) for k, v in reps.items()}
    splits = {k: analysis.split_channels(v, stats=stats[k]) for k, v in reps.items()}
    rows = F.summary_rows(reps, stats, splits)
    assert [r["representation"] for r in rows] == ["a", "b"]
    assert rows[0]["channels"] == 4 and rows[1]["channels"] == 5
    assert rows[0]["dead"] == 0 and rows[1]["dead"] == 1
    assert rows[0]["specialized / live"] == pytest.approx(len(splits["a"]["specialized"]) / 4)


def test_purity_rows_high_kurtosis_channels_are_pure(two_classes):
    f, labels = two_classes
    st = analysis.channel_stats(f)
    rows, chance = F.purity_rows(f, st, {"class": labels}, n_top=5, n_purity=2, name="x")
    assert [r["channels"] for r in rows] == ["high kurtosis", "low kurtosis"]
    assert rows[0]["representation"] == "x" and rows[0]["n"] == 2
    assert rows[0]["class purity"] == 1.0              # top images of ch 0 / ch 1 are all one class
    assert rows[1]["class purity"] < 1.0
    assert 0.25 <= chance["class"] < 1.0


def test_purity_table_appends_chance_row(two_classes):
    f, labels = two_classes
    reps = {"a": f, "b": f[:, ::-1].copy()}
    stats = {k: analysis.channel_stats(v) for k, v in reps.items()}
    rows, chance = F.purity_table(reps, stats, {"class": labels}, n_top=5, n_purity=1)
    assert len(rows) == 5 and rows[-1]["representation"] == "chance"
    assert rows[-1]["class purity"] == chance["class"]


def test_exclusive_pair_finds_class_channels(two_classes):
    f, labels = two_classes
    st = analysis.channel_stats(f)
    p = F.exclusive_pair(f, st, _split(spec=[0, 1], com=[3, 2]), labels)
    (ca, cb), (ja, jb, jc) = p["classes"], p["channels"]
    assert {ca: ja, cb: jb} == {0: 0, 1: 1}
    assert jc == int([3, 2][np.argmin(st["kurtosis"][[3, 2]])])
    assert min(p["auc"]) == pytest.approx(1.0)
    assert p["A on own"] == 1.0 and p["A on other"] == 0.0 and p["B on own"] == 1.0 and p["B on other"] == 0.0


def test_claims():
    summary = [{"representation": k, "specialized / live": v, "common": 3}
               for k, v in (("trained", 0.3), ("untrained", 0.1), ("pixels", 0.2))]
    pur = [{"representation": k, "channels": "high kurtosis", "class purity": v}
           for k, v in (("trained", 0.6), ("untrained", 0.3), ("pixels", 0.7))]
    pairs = {"trained": {"auc": (0.95, 0.92)}, "untrained": {"auc": (0.9, 0.8)}}
    c = F.claims(summary, pur, {"class": 0.25}, pairs)
    assert c == {"specialized": True, "purity": False, "subspace": True}   # pixels beat trained on purity
    pairs["trained"]["auc"] = (0.95, 0.85)
    assert not F.claims(summary, pur, {"class": 0.25}, pairs)["subspace"]


def test_figures_have_expected_layout(two_classes):
    import matplotlib.pyplot as plt
    f, labels = two_classes
    reps = {"trained": f, "untrained": f[:, ::-1].copy()}
    stats = {k: analysis.channel_stats(v) for k, v in reps.items()}
    splits = {k: analysis.split_channels(v, stats=stats[k]) for k, v in reps.items()}
    figs = [F.plot_channel_stats(reps, stats, splits), F.plot_marginals(reps, stats, splits, n=2)]
    assert len(figs[0].axes) == 4 and len(figs[1].axes) == 8
    pairs = {k: F.exclusive_pair(reps[k], stats[k], splits[k], labels) for k in reps}
    figs.append(F.plot_union_of_subspaces(reps, pairs, labels, ["a", "b", "c", "d"]))
    assert len(figs[-1].axes) == 8
    images = np.random.default_rng(0).random((40, 3, 4, 4))
    figs.append(F.plot_max_activating(f, images, np.array([0, 1]), {"class": labels}, list("abcd"),
                                      stats["trained"]["kurtosis"], n_top=3))
    assert len(figs[-1].axes) == 4 and "[a]" in figs[-1].axes[0].get_title()
    table = F.pair_table(pairs, list("abcd"))
    assert list(table.columns) == ["trained", "untrained"] and "AUC A on own channel" in table.index
    for fig in figs:
        plt.close(fig)
