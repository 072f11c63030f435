"""Figures and tables of the readout's learning curves (lib.training.curves): one panel per measure against
images seen on a log axis, one line per run, the controls as bands, and the gap to the best control with its
interval and fitted trend."""
from __future__ import annotations

import numpy as np

from lib.notebook.plots import DPI
from lib.training.curves import CURVE_KEYS, GAP_KEYS, PSNR_KEYS, RELIANCE_KEYS, first_reaching

LABELS = {"mid_varying_fraction": "phi varying fraction (liveness)", "mid_eff_channels_out": "mid effective channels",
          "class_ami": "k-means class AMI", "probe_acc": "linear probe accuracy (class)",
          "knn_acc": "kNN accuracy (class)",
          "mid_swap_drop@0.8": "dB lost when mid blocks are swapped between images (σ 0.8)"}
SWAP_KEY = "mid_swap_drop@0.8"


def plot_curves(tables: dict, fits: dict | None = None):
    """``tables``: {run: lib.training.curves.curve_table(...)}; ``fits``: {run: {key: fit_gap(...)}}."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    sns.set_theme(style="whitegrid", context="paper")
    colours = dict(zip(tables, sns.color_palette("colorblind", len(tables))))
    panels = list(CURVE_KEYS) + [f"gap_{k}" for k in GAP_KEYS] + [SWAP_KEY]
    fig, grid = plt.subplots(2, 4, figsize=(14, 6.4), layout="constrained")
    axes = grid.ravel()
    for ax, key in zip(axes, panels):
        for run, t in tables.items():
            c = colours[run]
            if key.startswith("gap_"):
                k = key[4:]
                g = t["gaps"]
                if not g:
                    continue
                x = np.array([r["images_seen"] for r in g])
                y = np.array([r[k]["gap"] for r in g])
                lo = np.array([r[k]["low"] for r in g])
                hi = np.array([r[k]["high"] for r in g])
                ax.errorbar(x, y, yerr=[y - lo, hi - y], fmt="o-", ms=3, color=c, capsize=2, label=run)
                f = (fits or {}).get(run, {}).get(k)
                if f and f.get("slope_per_decade") is not None:
                    xs = np.geomspace(max(x.min(), 5e4), x.max() * 10, 20)
                    ax.plot(xs, f["intercept"] + f["slope_per_decade"] * np.log10(xs), ":", color=c)
                ax.axhline(0, color="black", lw=0.8)
                ax.axhline(0.05, color="grey", lw=0.8, ls="--")
                ax.set_title(f"gap: {LABELS[k].split(' (')[0]} − best control", fontsize=9)
            else:
                rows = [r for r in t["trained"] if key in r]
                ax.plot([r["images_seen"] for r in rows], [r[key] for r in rows], "o-", ms=3, color=c, label=run)
                if key in t["untrained"]:
                    m, sd = t["untrained"][key]
                    ax.axhspan(m - sd, m + sd, color=c, alpha=0.15)
                    ax.axhline(m, color=c, ls=":", lw=1)
                ax.set_title(LABELS[key], fontsize=9)
        if key in ("class_ami", "probe_acc", "knn_acc"):
            px = next((t["pixels"][key] for t in tables.values() if t["pixels"] and key in t["pixels"]), None)
            if px is not None:
                ax.axhline(px, color="black", ls="--", lw=1, label="pixels")
        ax.set_xscale("log")
        ax.set_xlabel("images seen")
    axes[0].legend(fontsize=7)
    fig.suptitle("Readout of phi (mid block, σ = analysis σ) over training; dotted/band: untrained net (3 seeds, "
                 "mean ± sd); dashed: pixels", fontsize=9)
    sns.reset_defaults()
    return fig


def save_curves(tables: dict, fits: dict, path) -> None:
    """Draw `plot_curves` of the runs' tables and fits and save it to ``path`` (PNG, no Software metadata)."""
    plot_curves(tables, fits).savefig(path, dpi=DPI, metadata={"Software": None})


def factor_markdown(tables: dict, fits: dict, margin: float = 0.05) -> list[str]:
    """One row per run: how far it went, its gaps there, where each gap first reached ``margin`` (measured, else
    the fitted estimate, marked "fit"), and the held-out PSNR at its last snapshot that has one."""
    lines = [f"Per run: where the gaps first reach +{margin} and what the denoiser gives (PSNR on the first 256 "
             "held-out images):", "",
             "| run | last snapshot | probe gap | kNN gap | probe gap ≥ +0.05 at | kNN gap ≥ +0.05 at | "
             + " | ".join(f"PSNR σ {k.split('@')[1]}" for k in PSNR_KEYS) + " |",
             "|---|---|---|---|---|---|" + "---|" * len(PSNR_KEYS)]
    for run, t in tables.items():
        g = t["gaps"]
        if not g:
            continue

        def reach(k):
            at = first_reaching(g, k, margin)
            if at is not None:
                return f"{at:,}"
            f = fits.get(run, {}).get(k, {})
            if f.get("slope_per_decade") is None:
                return "not yet (too few snapshots to fit)"
            est = f.get("reaches_margin_at")
            return f"not yet (fit: {est:.2g})" if est else "not yet (fit: never)"
        with_psnr = [r for r in t["trained"] if all(k in r for k in PSNR_KEYS)]
        psnr = (" | ".join(f"{with_psnr[-1][k]:.2f}" for k in PSNR_KEYS) + f" ({with_psnr[-1]['images_seen']:,})"
                if with_psnr else " | ".join("–" for _ in PSNR_KEYS))
        lines.append(f"| {run} | {g[-1]['images_seen']:,} | {g[-1]['probe_acc']['gap']:+.3f} "
                     f"| {g[-1]['knn_acc']['gap']:+.3f} | {reach('probe_acc')} | {reach('knn_acc')} | {psnr} |")
    return lines


def curves_markdown(tables: dict, fits: dict) -> str:
    """One row per run and snapshot: the measures, and the probe / kNN gap to the best control with its interval."""
    head = ("| run | images seen | varying | eff. ch. | swap drop σ 0.2 / 0.8 (dB) | class AMI | probe | kNN "
            "| probe gap [95%] | kNN gap [95%] |\n|---|---|---|---|---|---|---|---|---|---|")
    swap_keys = [k for k in RELIANCE_KEYS if "swap" in k]

    def swap(row):  # a snapshot's values, or the untrained seeds' (mean, sd)
        if not all(k in row for k in swap_keys):
            return "–"
        return " / ".join(f"{row[k][0] if isinstance(row[k], tuple) else row[k]:.3f}" for k in swap_keys)

    lines = [head]
    for run, t in tables.items():
        for r, g in zip(t["trained"], t["gaps"] or [None] * len(t["trained"])):
            def gap(k):
                if not g:
                    return "–"
                return f"{g[k]['gap']:+.3f} [{g[k]['low']:+.3f}, {g[k]['high']:+.3f}] vs {g[k]['best_control']}"

            lines.append(f"| {run} | {r['images_seen']:,} | {r['mid_varying_fraction']:.3f} "
                         f"| {r['mid_eff_channels_out']:.0f} | {swap(r)} | {r['class_ami']:.3f} | {r['probe_acc']:.3f} "
                         f"| {r['knn_acc']:.3f} | {gap('probe_acc')} | {gap('knn_acc')} |")
        u, p = t["untrained"], t["pixels"]
        if u and p:
            lines.append(f"| {run}: untrained (3 seeds) | 0 | {u['mid_varying_fraction'][0]:.3f} | "
                         f"{u['mid_eff_channels_out'][0]:.0f} | {swap(u)} | {u['class_ami'][0]:.3f} "
                         f"| {u['probe_acc'][0]:.3f} ± {u['probe_acc'][1]:.3f} | {u['knn_acc'][0]:.3f} ± "
                         f"{u['knn_acc'][1]:.3f} | | |")
            lines.append(f"| pixels | – | – | – | – | {p['class_ami']:.3f} | {p['probe_acc']:.3f} "
                         f"| {p['knn_acc']:.3f} | | |")
            q = t.get("pca_pixels")
            if q:
                lines.append(f"| PCA pixels ({q['dims']} dims) | – | – | – | – | {q['class_ami']:.3f} "
                             f"| {q['probe_acc']:.3f} | {q['knn_acc']:.3f} | | |")
    lines += ["", *factor_markdown(tables, fits)]
    for run, fs in fits.items():
        for k, f in fs.items():
            if f.get("slope_per_decade") is None:
                lines.append(f"\n{run}, {k}: too few snapshots from 50k images on to fit a trend ({f['n_points']}).")
            else:
                at = f["reaches_margin_at"]
                lines.append(f"\n{run}, {k}: gap slope {f['slope_per_decade']:+.3f} ± {f['slope_se']:.3f} "
                             f"per decade of images seen ({f['n_points']} snapshots); "
                             + (f"the fitted line reaches +{f['margin']} at {at:.3g} images." if at else
                                "the fitted line does not rise, so it never reaches the margin."))
    return "\n".join(lines) + "\n"
