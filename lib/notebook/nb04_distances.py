"""Figures and claims of notebook 04 (distances, paper Fig. 8), from arrays the notebook computed."""
from __future__ import annotations

import numpy as np

from lib.measure import distances
from lib.model.unet import block_aliases
from lib.notebook.plots import show_images


def neighbour_grids(x, reps: dict, queries, k: int):
    """One panel per representation: each row a query image and its ``k`` nearest neighbours there."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(reps), figsize=(4 * len(reps), 0.25 * (k + 1) * len(queries) / 1.6 + 0.6))
    for ax, (name, v) in zip(axes, reps.items()):
        nn = distances.nearest_neighbours(v, queries, k=k)
        grid = np.concatenate([np.asarray(queries)[:, None], nn], 1).reshape(-1)
        show_images(ax, x[grid], k + 1, name)
    fig.tight_layout()
    return fig


def density_scatter(d2: dict, cd, rel: dict):
    """Conditional-density distance against each representation's squared distance for random image
    pairs; dotted lines: the 5-95% band of their ratio."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(d2), figsize=(4 * len(d2), 3.6))
    for ax, (name, v) in zip(axes, d2.items()):
        ok = v > 0
        ax.scatter(v[ok], cd[ok], s=10, c="tab:blue", label="random pair")
        r = cd[ok] / v[ok]
        lo, hi = np.quantile(r, [0.05, 0.95])
        xx = np.geomspace(v[ok].min(), v[ok].max(), 10)
        ax.plot(xx, lo * xx, "k:", lw=1)
        ax.plot(xx, hi * xx, "k:", lw=1)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _decade_ticks(ax)
        ax.set_xlabel(f"squared distance, {name}")
        ax.set_ylabel("conditional-density distance")
        ax.set_title(f"{name}: Spearman {rel[name]['spearman']:.2f}, band ratio {rel[name]['band ratio']:.1f}",
                     fontsize=8)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _decade_ticks(ax):
    """Log axes with labels at whole decades only (no overprinted minor labels on short ranges)."""
    from matplotlib.ticker import LogFormatterMathtext, LogLocator, NullFormatter
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(LogLocator(base=10, numticks=6))
        axis.set_major_formatter(LogFormatterMathtext(base=10))
        axis.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10), numticks=12))
        axis.set_minor_formatter(NullFormatter())


def same_vs_different(dists: dict, aucs: dict):
    """Histograms of same-class and different-class distances (divided by their median), per representation
    (seaborn step histograms with density estimates)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    fig, axes = plt.subplots(1, len(dists), figsize=(4 * len(dists), 3.2), sharey=True)
    for ax, (name, dd) in zip(axes, dists.items()):
        med = np.median(np.r_[dd["same"], dd["diff"]])
        bins = np.linspace(0, 3, 50)
        for key, label, color in (("diff", "different class", "tab:blue"), ("same", "same class", "tab:orange")):
            v = np.asarray(dd[key], dtype=float) / med
            sns.histplot(v[v <= 3], bins=bins, stat="density", element="step", alpha=0.35, color=color,
                         label=label, kde=len(v) > 2, ax=ax)
        ax.set_title(f"{name}: AUC {aucs[name]:.3f}", fontsize=8)
        ax.set_xlabel("distance / median distance")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def spearman_band(d2: dict, cd, control: str = "pixels") -> dict:
    """{representation: {"spearman", "partial spearman", "band ratio"}} of the density distance against each
    squared distance; the partial Spearman removes what the ``control`` distance (pixels) already explains."""
    from scipy.stats import spearmanr
    rel = {}
    for name, v in d2.items():
        ok = v > 0
        part = (distances.partial_spearman(v[ok], cd[ok], d2[control][ok])
                if name != control and control in d2 and ok.sum() > 3 else float("nan"))
        rel[name] = {"spearman": float(spearmanr(v[ok], cd[ok])[0]) if ok.sum() > 2 else float("nan"),
                     "partial spearman": part,
                     "band ratio": distances.band_ratio(v[ok], cd[ok]) if ok.sum() > 2 else float("nan")}
    return rel


def auc_table(reps: dict, factors: dict):
    """(DataFrame of same-vs-different-label distance AUC per representation and factor,
    {representation: class distance distributions})."""
    import pandas as pd
    rows, dists = [], {}
    for name, v in reps.items():
        row = {"representation": name}
        for f, lab in factors.items():
            dd = distances.class_distance_distributions(v, lab)
            row[f"AUC {f}"] = (distances.distance_auc(dd["same"], dd["diff"]) if len(dd["same"]) and len(dd["diff"])
                               else float("nan"))
            if f == "class":
                dists[name] = dd
        rows.append(row)
    return pd.DataFrame(rows).set_index("representation"), dists


def block_labels(levels: int = 3) -> dict[str, str]:
    """{block name: the paper's alias} (enc1 -> a1, ..., mid -> a4, ...), from the one map `block_aliases`."""
    return {name: alias for alias, name in block_aliases(levels).items()}


TRACK_SPEARMAN = 0.5          # phi distance tracks the density distance: Spearman above this ...
TRACK_PARTIAL_SPEARMAN = 0.2  # ... and the partial Spearman given the pixel distance above this


def distance_claims(auc: dict, rel: dict, factors, degenerate: bool) -> dict:
    """Notebook 04's two claims from its measurements.

    auc: {representation: {"AUC <factor>": value}} for "trained a4", "untrained a4", "pixels"; rel:
    `spearman_band`'s rows for the same keys. Returns semantic ({factor: trained AUC above both controls}),
    tracks (Spearman > TRACK_SPEARMAN, above pixels, partial Spearman > TRACK_PARTIAL_SPEARMAN, a narrower band
    than pixels) and the claims' words: "degenerate" when phi does not vary across images, else "holds" or
    "does not hold"."""
    tr, un, px = (auc[k] for k in ("trained a4", "untrained a4", "pixels"))
    semantic = {f: bool(tr[f"AUC {f}"] > max(un[f"AUC {f}"], px[f"AUC {f}"])) for f in factors}
    rt, rp = rel["trained a4"], rel["pixels"]
    tracks = bool(rt["spearman"] > TRACK_SPEARMAN and rt["spearman"] > rp["spearman"]
                  and rt["partial spearman"] > TRACK_PARTIAL_SPEARMAN and rt["band ratio"] < rp["band ratio"])

    def word(ok: bool) -> str:
        return "degenerate" if degenerate else ("holds" if ok else "does not hold")
    return {"semantic": semantic, "tracks": tracks, "claim_tracks_density_distance": word(tracks),
            "claim_distance_semantic": word(semantic.get("class", False))}


def summary_markdown(head: str, live: dict, auc, rel: dict, claims: dict, nn_class: dict, factors, cd: dict) -> str:
    """Notebook 04's result in words: liveness, nearest neighbours, the density-distance claim and the semantic
    distance claim (``claims`` from `distance_claims`). ``auc``: the AUC table (a DataFrame indexed by
    representation); ``cd``: how the density distance was measured ({"pairs", "sigmas", "max_steps",
    "residuals", "seconds"}); ``head``: the checkpoint/data sentence."""
    tr, un, px = (auc.loc[k] for k in ("trained a4", "untrained a4", "pixels"))
    rt, rp = rel["trained a4"], rel["pixels"]
    sem = claims["semantic"]
    best = auc["AUC class"].drop(["untrained a4", "pixels"])
    lines = [
        head,
        "",
        f"- **Liveness**: {live['varying_fraction']:.1%} of phi's energy varies across images (mean cosine "
        f"{live['mean_cosine']:.3f}): {'DEGENERATE' if live['degenerate'] else 'live'}.",
        f"- **Nearest neighbours**: the 1-NN shares the query's class for {nn_class['trained a4']:.0%} of images in "
        f"phi space, {nn_class['pixels']:.0%} in pixel space, {nn_class['untrained a4']:.0%} for the untrained "
        f"network.",
        f"- **phi distance tracks the conditional-density distance** ({cd['pairs']} pairs, σ grid {cd['sigmas']}, "
        f"projection until the loss stops falling, at most {cd['max_steps']} steps; median residual "
        f"{', '.join(f'{r:.2f}' for r in cd['residuals'])} per σ; {cd['seconds']:.0f} s): Spearman "
        f"{rt['spearman']:.2f} (pixels {rp['spearman']:.2f}, untrained {rel['untrained a4']['spearman']:.2f}); "
        f"partial Spearman given the pixel distance {rt['partial spearman']:.2f} (untrained "
        f"{rel['untrained a4']['partial spearman']:.2f}); band ratio {rt['band ratio']:.1f} (paper ≈ 3; pixels "
        f"{rp['band ratio']:.1f}). Claim **{claims['claim_tracks_density_distance']}** on this model (criterion: "
        f"Spearman > 0.5, above pixels, partial Spearman > 0.2, narrower band than pixels). The density distance "
        f"is estimated with the trained model for all rows, so the comparison is between distance measures.",
        f"- **Distance is semantic** (same-label pairs closer): AUC for class {tr['AUC class']:.3f} (untrained "
        f"{un['AUC class']:.3f}, pixels {px['AUC class']:.3f})"
        + "".join(f"; {f} {tr[f'AUC {f}']:.3f} (untrained {un[f'AUC {f}']:.3f}, pixels {px[f'AUC {f}']:.3f})"
                  for f in factors if f != "class")
        + ". Above both controls for: " + (", ".join(f for f, ok in sem.items() if ok) or "none")
        + (" (phi is degenerate: these AUCs rank distances between nearly identical vectors)." if live["degenerate"]
           else "."),
        f"- Best block for class AUC: {best.idxmax()} ({best.max():.3f}).",
    ]
    return "\n".join(lines)
