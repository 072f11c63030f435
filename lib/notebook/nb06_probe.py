"""Figures, tables and verdict of notebook 06 (linear probe), read through lib.measure.readout: a tuned probe on the
dataset's train split, kNN beside it, and controls (untrained networks over init seeds, pixels, PCA pixels)."""
from __future__ import annotations

import numpy as np

from lib.measure import readout
from lib.representation.phi import phi

REPS = ("phi", "untrained", "pixel", "pca_pixel")
REP_LABELS = {"phi": "trained a4 (phi)", "untrained": "untrained a4", "pixel": "pixels", "pca_pixel": "PCA pixels"}


def readout_display(res: readout.Readout) -> list[dict]:
    """One row per representation of a `lib.measure.readout.Readout` (mean ± sd over seeds)."""
    flat = res.flat()
    rows = []
    for r in REPS:
        def g(k):
            return flat.get(f"{r}_{k}", float("nan"))
        rows.append({"representation": REP_LABELS[r], "dims": int(g("dims")), "varying fraction": g("varying_fraction"),
                     "probe test": g("probe_acc"), "probe sd": flat.get(f"{r}_probe_acc_sd", 0.0),
                     "95% CI": f"[{g('probe_ci_low'):.3f}, {g('probe_ci_high'):.3f}]",
                     "probe train": g("probe_train_acc"), "kNN (k=20)": g("knn_acc"),
                     "kNN sd": flat.get(f"{r}_knn_acc_sd", 0.0), "k-means AMI": g("class_ami"),
                     "AMI (standardized)": g("class_ami_std")})
    return rows


def block_rows(model, untrained, train, test, sigma: float, n_noise: int, blocks: dict, targets: dict,
               seed: int = 0, pixels: bool = True) -> list[dict]:
    """Per block (``blocks``: {label: block name}) and target ({name: (train labels, test labels)}): the
    fast ridge probe and kNN accuracy, for the trained network, the untrained one (middle block) and
    pixels (``pixels=False``: without them). One noise seed; the ridge strength is chosen by leave-one-out
    cross-validation."""
    xtr, xte = train.float(), test.float()
    names = list(blocks.values())
    ftr = phi(model, xtr, sigma, n_noise, names, seed=1000 + seed)
    fte = phi(model, xte, sigma, n_noise, names, seed=seed)
    reps = {f"trained {lab}": (ftr[b].numpy(), fte[b].numpy()) for lab, b in blocks.items()}
    reps["untrained a4"] = (phi(untrained, xtr, sigma, n_noise, "mid", seed=1000 + seed).numpy(),
                            phi(untrained, xte, sigma, n_noise, "mid", seed=seed).numpy())
    if pixels:  # the same at every sigma
        reps["pixels"] = (xtr.flatten(1).numpy(), xte.flatten(1).numpy())
    rows = []
    for tname, (ytr, yte) in targets.items():
        for rname, (a, b) in reps.items():
            p = readout.ridge_probe(a, ytr, b, yte)
            rows.append({"target": tname, "representation": rname, "dims": a.shape[1],
                         "varying fraction": readout.liveness(b)["varying_fraction"], "accuracy": p["accuracy"],
                         "ci low": p["ci_low"], "ci high": p["ci_high"], "train accuracy": p["train_accuracy"],
                         "kNN": readout.knn_accuracy(a, ytr, b, yte), "n test": p["n_test"], "chance": p["chance"]})
    return rows


def semantic_verdict(res: readout.Readout, margin: float = 0.05) -> tuple[str, dict]:
    """Does phi beat every control by ``margin`` on both the probe and kNN? Returns (verdict, gaps) where
    gaps = phi minus the best control, for the probe and for kNN (`Readout.gaps`: NaN controls are skipped).
    "degenerate" is not used here: a probe standardizes its features, which removes a constant vector (the
    liveness is reported beside it)."""
    gaps = res.gaps()
    if any(g != g for g in gaps.values()):
        return "not measured", gaps
    ok = all(g >= margin for g in gaps.values())
    return ("holds" if ok else "does not hold"), gaps


def probe_bars(df, targets, sigma: float):
    """Accuracy bars with 95% intervals per representation, one panel per target (red: trained a4); black
    ticks: kNN accuracy."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 3.4), squeeze=False)
    for ax, tname in zip(axes[0], targets):
        d = df[df.target == tname]
        pos = np.arange(len(d))
        colors = ["tab:red" if r.endswith("a4") and r.startswith("trained") else
                  ("0.5" if not r.startswith("trained") else "tab:blue") for r in d.representation]
        ax.bar(pos, d.accuracy, color=colors, label="ridge probe")
        ax.errorbar(pos, d.accuracy, yerr=[d.accuracy - d["ci low"], d["ci high"] - d.accuracy], fmt="none", c="k",
                    lw=1)
        ax.scatter(pos, d["kNN"], marker="_", s=200, c="k", zorder=3, label="kNN (k=20)")
        ax.axhline(d.chance.iloc[0], c="k", ls=":", lw=1, label="majority class")
        ax.set_xticks(pos, d.representation, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("held-out accuracy")
        ax.set_title(f"linear probe: {tname} (σ = {sigma:.3f})", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
