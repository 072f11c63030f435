"""The panels of the explorer (lib.explorer) as matplotlib Figures, from an explorer and its state."""
from __future__ import annotations

import numpy as np

from .plots import image_grid

PANELS = ("image", "phi", "channel", "neighbours", "reconstructions")


def _figure(w: float, h: float):
    from matplotlib.figure import Figure  # not pyplot: nothing is registered, shown twice or leaked
    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def _imshow(ax, img, title=None, color=None):
    ax.imshow(image_grid(img[None] if img.ndim == 3 else img, 1, pad=0), interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8, color=color or "black")


def panel_figure(self, name: str, state: dict | None = None):
    """The matplotlib Figure of panel ``name`` of explorer ``self`` for ``state`` (default its current one)."""
    s = self.state if state is None else state
    i = s["index"]
    if name == "image":
        fig = _figure(4.8, 1.9)
        axes = fig.subplots(1, 3)
        _imshow(axes[0], self.images[i], f"#{i} {s['class_name']}")
        _imshow(axes[1], s["noisy"][0].clamp(0, 1), f"noisy σ={s['sigma']:.2f}\n{s['psnr_noisy']:.1f} dB")
        _imshow(axes[2], s["denoised"][0], f"denoised\n{s['psnr_denoised']:.1f} dB")
        return fig
    if name == "phi":
        fig = _figure(4.8, 1.9)
        ax = fig.subplots()
        v, top, c = s["phi"], s["top_channels"], s["channel"]
        colors = np.full(len(v), "0.7", dtype=object)
        colors[top] = "C0"
        colors[c] = "C3"
        ax.bar(np.arange(len(v)), v, width=1.0, color=list(colors))
        for ch in top[:5]:
            ax.annotate(str(ch), (ch, v[ch]), ha="center", va="bottom", fontsize=7)
        ax.set_xlim(-1, len(v))
        ax.set_xlabel("channel")
        ax.set_ylabel("phi")
        ax.set_title(f"phi of #{i} (top {len(top)} blue, channel {c} red)", fontsize=8)
        return fig
    if name == "channel":
        c, idx = s["channel"], s["max_activating"]
        amap = self.activation_maps(i)[c].numpy()
        fig = _figure(1.25 * (2 + len(idx) / 2) + 0.4, 1.9)
        axes = fig.subplots(1, 3, width_ratios=[1, 1, max(1, len(idx) / 2)])
        _imshow(axes[0], self.images[i], f"#{i}")
        im = axes[1].imshow(amap, cmap="magma", interpolation="nearest")
        axes[1].set_xticks([])
        axes[1].set_yticks([])
        axes[1].set_title(f"ch {c} map\nmean {amap.mean():.2f}", fontsize=8)
        fig.colorbar(im, ax=axes[1], shrink=0.7)
        axes[2].imshow(image_grid(self.images[idx], nrow=int(np.ceil(len(idx) / 2))), interpolation="nearest")
        axes[2].set_axis_off()
        axes[2].set_title(f"max-activating images of ch {c}", fontsize=8)
        return fig
    if name == "neighbours":  # two axes of tiled images (cheaper to draw than 2 x (k+1) axes)
        k = len(s["nn_phi"])
        fig = _figure(0.85 * (k + 1) + 0.6, 2.6)
        axes = fig.subplots(2, 1)
        h = self.images.shape[-1] + 1
        for ax, (key, label) in zip(axes, (("nn_phi", "phi space"), ("nn_pixel", "pixel space"))):
            idx = [i] + s[key]
            ax.imshow(image_grid(self.images[idx], nrow=k + 1), interpolation="nearest")
            ax.set_axis_off()
            ax.set_title(f"query #{i} and its {k} nearest neighbours in {label}", fontsize=8)
            for j, n in enumerate(s[key], start=1):
                same = int(self.data.labels[n]) == s["label"]
                ax.text(1 + j * h + h / 2, h + 1, f"#{n} {self.class_name(n)}"[:12], ha="center",
                        va="top", fontsize=6, color="green" if same else "red")
        return fig
    if name == "reconstructions":
        r = s.get("recon")
        if r is None:
            fig = _figure(4.8, 0.5)
            fig.text(0.5, 0.5, "press 'Reconstruct' for self-guided samples of this image", ha="center",
                     va="center", fontsize=8)
            return fig
        fig = _figure(1.2 * (len(r) + 1) + 0.3, 1.8)
        axes = fig.subplots(1, len(r) + 1)
        _imshow(axes[0], self.images[s["recon_index"]], f"target #{s['recon_index']}")
        errs = s.get("recon_phi_rel_err") or [None] * len(r)
        for j, (x, e) in enumerate(zip(r, errs), start=1):
            _imshow(axes[j], x.clamp(0, 1), f"sample {j}" + ("" if e is None else f"\nphi err {e:.2f}"))
        what = (f"masked to {len(s['recon_channels'])} channels" if s.get("recon_masked") else "all channels")
        fig.suptitle(f"self-guided reconstructions ({self.preset} preset, {what})", fontsize=8)
        return fig
    raise ValueError(f"name: expected one of {PANELS}, got {name!r}")
