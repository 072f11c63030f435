"""Figures of the factor study (lib.training.study): evidence curves of every run against images seen."""
from __future__ import annotations

from lib.notebook.plots import DPI

PANELS = (("mid_pr_out", "median PR of phi (mid output)"), ("n_kurtotic_channels", "mid channels, excess kurtosis > 3"),
          ("class_ami", "k-means class AMI"), ("probe_acc", "linear probe accuracy (class)"))


def plot_study(rows: list[dict], controls: dict, pixels: dict):
    """One panel per metric, one line per run; dotted: the run's untrained network at 0 images."""
    import matplotlib.pyplot as plt
    runs = list(dict.fromkeys(r["run"] for r in rows))
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.2))
    for ax, (key, label) in zip(axes, PANELS):
        for name in runs:
            rs = sorted((r for r in rows if r["run"] == name), key=lambda r: r["images"])
            c = controls.get(name, {})
            xs = ([0] if key in c else []) + [r["images"] / 1e3 for r in rs]
            ys = ([c[key]] if key in c else []) + [r.get(key) for r in rs]
            ax.plot(xs, ys, "o-", ms=3, label=name)
        ax.set_xlabel("training images seen (x1000)")
        ax.set_ylabel(label, fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle("factor study: value at 0 = the untrained network of the same architecture", fontsize=9)
    fig.tight_layout()
    return fig


def save_study_curves(res: dict, path) -> None:
    """The curves of a summarized study (``lib.training.study.summarize``) as a PNG."""
    plot_study(res["rows"], res["controls"], res["pixels"]).savefig(path, dpi=DPI, metadata={"Software": None})
