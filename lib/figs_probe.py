"""Figures and tables of notebook 06 (linear probe)."""
from __future__ import annotations

import numpy as np

from . import probe


def probe_rows(reps: dict, targets: dict, test_frac: float, C: float, seed: int) -> list[dict]:
    """One row per (target, representation): held-out accuracy with its 95% interval, on one split per target."""
    rows = []
    for tname, y in targets.items():
        tr_idx, te_idx = probe.train_test_split_indices(y, test_frac, seed)
        for rname, X in reps.items():
            r = probe.linear_probe(X, y, C=C, seed=seed, train_idx=tr_idx, test_idx=te_idx)
            rows.append({"target": tname, "representation": rname, "dims": X.shape[1], "accuracy": r["accuracy"],
                         "ci low": r["ci_low"], "ci high": r["ci_high"], "train accuracy": r["train_accuracy"],
                         "n test": r["n_test"], "chance": r["chance"]})
    return rows


def probe_bars(df, targets, sigma: float):
    """Accuracy bars with 95% intervals per representation, one panel per target (red: trained a4)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(targets), figsize=(5.5 * len(targets), 3.4), squeeze=False)
    for ax, tname in zip(axes[0], targets):
        d = df[df.target == tname]
        pos = np.arange(len(d))
        colors = ["tab:red" if r.endswith("a4") and r.startswith("trained") else
                  ("0.5" if not r.startswith("trained") else "tab:blue") for r in d.representation]
        ax.bar(pos, d.accuracy, color=colors)
        ax.errorbar(pos, d.accuracy, yerr=[d.accuracy - d["ci low"], d["ci high"] - d.accuracy], fmt="none", c="k",
                    lw=1)
        ax.axhline(d.chance.iloc[0], c="k", ls=":", lw=1, label="majority class")
        ax.set_xticks(pos, d.representation, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("held-out accuracy")
        ax.set_title(f"linear probe: {tname} (σ = {sigma:.3f})", fontsize=8)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
