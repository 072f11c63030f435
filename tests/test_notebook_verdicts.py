"""Known-answer tests of the verdict / summary functions of the per-notebook modules (lib/notebook/nb0*.py):
for each, a case where the claim holds, one where it does not and, where the function has one, the degenerate
case (a representation that does not vary across images)."""
import math

import numpy as np
import pytest

from lib.measure.clustering import group_separations
from lib.measure.readout import DEGENERATE_BELOW
from lib.notebook import nb00_readout as nb00
from lib.notebook import nb01_sparsity as nb01
from lib.notebook import nb04_distances as nb04
from lib.notebook import nb05_clustering as nb05
from lib.notebook import nb06_probe as nb06

approx = pytest.approx


# ---- notebook 00: sigma_check ----------------------------------------------------------------------------------

def _grid(mid):
    """Readout-grid rows: trained "mid" rows from (sigma, varying, probe), plus distractors that must be ignored."""
    rows = [{"model": "pixels", "sigma": None, "block": "pixels", "varying_fraction": 0.9, "probe_acc": 0.99}]
    rows += [{"model": "trained", "sigma": s, "block": "mid", "varying_fraction": v, "probe_acc": p} for s, v, p in mid]
    rows += [{"model": "trained", "sigma": 0.4, "block": "enc1", "varying_fraction": 0.9, "probe_acc": 0.95},
             {"model": "untrained-0", "sigma": 0.1, "block": "mid", "varying_fraction": 0.9, "probe_acc": 0.9}]
    return rows


def test_sigma_check_live_and_best():
    """Analysis sigma live and best (probe ties within 1e-3 go to the smaller sigma); live means >= DEGENERATE_BELOW."""
    rows = _grid([(0.4, 0.6, 0.7004), (0.0, DEGENERATE_BELOW / 5, 0.3), (0.1, DEGENERATE_BELOW, 0.5), (0.2, 0.3, 0.7)])
    c = nb00.sigma_check(rows, sigma=0.2)
    assert (c["sigma"], c["varying_fraction"], c["probe_acc"]) == (0.2, 0.3, 0.7)
    assert (c["best_probe_sigma"], c["best_probe_acc"]) == (0.2, 0.7)
    assert c["live_sigmas"] == [0.1, 0.2, 0.4]
    assert c["sigma0_varying_fraction"] == DEGENERATE_BELOW / 5


def test_sigma_check_degenerate_sigma_not_best():
    """Analysis sigma snaps to the nearest grid sigma; degenerate there, best probe elsewhere; no sigma 0 -> NaN."""
    rows = _grid([(0.05, 0.01, 0.3), (0.2, 0.3, 0.7), (0.4, 0.6, 0.72)])
    c = nb00.sigma_check(rows, sigma=0.1)
    assert (c["sigma"], c["varying_fraction"], c["probe_acc"]) == (0.05, 0.01, 0.3)
    assert (c["best_probe_sigma"], c["best_probe_acc"]) == (0.4, 0.72)
    assert c["live_sigmas"] == [0.2, 0.4] and 0.05 not in c["live_sigmas"]
    assert math.isnan(c["sigma0_varying_fraction"])


# ---- notebook 01: sparsify_verdict, pr_summary ----------------------------------------------------------------

def _prs(pr_in, pr_out, c_in, c_out, live_out, n=8):
    return {"a4": {"in": np.full(n, pr_in), "out": np.full(n, pr_out), "c_in": c_in, "c_out": c_out,
                   "live_in": 0.5, "live_out": live_out}}


def test_sparsify_holds_from_sparsity_rows():
    """Rows built by sparsity_rows: PR 0.5->0.25 at 64 channels (eff 32->16 < untrained 32) -> "holds"."""
    row = nb01.sparsity_rows(_prs(0.5, 0.25, 64, 64, 0.4), _prs(0.5, 0.5, 64, 64, 0.4), sigma=0.2)[0]
    assert (row["eff in"], row["eff out"], row["untrained eff out"]) == (32, 16, 32)
    assert nb01.sparsify_verdict(row, DEGENERATE_BELOW) == "holds"


def test_sparsify_pr_only_when_channels_grow():
    """PR drops 0.5->0.25 but channels 64->256 so eff rises 32->64: "PR only", not "holds"."""
    row = nb01.sparsity_rows(_prs(0.5, 0.25, 64, 256, 0.4), _prs(0.5, 0.5, 64, 256, 0.4), sigma=0.2)[0]
    assert nb01.sparsify_verdict(row, DEGENERATE_BELOW).startswith("PR only")


def test_sparsify_does_not_hold():
    """Both drop but not sparser than untrained, or PR rises -> "does not hold"."""
    base = {"varying out": 0.4, "PR in": 0.5, "PR out": 0.25, "eff in": 32.0, "eff out": 16.0}
    assert nb01.sparsify_verdict({**base, "untrained eff out": 16.0}, 0.05) == "does not hold"
    assert nb01.sparsify_verdict({**base, "untrained eff out": 17.0}, 0.05) == "holds"
    assert nb01.sparsify_verdict({**base, "PR out": 0.6, "untrained eff out": 40.0}, 0.05) == "does not hold"


def test_sparsify_degenerate_overrides():
    """An output that barely varies is "degenerate" even when every number says "holds"; the bound is strict."""
    row = {"varying out": 0.01, "PR in": 0.5, "PR out": 0.25, "eff in": 32.0, "eff out": 16.0,
           "untrained eff out": 32.0}
    assert nb01.sparsify_verdict(row, 0.05) == "degenerate"
    assert nb01.sparsify_verdict({**row, "varying out": 0.05}, 0.05) == "holds"


def test_pr_summary_sparser_and_denser():
    """Verdict from medians (a4 sparser, a2 denser), KDE mode, paper modes/verdicts, labels; unknown alias: no paper."""
    prs = {"a4": {"in": np.array([0.6, 0.7, 0.7, 0.7, 0.8]), "out": np.array([0.2, 0.3, 0.3, 0.3, 0.9])},
           "a2": {"in": np.array([0.2, 0.3, 0.4]), "out": np.array([0.3, 0.5, 0.6])},
           "x9": {"in": np.array([0.5, 0.6, 0.7]), "out": np.array([0.1, 0.2, 0.3])}}
    a4, a2, x9 = nb01.pr_summary(prs)
    assert a4["block"] == "B (mid)" and a4["verdict"] == "sparser" and a4["paper verdict"] == "sparser"
    assert a4["mode in"] == approx(0.7, abs=0.01) and a4["median out"] == approx(0.3)
    assert (a4["paper in"], a4["paper out"]) == nb01.PAPER_PR_MODES["a4"]
    assert a2["block"] == "E2" and a2["verdict"] == "denser" and a2["paper verdict"] == "denser"
    assert (x9["block"] == "x9" and x9["verdict"] == "sparser" and x9["paper verdict"] == ""
            and math.isnan(x9["paper in"]))


def test_pr_summary_constant_pr():
    """PR identical for every image (no spread for a KDE): the mode is that value, the verdict still follows it."""
    (row,) = nb01.pr_summary({"a4": {"in": np.full(6, 0.8), "out": np.full(6, 0.2)}})
    assert (row["mode in"], row["mode out"], row["verdict"]) == (approx(0.8), approx(0.2), "sparser")


# ---- notebook 04: spearman_band --------------------------------------------------------------------------------

def test_spearman_band_tracks_beyond_pixels():
    """phi distance proportional to density distance: Spearman 1, partial 1, band 1; zero-distance pairs dropped."""
    rng = np.random.default_rng(0)
    cd = rng.uniform(1, 2, 60)
    phi = 2 * cd
    phi[:5] = 0.0  # identical images: dropped, although cd there breaks the monotone relation
    cd[:5] = [2.5, 0.1, 2.4, 0.2, 2.3]
    rel = nb04.spearman_band({"phi": phi, "pixels": rng.uniform(1, 2, 60)}, cd)
    assert rel["phi"]["spearman"] == approx(1.0)
    assert rel["phi"]["partial spearman"] == approx(1.0)
    assert rel["phi"]["band ratio"] == approx(1.0)
    assert abs(rel["pixels"]["spearman"]) < 0.5 and math.isnan(rel["pixels"]["partial spearman"])


def test_spearman_band_nothing_beyond_pixels():
    """phi and density distance both follow pixels: raw Spearman high, partial Spearman near 0."""
    rng = np.random.default_rng(0)
    px = rng.uniform(1, 2, 400)
    rel = nb04.spearman_band({"phi": px + 0.05 * rng.normal(size=400), "pixels": px}, px + 0.05 * rng.normal(size=400))
    assert rel["phi"]["spearman"] > 0.9 and abs(rel["phi"]["partial spearman"]) < 0.1


def test_spearman_band_ratio_value():
    """Band ratio = 95%/5% quantile of cd/d2: with cd/d2 = shuffled linspace(1, 3, 101) it is 2.9/1.1."""
    c = np.random.default_rng(1).permutation(np.linspace(1, 3, 101))
    cd = np.linspace(1, 2, 101)
    assert nb04.spearman_band({"phi": cd / c}, cd)["phi"]["band ratio"] == approx(2.9 / 1.1)


def test_spearman_band_degenerate():
    """A representation constant across images (all distances 0) gets NaN everywhere, not a number."""
    rng = np.random.default_rng(0)
    rel = nb04.spearman_band({"phi": np.zeros(50), "pixels": rng.uniform(1, 2, 50)}, rng.uniform(1, 2, 50))
    assert all(math.isnan(v) for v in rel["phi"].values())


# ---- notebook 05: separation_summary ---------------------------------------------------------------------------

def test_separation_summary_clusters_vs_classes():
    """Pairs, median ratio, fraction strictly > 2, median of both groups' sizes: clusters separated, classes not."""
    sep = {"clusters": {"ratio": np.array([3.0, 4.0, 5.0]), "n_a": np.array([10, 10, 10]),
                        "n_b": np.array([20, 30, 40])},
           "classes": {"ratio": np.array([0.5, 1.0, 2.0, 2.5]), "n_a": np.array([5, 5, 5, 5]),
                       "n_b": np.array([7, 7, 7, 7])}}
    s = nb05.separation_summary(sep)
    assert s["clusters"] == {"pairs": 3, "median ratio": 4.0, "frac ratio > 2": 1.0, "median group size": 15.0}
    assert s["classes"] == {"pairs": 4, "median ratio": 1.5, "frac ratio > 2": 0.25, "median group size": 6.0}


def test_separation_summary_degenerate():
    """Constant representation through group_separations: every centroid distance 0, so ratio 0 for all 6 pairs."""
    s = nb05.separation_summary({"k": group_separations(np.ones((20, 4)), np.repeat(np.arange(4), 5))})["k"]
    assert s == {"pairs": 6, "median ratio": 0.0, "frac ratio > 2": 0.0, "median group size": 5.0}


# ---- notebook 06: semantic_verdict -----------------------------------------------------------------------------

def _score(probe, knn, varying=0.5):
    from lib.measure.readout import Score
    return Score(n=100, dims=8, varying_fraction=varying, mean_cosine=0.5, degenerate=varying < DEGENERATE_BELOW,
                 clusters={"class": {"nmi": 0.1, "ami": 0.1, "ari": 0.1}}, clusters_std={}, probe_acc=probe,
                 probe_train_acc=probe, probe_ci_low=probe, probe_ci_high=probe, knn_acc=knn)


def _res(phi, untrained, pixel, pca_pixel, phi_varying_fraction=0.5):
    """A Readout from (probe_acc, knn_acc) per representation."""
    from lib.measure.readout import Readout
    return Readout(0.2, 4, "mid", 100, 100, 2, 3.0, (_score(*phi, phi_varying_fraction),), (_score(*untrained),),
                   (_score(*pixel),), (_score(*pca_pixel),))


def test_semantic_holds_against_best_control():
    """Gaps are phi minus the best control per measure; a gap equal to the margin holds."""
    verdict, gaps = nb06.semantic_verdict(_res((0.75, 0.625), (0.5, 0.5), (0.25, 0.25), (0.5, 0.375)), margin=0.125)
    assert verdict == "holds" and gaps == {"probe_acc": 0.25, "knn_acc": 0.125}


def test_semantic_fails_on_one_measure_or_one_control():
    """A win on the probe is not enough if kNN's gap is below the margin, or if any single control beats phi."""
    v, g = nb06.semantic_verdict(_res((0.75, 0.5), (0.5, 0.25), (0.25, 0.25), (0.5, 0.46875)))
    assert v == "does not hold" and g == {"probe_acc": 0.25, "knn_acc": 0.03125}
    v, g = nb06.semantic_verdict(_res((0.75, 0.75), (0.25, 0.25), (0.875, 0.25), (0.25, 0.25)))
    assert v == "does not hold" and g["probe_acc"] == -0.125


def test_semantic_ignores_liveness():
    """Documented: no "degenerate" verdict here (the probe standardizes), so a near-constant phi can still hold."""
    v, _ = nb06.semantic_verdict(_res((0.75, 0.75), (0.25, 0.25), (0.25, 0.25), (0.25, 0.25), phi_varying_fraction=0.0))
    assert v == "holds"


def test_pr_summary_ignores_nan_pr_of_all_zero_rows():
    """An all-zero row has a NaN PR; the median (and so the verdict) skips it, as the mode does."""
    rows = nb01.pr_summary({"a4": {"in": np.array([0.7, 0.7, 0.8, np.nan]), "out": np.array([0.2, 0.3, 0.3, 0.3])},
                            "a5": {"in": np.full(4, 0.5), "out": np.full(4, 0.5)}})
    assert rows[0]["median in"] == pytest.approx(0.7) and rows[0]["verdict"] == "sparser"
    assert rows[1]["verdict"] == "unchanged"


def test_nb03_kept_verdict():
    from lib.notebook.nb03_sampling import kept_display, kept_verdict
    row = dict(factor="background", reader="knn", n=100, chance=0.2, guided=0.6, guided_ci_low=0.5, guided_ci_high=0.7,
               unconditional=0.1, target=0.9, second_real=0.9)
    assert kept_verdict(row) == "holds"                                  # 0.6 >= 0.1 + 0.5 x 0.8
    assert kept_verdict(dict(row, guided=0.4, guided_ci_low=0.3)) == "partly"
    assert kept_verdict(dict(row, guided_ci_low=0.1)) == "does not hold"  # interval touches the baseline
    assert kept_verdict(dict(row, unconditional=float("nan"))) == "not measured"
    assert kept_display([row])[0]["guided [95% CI]"] == "0.60 [0.50, 0.70]"


def test_nan_accuracies_are_never_the_best():
    """A NaN probe accuracy (a failed fit) is skipped by sigma_check; semantic_verdict skips NaN controls and
    reads "not measured" when phi's own accuracy is NaN."""
    c = nb00.sigma_check(_grid([(0.1, 0.3, float("nan")), (0.2, 0.3, 0.5), (0.4, 0.3, 0.4)]), sigma=0.2)
    assert c["best_probe_sigma"] == 0.2 and c["best_probe_acc"] == 0.5
    v, g = nb06.semantic_verdict(_res((0.75, 0.75), (float("nan"), 0.25), (0.25, 0.25), (0.25, 0.25)))
    assert v == "holds" and g["probe_acc"] == approx(0.5)
    v, g = nb06.semantic_verdict(_res((float("nan"), 0.75), (0.25, 0.25), (0.25, 0.25), (0.25, 0.25)))
    assert v == "not measured" and math.isnan(g["probe_acc"])


def test_notebook05_refuses_a_held_out_set_too_small_to_cluster():
    """A two-class folder of 20 images holds out 2: a message naming the count, not a failure inside a plot."""
    import numpy as np
    import pytest

    from lib.data.imageset import ImageSet
    from lib.notebook import nb05_clustering as nb05
    small = ImageSet(np.zeros((2, 3, 8, 8), np.uint8), np.array([0, 1]), ["a", "b"], {}, "folder")
    with pytest.raises(ValueError, match="held-out split has 2 images.*at least 20"):
        nb05.check_enough_images(small)
    nb05.check_enough_images(ImageSet(np.zeros((20, 3, 8, 8), np.uint8), np.zeros(20, np.int64), ["a"], {}, "folder"))


def test_separation_plot_draws_when_no_pair_of_groups_is_large_enough():
    import numpy as np

    from lib.notebook import nb05_clustering as nb05
    empty = {"spread": np.array([]), "distance": np.array([])}
    fig = nb05.separation_plot({f"{s}: {k}": empty for s in ("trained", "untrained", "pixels")
                                for k in ("clusters", "classes")})
    assert len(fig.axes) == 3


# ---- notebook 03: structure_verdict, verdict_markdown, the Fig. 7 panels -------------------------------------------

def test_nb03_structure_verdict_rules():
    from lib.notebook import nb03_sampling as nb03
    ok = nb03.structure_verdict(0.2, 0.3, 0.1, 0.3, 400, 4000, "holds")
    assert ok == {"closer": True, "diverse": True, "cheap": True, "claim": "holds",
                  "claim_structure_kept": True, "claim_fast_10x_fewer_nfe": True}
    edge = nb03.structure_verdict(0.27, 0.3, 0.075, 0.3, 401, 4000, "holds")  # 90% and 25% are not enough
    assert (edge["closer"], edge["diverse"], edge["cheap"], edge["claim"]) == (False, False, False, "does not hold")
    assert not edge["claim_structure_kept"]
    part = nb03.structure_verdict(0.2, 0.3, 0.1, 0.3, 400, 4000, "partly")
    assert part["claim"] == "partly" and not part["claim_structure_kept"]
    assert nb03.structure_verdict(0.2, 0.3, 0.1, 0.3, 400, 4000, "does not hold")["claim"] == "does not hold"


def test_nb03_verdict_markdown_says_the_verdict():
    from lib.notebook import nb03_sampling as nb03
    row = {"NFE": 400, "wall s / target": 1.0, "phi rel err": 0.04, "phi err / spread": 0.1, "PSNR to target": 12.0,
           "final eff. sigma": 0.02}
    best = {"factor": "background", "reader": "probe", "guided": 0.67, "guided_ci_low": 0.57, "guided_ci_high": 0.75,
            "unconditional": 0.04, "second_real": 0.8, "target": 0.9}
    other = dict(best, factor="class", guided=0.07, guided_ci_low=0.03, guided_ci_high=0.14, unconditional=0.07)
    sub = [{"subspace": s, "guided": 0.5, "guided_ci_low": 0.4, "guided_ci_high": 0.6, "dropped": d}
           for s, d in (("all", "-"), ("specialized", 0.1), ("common", 0.2))]
    m = {"checkpoint": "c", "images_seen": 10, "dataset": "d", "n_targets": 6, "n_samples": 8, "n_ref_targets": 1,
         "ref_steps": 25, "fast_row": row, "ref_row": dict(row, NFE=4000), "best": best, "kept": "holds",
         "kept_rows": [best, other], "div_fast": 0.23, "div_ref": 0.16, "div_unc": 0.31, "dist_fast": 0.26,
         "dist_ref": 0.19, "dist_unc": 0.34, "n_kept_targets": 50, "n_kept_samples": 2, "unc_steps": 100,
         "unc_nfe": 100, "near": {"nearest_is_target": 0.1, "chance": 0.001, "target_rank_median": 3},
         "n_images": 1000, "sub_rows": sub, "sub_psnr": {"specialized": 11.0, "common": 10.0},
         "n_guided": 100, "n_unc": 64, "quality_note": "q", "smoke": False,
         "live_phi": {"varying_fraction": 0.4, "mean_cosine": 0.6, "degenerate": False, "n": 500}}
    m["verdict"] = nb03.structure_verdict(0.26, 0.34, 0.23, 0.31, 400, 4000, "holds")
    text = nb03.verdict_markdown(m)
    assert "holds on this model" in text and "10x fewer" in text and "(other factors not kept: class)" in text
    m["verdict"] = nb03.structure_verdict(0.26, 0.34, 0.01, 0.31, 400, 4000, "holds")
    assert "does NOT hold on this model" in nb03.verdict_markdown(m)


def test_nb03_fig7_panels():
    import torch

    from lib.notebook import nb03_sampling as nb03
    from lib.sampling.samplers import SampleResult
    t = torch.rand(4, 3, 16, 16)
    s = torch.rand(4 * 3, 3, 16, 16)
    fig = nb03.plot_fig7(t, s, 3, [f"t{i}" for i in range(4)])
    assert len(fig.axes) == 6 and sum(a.axison for a in fig.axes) == 0  # 2 rows of 3; the spare two are blank
    r = SampleResult(s[:6], 10, torch.zeros(0), torch.zeros(6), None, 1, 0.0)
    fig = nb03.plot_reference_vs_fast(t, SampleResult(s[:3], 100, torch.zeros(0), torch.zeros(3), None, 1, 0.0), r, 3)
    assert len(fig.axes) == 2 and fig.axes[0].get_title() == "reference: 100 NFE"


# ---- notebook 04: distance_claims, block_labels ----------------------------------------------------------------

def _auc(tr, un, px):
    return {"trained a4": {"AUC class": tr}, "untrained a4": {"AUC class": un}, "pixels": {"AUC class": px}}


def _rel(sp, psp, band, px_sp=0.3, px_band=6.0):
    return {"trained a4": {"spearman": sp, "partial spearman": psp, "band ratio": band},
            "pixels": {"spearman": px_sp, "band ratio": px_band}}


def test_nb04_distance_claims():
    c = nb04.distance_claims(_auc(0.7, 0.6, 0.55), _rel(0.8, 0.4, 3.0), ["class"], degenerate=False)
    assert c["semantic"] == {"class": True} and c["tracks"]
    assert c["claim_tracks_density_distance"] == c["claim_distance_semantic"] == "holds"
    for rel in (_rel(0.5, 0.4, 3.0), _rel(0.8, 0.2, 3.0), _rel(0.8, 0.4, 6.0), _rel(0.8, 0.4, 3.0, px_sp=0.9)):
        assert nb04.distance_claims(_auc(0.7, 0.6, 0.55), rel, ["class"], False)["claim_tracks_density_distance"] \
            == "does not hold"
    assert nb04.distance_claims(_auc(0.7, 0.7, 0.55), _rel(0.8, 0.4, 3.0), ["class"], False)[
        "claim_distance_semantic"] == "does not hold"
    d = nb04.distance_claims(_auc(0.7, 0.6, 0.55), _rel(0.8, 0.4, 3.0), ["class"], degenerate=True)
    assert d["claim_tracks_density_distance"] == d["claim_distance_semantic"] == "degenerate"


def test_nb04_block_labels_invert_the_one_alias_map():
    assert nb04.block_labels() == {"enc1": "a1", "enc2": "a2", "enc3": "a3", "mid": "a4", "dec3": "a5", "dec2": "a6"}


# ---- notebook 00: whose training-time evidence ------------------------------------------------------------------

def test_nb00_evidence_only_of_its_own_checkpoint(tmp_path):
    import json

    from lib.training.evidence import evidence_of
    p = tmp_path / "evidence.jsonl"
    rows = [{"images_seen": 100, "class_nmi": 0.1, "source": "runs/tux32/snapshots"},
            {"images_seen": 0, "class_nmi": 0.05, "source": "runs/tux32/snapshots"}, {"pixels": {"class_nmi": 0.07}}]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    got, px = evidence_of(p, "tux32")
    assert [r["images_seen"] for r in got] == [0, 100] and px == {"class_nmi": 0.07}
    assert evidence_of(p, "cifar32") is None


def _nb05_inputs(trained_ami, cluster_ratio, class_ratio, control_ratio):
    import pandas as pd
    wide = pd.DataFrame({"ami class": [trained_ami, 0.10, 0.05]}, index=["trained a4", "untrained a4", "pixels"])
    sep = {"trained: clusters": {"ratio": np.full(5, cluster_ratio)},
           "trained: classes": {"ratio": np.full(5, class_ratio)},
           **{f"{s}: {k}": {"ratio": np.full(5, control_ratio)} for s in ("untrained", "pixels")
              for k in ("clusters", "classes")}}
    return wide, sep


def test_nb05_claims_hold_against_both_controls():
    c = nb05.clustering_claims(*_nb05_inputs(0.3, 3.0, 1.0, 2.5), degenerate=False)
    assert c["semantic"] == "holds" and c["separation"] == "holds"
    assert c["median"]["trained: clusters"] == 3.0 and c["median"]["pixels: classes"] == 2.5


@pytest.mark.parametrize("args", [(0.08, 3.0, 1.0, 2.5),   # class AMI under the untrained network's
                                  (0.3, 1.9, 1.0, 1.0),    # clusters under a ratio of 2
                                  (0.3, 3.0, 3.5, 1.0),    # classes as separated as clusters
                                  (0.3, 3.0, 1.0, 3.0)])   # a control's clusters as separated
def test_nb05_claims_fail_on_each_criterion(args):
    c = nb05.clustering_claims(*_nb05_inputs(*args), degenerate=False)
    assert "does not hold" in (c["semantic"], c["separation"])


def test_nb05_claims_degenerate_overrides():
    c = nb05.clustering_claims(*_nb05_inputs(0.3, 3.0, 1.0, 2.5), degenerate=True)
    assert c["semantic"] == c["separation"] == "degenerate"
