"""Figures of notebook 05 (clustering, paper Figs. 6 and 15), drawn from arrays the notebook computed."""
from __future__ import annotations

import numpy as np

from lib.measure.clustering import kmeans, scores
from lib.measure.readout import zscore
from lib.notebook.plots import show_images


def k_grid(feats, labels_k: dict, factors: dict, seed: int = 0) -> list[dict]:
    """Scores of k-means clusters against each factor, for raw phi (clusters ``labels_k`` {k: labels}) and
    for standardized phi (each channel z-scored across images; clustered here with the same k and seed)."""
    z = zscore(feats)
    rows = []
    for name, lab_k in (("raw", labels_k), ("standardized", {k: kmeans(z, k, seed=seed) for k in labels_k})):
        for k, lab in lab_k.items():
            rows.append({"phi": name, "k": k, "smallest cluster": int(np.bincount(lab).min()),
                         **{f"{f} {m}": v for f, y in factors.items() for m, v in scores(lab, y).items()}})
    return rows


def separation_summary(sep: dict) -> dict:
    """Per group kind: number of pairs, median ratio, fraction of ratios > 2 and the median group size."""
    return {k: {"pairs": len(v["ratio"]), "median ratio": float(np.median(v["ratio"])),
                "frac ratio > 2": float((v["ratio"] > 2).mean()),
                "median group size": float(np.median(np.r_[v["n_a"], v["n_b"]]))} for k, v in sep.items()}


def clusters_vs_classes(x, feats, clusters, labels, names, n_rows: int = 6, n_per_row: int = 8, seed: int = 0):
    """Left: ``n_rows`` k-means clusters (members closest to the centroid); right: ``n_rows`` random classes."""
    import matplotlib.pyplot as plt
    rng = np.random.default_rng(seed)
    k = int(clusters.max()) + 1
    sizes = np.bincount(clusters, minlength=k)
    cands = np.flatnonzero(sizes >= min(n_per_row, sizes.max()))
    show_cl = rng.choice(cands, min(n_rows, len(cands)), replace=False)
    classes = np.unique(labels)
    show_cls = rng.choice(classes, min(n_rows, len(classes)), replace=False)
    n_row = min(n_per_row, sizes.max())
    fig, axes = plt.subplots(max(len(show_cl), len(show_cls)), 2, figsize=(10, 1.3 * n_rows + 0.3), squeeze=False)
    for r, c in enumerate(show_cl):
        members = np.flatnonzero(clusters == c)
        cen = feats[members].mean(0)
        members = members[np.argsort(((feats[members] - cen) ** 2).sum(1))][:n_row]
        top_class = names[np.bincount(labels[members]).argmax()]
        show_images(axes[r, 0], x[members], n_row)
        axes[r, 0].set_title(f"cluster {c} ({sizes[c]} images; most common class here: {top_class})", fontsize=7)
    for r, c in enumerate(show_cls):
        members = np.flatnonzero(labels == c)
        members = rng.choice(members, min(n_row, len(members)), replace=False)
        show_images(axes[r, 1], x[members], n_row)
        axes[r, 1].set_title(f"class {names[c]}", fontsize=7)
    for ax in axes.ravel():
        ax.set_axis_off()
    fig.tight_layout()
    return fig


MIN_IMAGES = 20  # k-means over several k, group separations (groups of 5 or more) and t-SNE need them


def check_enough_images(data) -> None:
    """Refuse, with a message naming the count, a held-out set too small for clusters of phi to mean anything."""
    if len(data) < MIN_IMAGES:
        raise ValueError(f"DATASET: the held-out split has {len(data)} images; notebook 05 clusters them and needs at "
                         f"least {MIN_IMAGES}: use a larger dataset (a folder: dataset holds out every 10th image of "
                         f"each class folder)")


def separation_plot(sep: dict, spaces=("trained", "untrained", "pixels")):
    """Centroid distance against spread along the joining line, cluster pairs vs class pairs, per space.
    ``sep`` maps "<space>: clusters" / "<space>: classes" to lib.measure.clustering.group_separations results."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(spaces), figsize=(4 * len(spaces), 3.6))
    for ax, space in zip(axes, spaces):
        for kind, c in (("clusters", "tab:red"), ("classes", "tab:blue")):
            s = sep[f"{space}: {kind}"]
            ax.scatter(s["spread"], s["distance"], s=6, c=c, alpha=0.6, label=kind)
        vals = [v for k in ("clusters", "classes") for key in ("spread", "distance")
                for v in np.asarray(sep[f"{space}: {k}"][key]).ravel()]
        if not vals:  # too few groups with enough members to form a pair (a small or two-class dataset)
            ax.text(0.5, 0.5, "no pair of groups\nlarge enough to compare", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
        lim = max(vals) if vals and max(vals) > 0 else 1.0
        for r in (1, 2, 4):
            ax.plot([0, lim], [0, r * lim], "k:", lw=0.8)
            ax.text(lim / r * 0.95, lim * 0.95, f"{r}", fontsize=7)
        ax.set_xlim(0, lim * 1.02)
        ax.set_ylim(0, lim * 1.02)
        ax.set_xlabel("spread along the joining line")
        ax.set_ylabel("centroid distance")
        ax.set_title(space, fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def tsne_panels(emb, clusters, labels, names, n_groups: int = 10):
    """t-SNE of phi coloured by the ``n_groups`` largest clusters (left) and the first ``n_groups`` classes."""
    import matplotlib.pyplot as plt
    sizes = np.bincount(clusters)
    big = np.argsort(-sizes)[:n_groups]
    cls = np.unique(labels)[:n_groups]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    cmap = plt.get_cmap("tab10")
    for ax, groups, lab, title in ((axes[0], big, clusters, "clusters"), (axes[1], cls, labels, "classes")):
        ax.scatter(emb[:, 0], emb[:, 1], s=3, c="0.85")
        for i, g in enumerate(groups):
            m = lab == g
            ax.scatter(emb[m, 0], emb[m, 1], s=6, color=cmap(i % 10),
                       label=names[g] if title == "classes" else f"cluster {g}")
        ax.set_title(f"{len(groups)} {title}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=6, markerscale=2, loc="best")
    fig.tight_layout()
    return fig
