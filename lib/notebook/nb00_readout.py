"""Figures, tables and the analysis-sigma check of the readout grid (notebook 00; lib.measure.readout.readout_grid)."""
from __future__ import annotations

from lib.measure.readout import ANALYSIS_SIGMA, DEGENERATE_BELOW

PANELS = (("varying_fraction", "varying fraction of energy"), ("probe_acc", "ridge probe accuracy (class)"),
          ("knn_acc", "kNN accuracy (class, k=20)"), ("class_ami", "k-means AMI (class)"))


def plot_grid(rows: list[dict], title: str = ""):
    """One panel per measure against sigma: each block of the trained network (solid), the untrained
    network's middle block and output (dashed), pixels (dotted horizontal line)."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS), 3.4))
    trained = [r for r in rows if r["model"] == "trained"]
    blocks = list(dict.fromkeys(r["block"] for r in trained))
    cmap = plt.get_cmap("viridis")
    px = next((r for r in rows if r["model"] == "pixels"), None)
    for ax, (key, label) in zip(axes, PANELS):
        for i, b in enumerate(blocks):
            rs = sorted((r for r in trained if r["block"] == b), key=lambda r: r["sigma"])
            ax.plot([r["sigma"] for r in rs], [r[key] for r in rs], "o-", ms=3, lw=2.5 if b == "mid" else 1.2,
                    color="tab:red" if b == "mid" else cmap(i / max(1, len(blocks) - 1)), label=f"trained {b}")
        for b, c in (("mid", "tab:red"), ("output", "0.4")):
            rs = sorted((r for r in rows if r["model"].startswith("untrained") and r["block"] == b),
                        key=lambda r: r["sigma"])
            if rs:
                ax.plot([r["sigma"] for r in rs], [r[key] for r in rs], "s--", ms=3, lw=1, color=c,
                        label=f"untrained {b}")
        if px is not None:
            ax.axhline(px[key], color="k", ls=":", lw=1, label="pixels")
        if key == "varying_fraction":
            ax.axhline(DEGENERATE_BELOW, color="tab:red", ls=":", lw=0.8)
        ax.axvline(ANALYSIS_SIGMA, color="0.6", lw=0.8)
        ax.set_xscale("symlog", linthresh=0.025)
        ax.set_xlim(left=0)
        ax.set_xlabel("σ (0 = clean images; grey line: analysis σ)")
        ax.set_ylabel(label, fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels) // 2 + 1, fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def mid_table(rows: list[dict]) -> list[dict]:
    """The middle block's row per sigma, trained next to untrained, with pixels as the last row."""
    out = []
    for r in sorted((r for r in rows if r["model"] == "trained" and r["block"] == "mid"), key=lambda r: r["sigma"]):
        u = next((q for q in rows if q["model"].startswith("untrained") and q["block"] == "mid"
                  and q["sigma"] == r["sigma"]), {})
        out.append({"sigma": r["sigma"], "varying": r["varying_fraction"],
                    "untrained varying": u.get("varying_fraction"),
                    "probe": r["probe_acc"], "untrained probe": u.get("probe_acc"), "kNN": r["knn_acc"],
                    "untrained kNN": u.get("knn_acc"), "AMI": r["class_ami"], "AMI std": r["class_ami_std"]})
    px = next((r for r in rows if r["model"] == "pixels"), None)
    if px:
        out.append({"sigma": "pixels", "varying": px["varying_fraction"], "probe": px["probe_acc"],
                    "kNN": px["knn_acc"], "AMI": px["class_ami"], "AMI std": px["class_ami_std"]})
    return out


def sigma_check(rows: list[dict], sigma: float = ANALYSIS_SIGMA) -> dict:
    """How the analysis sigma sits in the grid for the trained middle block: its varying fraction and probe
    accuracy there, the sigma with the best probe (ties: the smaller sigma) and the live sigmas."""
    mid = sorted((r for r in rows if r["model"] == "trained" and r["block"] == "mid"), key=lambda r: r["sigma"])
    at = min(mid, key=lambda r: abs(r["sigma"] - sigma))
    scored = [r for r in mid if r["probe_acc"] == r["probe_acc"]] or mid  # a NaN accuracy is never the best
    best = max(scored, key=lambda r: (round(r["probe_acc"], 3), -r["sigma"]))
    return {"sigma": at["sigma"], "varying_fraction": at["varying_fraction"], "probe_acc": at["probe_acc"],
            "best_probe_sigma": best["sigma"], "best_probe_acc": best["probe_acc"],
            "live_sigmas": [r["sigma"] for r in mid if r["varying_fraction"] >= DEGENERATE_BELOW],
            "sigma0_varying_fraction": next((r["varying_fraction"] for r in mid if r["sigma"] == 0), float("nan"))}


def best_blocks(rows: list[dict], sigma: float = ANALYSIS_SIGMA) -> list[dict]:
    """Every trained block at the analysis sigma, sorted by probe accuracy."""
    rs = [r for r in rows if r["model"] == "trained" and abs(r["sigma"] - sigma) < 1e-9]
    return [{"block": r["block"], "varying": r["varying_fraction"], "probe": r["probe_acc"], "kNN": r["knn_acc"],
             "AMI": r["class_ami"]} for r in sorted(rs, key=lambda r: -r["probe_acc"])]
