"""Tables and figures of notebook 02 (channel selectivity: Figs. 3, 4, 5, 13).

Inputs are the notebook's dicts keyed by representation ("trained", "untrained", "pixels"):
``reps`` {name: phi (N images, C channels)}, ``stats`` {name: `lib.measure.channels.channel_stats`} and
``splits`` {name: `lib.measure.channels.split_channels`}. Channel pickers return channel indices, table
builders lists of dicts / DataFrames, plotters matplotlib figures.
"""
from __future__ import annotations

import numpy as np

from lib.measure import channels as analysis
from lib.notebook.plots import show_images

PAIR_COLORS = ("tab:orange", "tab:purple")


def _by_kurtosis(st: dict, descending: bool) -> np.ndarray:
    """Channel indices sorted by kurtosis; NaN (dead) channels last."""
    k = st["kurtosis"]
    return np.argsort(-np.nan_to_num(k, nan=-np.inf)) if descending else np.argsort(np.nan_to_num(k, nan=np.inf))


def summary_rows(reps: dict, stats: dict, splits: dict) -> list[dict]:
    """One row per representation: channel counts per group and median channel statistics."""
    rows = []
    for k, v in reps.items():
        st, sp = stats[k], splits[k]
        live = st["dead"] == 0
        rows.append({"representation": k, "channels": v.shape[1], "dead": int((~live).sum()),
                     "rare": len(sp["rare"]), "specialized": len(sp["specialized"]), "common": len(sp["common"]),
                     "specialized / live": len(sp["specialized"]) / max(1, live.sum()),
                     "median kurtosis": float(np.nanmedian(st["kurtosis"])),
                     "median frac active": float(np.median(st["frac_active"][live])),
                     "median lifetime PR": float(np.nanmedian(st["lifetime_pr"][live])),
                     "median image PR": float(np.nanmedian(analysis.participation_ratio(v)))})
    return rows


def plot_channel_stats(reps: dict, stats: dict, splits: dict, specialized_kurtosis: float = 3.0,
                       common_kurtosis: float = 1.0):
    """Fig. 13 style, one column per representation: kurtosis vs fraction active (specialized red,
    common blue, live channels only) and the histogram of lifetime PRs."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(reps), figsize=(4.2 * len(reps), 6.4), squeeze=False)
    for j, k in enumerate(reps):
        st, sp = stats[k], splits[k]
        col = np.full(reps[k].shape[1], "0.7", dtype=object)
        col[sp["specialized"]] = "tab:red"
        col[sp["common"]] = "tab:blue"
        live = st["dead"] == 0
        ax = axes[0, j]
        ax.scatter(st["frac_active"][live], st["kurtosis"][live], s=6, c=list(col[live]))
        ax.set_yscale("symlog", linthresh=1)
        ax.axhline(specialized_kurtosis, c="tab:red", ls=":", lw=1)
        ax.axhline(common_kurtosis, c="tab:blue", ls=":", lw=1)
        ax.set_xlabel("fraction of images active")
        ax.set_ylabel("excess kurtosis")
        ax.set_title(f"{k}\n{len(sp['specialized'])} specialized (red), {len(sp['common'])} common (blue),\n"
                     f"{len(sp['rare'])} rare, {len(sp['dead'])} dead of {reps[k].shape[1]}", fontsize=8)
        axes[1, j].hist(st["lifetime_pr"][live], bins=30, color="0.4")
        axes[1, j].set_xlabel("lifetime PR of phi_c across images")
        axes[1, j].set_ylabel("channels")
    fig.tight_layout()
    return fig


def pick(split: dict, st: dict, n: int = 4) -> tuple[list, list]:
    """``n`` specialized and ``n`` common channels of one representation (Fig. 4). Too few specialized:
    filled with the highest-kurtosis live channels; too few common: with the lowest-kurtosis live
    channels not already picked."""
    spec = list(split["specialized"][:n])
    if len(spec) < n:
        spec += [c for c in _by_kurtosis(st, True) if c not in spec and st["dead"][c] == 0][:n - len(spec)]
    com = list(split["common"][:n])
    if len(com) < n:
        com += [c for c in _by_kurtosis(st, False)
                if c not in com and c not in spec and st["dead"][c] == 0][:n - len(com)]
    return spec, com


def plot_marginals(reps: dict, stats: dict, splits: dict, keys=("trained", "untrained"), n: int = 4):
    """Fig. 13: per representation in ``keys`` (rows), histograms over images of the `pick`ed
    specialized (red) and common (blue) channels, counts on a log scale so that heavy tails show."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(keys), 2 * n, figsize=(14 * n / 4, 2.1 * len(keys) + 0.2), squeeze=False)
    for r, k in enumerate(keys):
        spec, com = pick(splits[k], stats[k], n)
        for j, c in enumerate(spec + com):
            ax = axes[r, j]
            ax.hist(reps[k][:, c], bins=30, color="tab:red" if j < len(spec) else "tab:blue")
            ax.set_yscale("log")
            ax.set_title(f"{k} ch {c}\nkurtosis {stats[k]['kurtosis'][c]:.1f}, active {stats[k]['frac_active'][c]:.0%}",
                         fontsize=7)
            ax.tick_params(labelsize=6)
            ax.locator_params(axis="x", nbins=3)
            if j:
                ax.set_yticklabels([], minor=False)
                ax.set_yticklabels([], minor=True)
        axes[r, 0].set_ylabel("images (log)", fontsize=7)
        axes[r, 0].set_xlabel("phi_c", fontsize=7)
    fig.tight_layout()
    return fig


def shown_channels(split: dict, st: dict, n_images: int, n_top: int, n_show: int) -> np.ndarray:
    """Up to ``n_show`` channels for Fig. 3: specialized channels active for at least half of ``n_top``
    of the ``n_images`` images; too few: filled with the highest-kurtosis live, non-rare channels."""
    need = max(1, n_top // 2)
    cand = [c for c in split["specialized"] if st["frac_active"][c] * n_images >= need]
    if len(cand) < n_show:
        cand += [c for c in _by_kurtosis(st, True)
                 if c not in cand and st["dead"][c] == 0 and c not in split["rare"]][:n_show - len(cand)]
    return np.asarray(cand[:n_show], dtype=np.int64)


def plot_max_activating(f, images, channels, factors: dict, class_names, kurtosis, n_top: int, seed: int = 0):
    """Fig. 3: per channel (rows), its ``n_top`` most-activating images (left, titled with the purity of
    each factor and the most frequent class) and ``n_top`` random images where it is off (right)."""
    import matplotlib.pyplot as plt
    top = analysis.top_images(f, channels, k=n_top)
    pur = analysis.purity(top, factors)
    names = np.asarray(class_names)
    fig, axes = plt.subplots(len(channels), 2, figsize=(11, 1.25 * len(channels) + 0.3),
                             gridspec_kw={"width_ratios": [1, 1]}, squeeze=False)
    for r, c in enumerate(channels):
        off = analysis.off_images(f, c, n=n_top, seed=seed + r)
        txt = ", ".join(f"{fac} {pur[fac]['purity'][r]:.1f}" for fac in pur)
        mode = names[pur["class"]["mode"][r]]
        show_images(axes[r, 0], images[top[r]], n_top)
        axes[r, 0].set_title(f"ch {c} (kurt {kurtosis[c]:.1f}): purity {txt} [{mode}]", fontsize=7)
        if len(off):
            show_images(axes[r, 1], images[off], n_top)
        axes[r, 1].set_axis_off()
        axes[r, 1].set_title("channel off" if len(off) else "never off", fontsize=7)
    fig.tight_layout()
    return fig


def purity_rows(f, st: dict, factors: dict, n_top: int, n_purity: int, name: str = "") -> tuple[list, dict]:
    """Mean purity (per factor) of the top-``n_top`` images of the ``n_purity`` highest- and lowest-kurtosis
    channels among live channels active for at least ``n_top`` images. Returns (two rows, {factor: chance})."""
    n_images = len(f)
    live = np.flatnonzero((st["dead"] == 0) & (np.rint(st["frac_active"] * n_images) >= n_top))
    order = live[np.argsort(-st["kurtosis"][live])]
    rows = []
    for which, chans in (("high kurtosis", order[:n_purity]), ("low kurtosis", order[::-1][:n_purity])):
        p = analysis.purity(analysis.top_images(f, chans, k=n_top), factors)
        rows.append({"representation": name, "channels": which, "n": len(chans),
                     **{f"{fac} purity": float(p[fac]["purity"].mean()) for fac in p}})
    return rows, {fac: p[fac]["chance"] for fac in p}


def purity_table(reps: dict, stats: dict, factors: dict, n_top: int, n_purity: int) -> tuple[list, dict]:
    """`purity_rows` of every representation plus a final "chance" row. Returns (rows, {factor: chance})."""
    rows, chance = [], None
    for k in reps:
        r, chance = purity_rows(reps[k], stats[k], factors, n_top, n_purity, k)
        rows += r
    rows.append({"representation": "chance", "channels": "random images",
                 **{f"{fac} purity": v for fac, v in chance.items()}})
    return rows, chance


def exclusive_pair(f, st: dict, split: dict, labels) -> dict:
    """Fig. 5 selection: `analysis.class_channel_pair` among the specialized channels (all live, non-rare
    ones if fewer than two), plus the lowest-kurtosis common channel (any other live, non-rare one if
    none). Adds "channels" = (jA, jB, common) and the fraction of A / B images active (> 5% of the
    channel's max) on their own and on the other class's channel."""
    labels = np.asarray(labels)
    live = np.flatnonzero(st["dead"] == 0)
    chans = split["specialized"] if len(split["specialized"]) >= 2 else np.setdiff1d(live, split["rare"])
    p = analysis.class_channel_pair(f, labels, chans)
    pool = split["common"] if len(split["common"]) else np.setdiff1d(live, np.r_[split["rare"], p["channels"]])
    common = int(pool[np.argmin(st["kurtosis"][pool])])
    (ca, cb), (ja, jb) = p["classes"], p["channels"]

    def act(rows, j):
        return float((f[rows, j] > 0.05 * f[:, j].max()).mean())

    ra, rb = labels == ca, labels == cb
    return {**p, "channels": (ja, jb, common),
            "A on own": act(ra, ja), "A on other": act(ra, jb), "B on own": act(rb, jb), "B on other": act(rb, ja)}


def plot_union_of_subspaces(reps: dict, pairs: dict, labels, class_names):
    """Fig. 5: per representation in ``pairs`` (rows), the two classes' images on (jA, jB, common) in 3-D
    and on each pair of those channels. Fixed spacing (no tight_layout, which mis-measures 3-D axes), so
    that no label of one panel runs into the next."""
    import matplotlib.pyplot as plt
    labels, names = np.asarray(labels), np.asarray(class_names)
    fig = plt.figure(figsize=(15, 3.6 * len(pairs)))
    gs = fig.add_gridspec(len(pairs), 4, wspace=0.42, hspace=0.5, left=0.02, right=0.98, top=0.9, bottom=0.1,
                          width_ratios=[1.15, 1, 1, 1])
    for r, k in enumerate(pairs):
        p = pairs[k]
        (ca, cb), (ja, jb, jc) = p["classes"], p["channels"]
        f = reps[k]
        sel = {names[ca]: labels == ca, names[cb]: labels == cb}
        ax = fig.add_subplot(gs[r, 0], projection="3d")
        for (lab, m), colr in zip(sel.items(), PAIR_COLORS):
            ax.scatter(f[m, ja], f[m, jb], f[m, jc], s=6, c=colr, label=lab)
        ax.set_xlabel(f"ch {ja}", fontsize=7, labelpad=-2)
        ax.set_ylabel(f"ch {jb}", fontsize=7, labelpad=-2)
        ax.set_zlabel(f"ch {jc} (common)", fontsize=7, labelpad=-2)
        ax.tick_params(labelsize=6, pad=0)
        ax.set_title(f"{k}: AUC {p['auc'][0]:.2f} / {p['auc'][1]:.2f}", fontsize=8)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(0.0, 1.0))
        for i, (u, v) in enumerate([(ja, jb), (ja, jc), (jb, jc)]):
            ax2 = fig.add_subplot(gs[r, 1 + i])
            for (lab, m), colr in zip(sel.items(), PAIR_COLORS):
                ax2.scatter(f[m, u], f[m, v], s=5, c=colr, label=lab)
            ax2.set_xlabel(f"ch {u}" + (" (common)" if u == jc else ""), fontsize=7.5)
            ax2.set_ylabel(f"ch {v}" + (" (common)" if v == jc else ""), fontsize=7.5)
            ax2.tick_params(labelsize=7)
            ax2.locator_params(nbins=5)
    return fig


def pair_table(pairs: dict, class_names):
    """DataFrame, one column per representation: the chosen classes and channels, AUCs and activity."""
    import pandas as pd
    names = np.asarray(class_names)
    return pd.DataFrame({k: {"classes": f"{names[p['classes'][0]]} / {names[p['classes'][1]]}",
                             "channels (A, B, common)": str(p["channels"]),
                             "AUC A on own channel": round(p["auc"][0], 3),
                             "AUC B on own channel": round(p["auc"][1], 3),
                             **{m: round(p[m], 3) for m in ("A on own", "A on other", "B on own", "B on other")}}
                         for k, p in pairs.items()})


def verdicts(summary: list, pur_rows: list, chance: dict, pairs: dict, degenerate: bool) -> dict:
    """`claims` as words: "holds" / "does not hold", or "degenerate" for every claim when the trained phi
    hardly varies across images (lib.measure.readout.liveness): its statistics then describe one constant vector."""
    if degenerate:
        return {k: "degenerate" for k in ("specialized", "purity", "subspace")}
    return {k: "holds" if v else "does not hold" for k, v in claims(summary, pur_rows, chance, pairs).items()}


def claims(summary: list, pur_rows: list, chance: dict, pairs: dict) -> dict:
    """The verdict's three criteria: trained has a larger share of specialized live channels than both
    controls and some common ones; class purity of the high-kurtosis channels > 1.5x chance and above
    both controls; both Fig. 5 AUCs >= 0.9 and their minimum above the untrained network's."""
    S = {r["representation"]: r for r in summary}
    P = {(r["representation"], r["channels"]): r for r in pur_rows}
    pt, pu, pp = (P[(k, "high kurtosis")]["class purity"] for k in ("trained", "untrained", "pixels"))
    frac = {k: S[k]["specialized / live"] for k in ("trained", "untrained", "pixels")}
    pa, pn = pairs["trained"], pairs["untrained"]
    return {"specialized": bool(frac["trained"] > max(frac["untrained"], frac["pixels"])
                                and S["trained"]["common"] > 0),
            "purity": bool(pt > 1.5 * chance["class"] and pt > max(pu, pp)),
            "subspace": bool(min(pa["auc"]) >= 0.9 and min(pa["auc"]) > min(pn["auc"]))}


def summary_markdown(head: str, live: dict, summary: list, pur_rows: list, chance: dict, pairs: dict, holds: dict,
                     names, factors, n_top: int, n_purity: int) -> str:
    """Notebook 02's result in words: liveness, the specialized/common channels, semantic selectivity and the
    union of subspaces, each with its verdict (``holds`` from `verdicts`); ``head``: the checkpoint/data sentence."""
    S = {r["representation"]: r for r in summary}
    P = {(r["representation"], r["channels"]): r for r in pur_rows}
    pt, pu, pp = (P[(k, "high kurtosis")]["class purity"] for k in ("trained", "untrained", "pixels"))
    pa = pairs["trained"]
    lt = live["trained"]
    lines = [
        head,
        "",
        f"- **Liveness**: {lt['varying_fraction']:.1%} of the trained phi's energy varies across images "
        f"(untrained {live['untrained']['varying_fraction']:.1%}; mean cosine between two images "
        f"{lt['mean_cosine']:.3f}): "
        f"{'DEGENERATE, the claims below cannot be measured' if lt['degenerate'] else 'live'}.",
        f"- **Specialized and common channels** (Figs. 4, 13): trained {S['trained']['specialized']} specialized, "
        f"{S['trained']['common']} common, {S['trained']['dead']} dead of {S['trained']['channels']} "
        f"({S['trained']['specialized / live']:.0%} of live channels specialized); untrained "
        f"{S['untrained']['specialized / live']:.0%}, pixels {S['pixels']['specialized / live']:.0%}. "
        f"Claim (training creates heavy-tailed channels next to near-Gaussian ones) "
        f"{holds['specialized']} on this model.",
        f"- **Semantic selectivity** (Fig. 3): the top-{n_top} images of the {n_purity} highest-kurtosis channels "
        f"have mean class purity {pt:.2f} (untrained {pu:.2f}, pixels {pp:.2f}, chance {chance['class']:.2f})"
        + "".join(f"; {f} purity {P[('trained', 'high kurtosis')][f + ' purity']:.2f} (chance {chance[f]:.2f})"
                  for f in factors if f != "class")
        + f". Claim {holds['purity']} (criterion: > 1.5x chance and above both controls).",
        f"- **Union of subspaces** (Fig. 5): classes {names[pa['classes'][0]]} / {names[pa['classes'][1]]} on "
        f"channels {pa['channels'][0]} / {pa['channels'][1]}: AUC of each class against the other on its own "
        f"channel {pa['auc'][0]:.2f} / {pa['auc'][1]:.2f} (untrained, same selection: "
        f"{pairs['untrained']['auc'][0]:.2f} / {pairs['untrained']['auc'][1]:.2f}); active (> 5% of the channel's "
        f"max) on own vs other's channel: {pa['A on own']:.0%} vs {pa['A on other']:.0%} and {pa['B on own']:.0%} "
        f"vs {pa['B on other']:.0%}. Claim {holds['subspace']} "
        f"(criterion: both AUCs ≥ 0.9 and above the untrained network's).",
    ]
    return "\n".join(lines)
