"""Figures of notebook 05 (clustering, paper Figs. 6 and 15), drawn from arrays the notebook computed."""
from __future__ import annotations

import numpy as np

from lib.measure.clustering import kmeans, scores
from lib.measure.readout import zscore
from lib.notebook.plots import markdown_table, show_images


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


def clustering_claims(wide, sep: dict, degenerate: bool) -> dict:
    """The two verdicts of notebook 05 from its score table ``wide`` (rows "trained a4", "untrained a4",
    "pixels"; columns "ami class", ...) and its separations ``sep`` ({"trained: clusters": {"ratio": ...}, ...}).

    - clusters are semantic: the trained a4 class AMI is above both controls';
    - separation (the paper's clusters at 2-4 and above, classes at about 1): the median ratio of cluster pairs is
      at least 2, above the class pairs' and above the controls' cluster medians (k-means clusters are separated
      by construction, so the controls set the bar).
    Both read "degenerate" when phi does not vary. Returns {"median": {kind: median ratio}, "semantic", "separation"}.
    """
    med = {k: float(np.median(v["ratio"])) for k, v in sep.items()}
    amis = {r: wide.loc[r, "ami class"] for r in ("trained a4", "untrained a4", "pixels")}
    semantic = amis["trained a4"] > max(amis["untrained a4"], amis["pixels"])
    separated = (med["trained: clusters"] >= 2 and med["trained: classes"] < med["trained: clusters"]
                 and med["trained: clusters"] > max(med["untrained: clusters"], med["pixels: clusters"]))

    def word(ok):
        return "degenerate" if degenerate else ("holds" if ok else "does not hold")
    return {"median": med, "semantic": word(semantic), "separation": word(separated)}


def summary_markdown(wide, claims: dict, factors, live: dict, head: str) -> str:
    """Notebook 05's result in words: liveness, the score table, class alignment and separation with their
    verdicts (``claims`` from `clustering_claims`); ``head``: the checkpoint/data sentence."""
    tr, un, px = (wide.loc[r] for r in ("trained a4", "untrained a4", "pixels"))
    med = claims["median"]
    lines = [
        head,
        "",
        f"- **Liveness**: {live['varying_fraction']:.1%} of phi's energy varies across images (mean cosine "
        f"{live['mean_cosine']:.3f}): {'DEGENERATE' if live['degenerate'] else 'live'}.",
        "- **Score table** (k = number of values of each factor; AMI and ARI are 0 for chance):",
        "",
        markdown_table(wide.reset_index().to_dict("records")),
        "",
        f"- **Clusters partly align with classes**: trained a4 vs class AMI {tr['ami class']:.3f} (untrained "
        f"{un['ami class']:.3f}, pixels {px['ami class']:.3f}). "
        + ("; ".join(f"{f}: {tr[f'ami {f}']:.3f} (untrained {un[f'ami {f}']:.3f}, pixels {px[f'ami {f}']:.3f})"
                     for f in factors if f != "class"))
        + f". phi clusters carry more class information than both controls: "
        f"**{claims['semantic']}**; best block for class: "
        f"{wide['ami class'].drop(['untrained a4', 'pixels']).idxmax()}.",
        f"- **Separation** (paper: clusters at 2-4 and above, classes at about 1 or below): median ratio of cluster "
        f"pairs {med['trained: clusters']:.2f}, of class pairs {med['trained: classes']:.2f} in phi space "
        f"(untrained {med['untrained: clusters']:.2f} / {med['untrained: classes']:.2f}, pixels "
        f"{med['pixels: clusters']:.2f} / {med['pixels: classes']:.2f}; median group sizes in the table above). "
        f"Claim **{claims['separation']}** on this model (criterion: cluster median ≥ 2, above the class median "
        f"and above the controls' cluster medians, since k-means clusters are separated by construction).",
    ]
    return "\n".join(lines)
