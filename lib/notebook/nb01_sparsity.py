"""Figures of notebook 01: denoising performance, sparsity across blocks (Fig. 1), sparsity of phi,
noise robustness. Each function takes measured arrays and returns a matplotlib figure."""
from __future__ import annotations

import numpy as np

from lib.model.unet import block_aliases, block_label
from lib.notebook.plots import image_grid
from lib.notebook.schematic import plot_network  # noqa: F401  (Fig. 1's architecture, drawn from the config)

# docs/method.md (sparsity across blocks): approximate modes of the PR histograms on ImageNet (input, output) per block.
PAPER_PR_MODES = {"a2": (0.41, 0.64), "a3": (0.63, 0.75), "a4": (0.75, 0.26), "a5": (0.76, 0.49), "a6": (0.65, 0.27)}
PAPER_BLOCK_LABELS = {a: block_label(a, mid="B (mid)") for a in block_aliases(3)}


def plot_psnr(tables: dict):
    """tables: {label: psnr_table}. PSNR out vs in, with the blur oracle of the first table."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.2, 3.2))
    first = next(iter(tables.values()))
    sig = sorted(float(s) for s in first)
    x = [first[str(s)]["input"] for s in sig]
    ax.plot(x, x, "k:", lw=1, label="identity (no denoising)")
    ax.plot(x, [first[str(s)]["blur_oracle"] for s in sig], "s--", c="grey", label="best Gaussian blur (oracle)")
    for label, t in tables.items():
        ax.plot(x, [t[str(s)]["output"] for s in sig], "o-", label=label)
    for s, xi in zip(sig, x):
        ax.annotate(f"σ={s:g}", (xi, xi), textcoords="offset points", xytext=(2, -10), fontsize=7)
    ax.set_xlabel("input PSNR (dB)")
    ax.set_ylabel("output PSNR (dB)")
    ax.legend(fontsize=7)
    return fig


def plot_denoise_examples(clean, examples, n: int = 6):
    """examples: list of (sigma, noisy, denoised) as from lib.measure.denoising.denoise_examples. One row per image:
    the clean image, then a noisy / denoised pair per sigma; thumbnails about 0.75 inch wide."""
    import matplotlib.pyplot as plt
    n = min(n, len(clean))
    cols = 1 + 2 * len(examples)
    fig, axes = plt.subplots(1, cols, figsize=(0.78 * cols + 0.2, 0.78 * n + 0.45), squeeze=False,
                             gridspec_kw={"wspace": 0.06})
    columns = [("clean", clean[:n])]
    for s, y, d in examples:
        columns += [(f"noisy\nσ={s:g}", y[:n]), (f"denoised\nσ={s:g}", d[:n])]
    for ax, (title, imgs) in zip(axes[0], columns):
        ax.imshow(image_grid(imgs, 1, pad=2), interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(title, fontsize=7.5)
    return fig


def mode(values, grid=np.linspace(0, 1, 401)) -> float:
    """Mode of a sample in [0, 1] by Gaussian kernel density (Scott's rule)."""
    from scipy.stats import gaussian_kde
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 3 or np.ptp(v) == 0:
        return float(np.median(v)) if len(v) else float("nan")
    return float(grid[np.argmax(gaussian_kde(v)(grid))])


def pr_summary(prs: dict) -> list[dict]:
    """prs: {alias: {"in": (N,), "out": (N,)}} -> rows with modes, medians, the paper's modes, verdict."""
    rows = []
    for b, d in prs.items():
        mi, mo = mode(d["in"]), mode(d["out"])
        pin, pout = PAPER_PR_MODES.get(b, (np.nan, np.nan))
        med_in, med_out = float(np.nanmedian(d["in"])), float(np.nanmedian(d["out"]))  # all-zero rows: NaN PR
        rows.append({"block": PAPER_BLOCK_LABELS.get(b, b), "mode in": mi, "mode out": mo,
                     "median in": med_in, "median out": med_out, "paper in": pin, "paper out": pout,
                     "verdict": "sparser" if med_out < med_in else ("denser" if med_out > med_in else "unchanged"),
                     "paper verdict": ("sparser" if pout < pin else "denser") if np.isfinite(pin) else ""})
    return rows


def plot_pr_histograms(prs: dict, title: str = ""):
    """Fig. 1: per block, histograms over images of the PR of the block's input and output means
    (seaborn step histograms with a density estimate, so overlapping input and output stay readable)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    blocks = list(prs)
    fig, axes = plt.subplots(1, len(blocks), figsize=(2.3 * len(blocks), 2.3), sharey=False)
    bins = np.linspace(0, 1, 41)
    for ax, b in zip(np.atleast_1d(axes), blocks):
        for key, color, label in (("in", "tab:blue", "input"), ("out", "tab:orange", "output")):
            v = np.asarray(prs[b][key], dtype=float)
            v = v[np.isfinite(v)]
            sns.histplot(v, bins=bins, stat="density", element="step", alpha=0.35, color=color, label=label,
                         kde=len(v) > 2 and np.ptp(v) > 0, ax=ax)
        if b in PAPER_PR_MODES:
            for v, c in zip(PAPER_PR_MODES[b], ("tab:blue", "tab:orange")):
                ax.axvline(v, color=c, ls="--", lw=1)
        ax.set_title(PAPER_BLOCK_LABELS.get(b, b))
        ax.set_xlabel("participation ratio")
        ax.set_ylabel("")
        ax.set_yticks([])
    np.atleast_1d(axes)[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, y=1.04)
    return fig


def plot_sorted_phi(phi, energy_counts, n_examples: int = 4, labels=None, title: str = ""):
    """Sorted phi of a few images (left) and the histogram of channels carrying 90% energy (right);
    ``title`` says which network (trained / untrained)."""
    import matplotlib.pyplot as plt
    phi = np.asarray(phi)
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 2.8))
    if title:
        fig.suptitle(title, fontsize=9)
    for i in range(min(n_examples, len(phi))):
        a.plot(np.sort(phi[i])[::-1], label=(labels[i] if labels is not None else f"image {i}"))
    a.set_xlabel("channel (sorted)")
    a.set_ylabel("phi_c")
    a.legend(fontsize=7)
    b.hist(energy_counts, bins=np.arange(0, phi.shape[1] + 2, max(1, phi.shape[1] // 40)), color="tab:green")
    b.axvline(np.median(energy_counts), color="k", ls=":", lw=1, label=f"median {np.median(energy_counts):.0f}")
    b.legend(fontsize=7)
    b.set_xlabel(f"channels carrying 90% of the energy (of {phi.shape[1]})")
    b.set_ylabel("images")
    return fig


def plot_robustness(sigmas, rel_change: dict, rel_change_untrained: dict | None = None):
    """Mean relative change of each block's spatial-mean vector vs sigma."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2 if rel_change_untrained else 1, figsize=(8 if rel_change_untrained else 4.2, 3),
                             sharey=True, squeeze=False)
    for ax, data, t in zip(axes[0], (rel_change, rel_change_untrained), ("trained", "untrained")):
        if data is None:
            continue
        for b, v in data.items():
            ax.plot(sigmas, np.nanmean(v, axis=1), "o-", lw=2.5 if b == "a4" else 1,
                    label=PAPER_BLOCK_LABELS.get(b, b))
        ax.set_xlabel("σ")
        ax.set_title(t)
    axes[0, 0].set_ylabel("relative change of block mean vector")
    axes[0, 0].legend(fontsize=7)
    return fig


def sparsity_rows(prs: dict, prs_u: dict, sigma: float) -> list[dict]:
    """Per block: median normalized PR and median effective channels (PR x C) of the block's input and
    output, trained and untrained, with the varying fraction of the output (lib.measure.readout.liveness)."""
    rows = []
    for b, d in prs.items():
        u = prs_u[b]
        rows.append({"block": PAPER_BLOCK_LABELS.get(b, b), "sigma": sigma,
                     "PR in": float(np.nanmedian(d["in"])), "PR out": float(np.nanmedian(d["out"])),
                     "eff in": float(np.nanmedian(d["in"] * d["c_in"])),
                     "eff out": float(np.nanmedian(d["out"] * d["c_out"])),
                     "C in/out": f"{d['c_in']}/{d['c_out']}",
                     "untrained PR out": float(np.nanmedian(u["out"])),
                     "untrained eff out": float(np.nanmedian(u["out"] * u["c_out"])),
                     "varying out": d["live_out"], "untrained varying out": u["live_out"]})
    return rows


def sparsify_verdict(row: dict, degenerate_below: float) -> str:
    """Does a block make its channel vector sparser? "degenerate" when its output hardly varies across
    images; "holds" when both the normalized PR and the effective channel count drop and the output is
    sparser than the untrained network's; "PR only" when the PR drops only because the channel count grew."""
    if row["varying out"] < degenerate_below:
        return "degenerate"
    pr_drop, eff_drop = row["PR out"] < row["PR in"], row["eff out"] < row["eff in"]
    if pr_drop and eff_drop and row["eff out"] < row["untrained eff out"]:
        return "holds"
    if pr_drop and not eff_drop:
        return "PR only (more channels, not fewer active)"
    return "does not hold"
