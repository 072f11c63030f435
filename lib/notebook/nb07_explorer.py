"""An interactive explorer of phi for JupyterLab (ipywidgets), and the same panels as static figures.

    ex = Explorer(model, data, images, phis)     # phis: (N, C) phi cache of ``images`` (computed if None)
    display(ex)                                  # in JupyterLab
    ex.index.value = 5; ex.state["nn_phi"]       # what the panels show, for tests
    render_static(ex, index=0, channel=None)     # the panels as PNGs through lib.notebook.plots.save_figure

Panels (each an ``ipywidgets.Image`` holding a PNG drawn by a matplotlib ``Figure``, replaced in place):
  image            the clean image, its noisy version at the sigma slider, and the denoised output
  phi              the image's phi as bars; its top-k channels coloured, the chosen channel in red
  channel          the chosen channel's activation map on the image and its max-activating images
  neighbours       nearest neighbours of the image in phi space and in pixel space
  reconstructions  self-guided reconstructions from the image's phi (button; optionally masked to the
                   top-k channels + the chosen one)

Sliders use continuous_update=False, and the reconstructions run only on their button, so no expensive
callback runs on every slider tick. Every callback updates ``explorer.state``.
"""
from __future__ import annotations

import io

import numpy as np
import torch

from lib.core.device import per_sample_noise
from lib.core.metrics import psnr
from lib.measure.denoising import denoise
from lib.measure.distances import nearest_neighbours
from lib.model.hooks import BlockRecorder, resolve_blocks
from lib.notebook.plots import image_grid, save_figure
from lib.representation.phi import phi as phi_of
from lib.sampling import samplers as sampling

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


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


class Explorer:
    """Widgets exploring the phi representation of ``images`` (the held-out set of ``data``).

    model: the denoiser; data: the `lib.data.datasets.ImageSet` (labels, class names); images: its float tensor
    (default data.float()); phis: the (N, C) phi cache (default phi at ``phi_sigma`` with ``n_noise``
    draws); top_k: channels listed/coloured/kept by the mask; n_top: max-activating images shown;
    k: neighbours shown; n_samples: reconstructions per click (``preset`` of `lib.sampling.samplers.self_guided`,
    with ``sampler_kwargs`` overriding its settings, e.g. a shorter ``schedule`` for tests).
    """

    def __init__(self, model, data, images: torch.Tensor | None = None, phis=None, block: str = "mid",
                 top_k: int = 8, n_top: int = 8, k: int = 5, n_samples: int = 4, sigma: float = 0.2,
                 preset: str = "fast", seed: int = 0, phi_sigma: float = 0.0, n_noise: int = 8,
                 sampler_kwargs: dict | None = None):
        self.model, self.data, self.block, self.preset, self.seed = model, data, block, preset, int(seed)
        self.sampler_kwargs = dict(sampler_kwargs or {})
        self.images = data.float() if images is None else images.detach().float().cpu()
        if len(self.images) != len(data) or len(self.images) < 2:
            raise ValueError(f"images: expected {len(data)} images like data (at least 2), got {len(self.images)}")
        self.block_name = resolve_blocks(model, block)[0]
        if phis is None:
            phis = phi_of(model, self.images, phi_sigma, n_noise, blocks=block, seed=self.seed)
        self.phis = torch.as_tensor(np.asarray(phis), dtype=torch.float32)
        if self.phis.ndim != 2 or len(self.phis) != len(self.images):
            raise ValueError(f"phis: expected an ({len(self.images)}, C) phi cache, got {tuple(self.phis.shape)}")
        self.n_channels = self.phis.shape[1]
        self.n_top, self.k, self.n_samples = int(n_top), min(int(k), len(self.images) - 1), int(n_samples)
        self._pixels = self.images.flatten(1).numpy()
        self._maps: dict[int, torch.Tensor] = {}
        self.state: dict = {}
        self.png: dict[str, bytes] = {}
        self._busy = False
        self._build(int(top_k), float(sigma))
        self._select_image(0)

    # --------------------------------------------------------------------------- computations
    def class_name(self, index: int) -> str:
        """The class name of image ``index`` (its label as text if the set has no name for it)."""
        lab = int(self.data.labels[index])
        names = self.data.class_names
        return names[lab] if 0 <= lab < len(names) else str(lab)

    def top_channels(self, index: int, k: int | None = None) -> list[int]:
        """The ``k`` channels of largest phi for image ``index`` (default: the top-k box's value)."""
        k = min(int(k or self.topk_box.value), self.n_channels)
        return [int(c) for c in torch.argsort(self.phis[index], descending=True, stable=True)[:k]]

    def noisy_denoised(self, index: int, sigma: float):
        """(noisy, denoised) for image ``index`` at ``sigma``: the noise is fixed per (seed, index)."""
        x = self.images[index:index + 1]
        z = per_sample_noise(1, x.shape[1:], self.seed, offset=index)[:, 0]
        y = x + float(sigma) * z
        return y, denoise(self.model, y).clamp(0, 1)

    def activation_maps(self, index: int) -> torch.Tensor:
        """(C, h, w) activations of the block on the clean image ``index`` (cached)."""
        if index not in self._maps:
            dev = next(self.model.parameters()).device
            with torch.inference_mode(), BlockRecorder(self.model, [self.block_name], stop=True) as rec:
                self.model(self.images[index:index + 1].to(dev))
            self._maps[index] = rec.outputs[self.block_name][0].float().cpu()
        return self._maps[index]

    def max_activating(self, channel: int, n: int | None = None) -> list[int]:
        """The ``n`` images of largest phi on ``channel`` (default: ``n_top``)."""
        n = min(int(n or self.n_top), len(self.images))
        return [int(i) for i in torch.argsort(self.phis[:, channel], descending=True, stable=True)[:n]]

    def neighbours(self, index: int, k: int | None = None) -> tuple[list[int], list[int]]:
        """(nearest neighbours in phi, nearest neighbours in pixels) of image ``index``, ``k`` each."""
        k = int(k or self.k)
        nn_phi = nearest_neighbours(self.phis.numpy(), [index], k)[0]
        nn_pix = nearest_neighbours(self._pixels, [index], k)[0]
        return [int(i) for i in nn_phi], [int(i) for i in nn_pix]

    def neighbour_agreement(self, k: int | None = None) -> dict:
        """Fraction of the k nearest neighbours (over all images) sharing the query's label, in phi
        space and in pixel space."""
        k = int(k or self.k)
        q = np.arange(len(self.images))
        lab = np.asarray(self.data.labels)
        out = {}
        for name, X in (("phi", self.phis.numpy()), ("pixel", self._pixels)):
            nn = nearest_neighbours(X, q, k)
            out[name] = float((lab[nn] == lab[:, None]).mean())
        return out

    def mask_channels(self, index: int | None = None, channel: int | None = None) -> list[int]:
        """Channels the masked reconstruction keeps: the image's top-k plus the chosen channel."""
        index = self.state["index"] if index is None else index
        channel = self.state["channel"] if channel is None else channel
        return sorted(set(self.top_channels(index)) | {int(channel)})

    def reconstruct(self, masked: bool | None = None, n_samples: int | None = None):
        """Self-guided reconstructions of the current image from its phi; fills the panel and
        ``state["recon"]`` ((n, C, H, W)). masked: keep only `mask_channels` (default: the checkbox)."""
        masked = self.mask_box.value if masked is None else bool(masked)
        n = int(n_samples or self.n_samples)
        index = self.state["index"]
        mask, chans = None, None
        if masked:
            chans = self.mask_channels()
            mask = torch.zeros(self.n_channels)
            mask[chans] = 1.0
        preset = sampling.PRESETS.get(("backward", self.preset))
        sched = self.sampler_kwargs.get("schedule", preset.schedule if preset else None)
        self.progress.max = len(sched) if sched is not None else 100
        self.progress.value = 0
        self.recon_button.disabled = True
        self.status.value = "reconstructing..."

        def tick(s: sampling.Step):
            self.progress.value = min(self.progress.max, s.step + 1)

        try:
            g = torch.Generator().manual_seed(self.seed)
            kw = dict(self.sampler_kwargs)
            if mask is not None:
                kw["guide"] = dict(kw.get("guide") or {}, mask=mask)
            res = sampling.self_guided(self.model, self.images[index:index + 1], n, preset=self.preset,
                                       generator=g, callback=tick, progress=False, **kw)
        finally:
            self.recon_button.disabled = False
        err = getattr(res, "phi_rel_err", None)
        self.state.update(recon=res.samples, recon_index=index, recon_masked=masked, recon_channels=chans,
                          recon_phi_rel_err=None if err is None else [float(e) for e in err])
        self.progress.value = self.progress.max
        self.status.value = f"{n} samples, {res.wall_s:.1f} s"
        self._show("reconstructions")
        return res.samples

    def describe(self, index: int, channel: int | None = None, sigma: float | None = None) -> dict:
        """The displayed state for image ``index`` (channel default: its top channel)."""
        index = int(index)
        if not 0 <= index < len(self.images):
            raise ValueError(f"index: expected 0 <= index < {len(self.images)}, got {index!r}")
        top = self.top_channels(index)
        channel = top[0] if channel is None else int(channel)
        if not 0 <= channel < self.n_channels:
            raise ValueError(f"channel: expected 0 <= channel < {self.n_channels}, got {channel!r}")
        sigma = float(self.sigma.value if sigma is None else sigma)
        y, d = self.noisy_denoised(index, sigma)
        x = self.images[index:index + 1]
        nn_phi, nn_pix = self.neighbours(index)
        return dict(index=index, label=int(self.data.labels[index]), class_name=self.class_name(index),
                    sigma=sigma, phi=self.phis[index].numpy().copy(), top_channels=top, channel=channel,
                    max_activating=self.max_activating(channel), nn_phi=nn_phi, nn_pixel=nn_pix,
                    noisy=y, denoised=d, psnr_noisy=float(psnr(y.clamp(0, 1), x).mean()),
                    psnr_denoised=float(psnr(d, x).mean()),
                    recon=None, recon_index=None, recon_masked=None, recon_channels=None,
                    recon_phi_rel_err=None)

    def figure(self, name: str, state: dict | None = None):
        """The matplotlib Figure of panel ``name`` for ``state`` (default the current one)."""
        s = self.state if state is None else state
        draw = {"image": self._image_panel, "phi": self._phi_panel, "channel": self._channel_panel,
                "neighbours": self._neighbours_panel, "reconstructions": self._reconstructions_panel}.get(name)
        if draw is None:
            raise ValueError(f"name: expected one of {PANELS}, got {name!r}")
        return draw(s, s["index"])

    def _image_panel(self, s: dict, i: int):
        """The image, its noisy version and the denoised one, with their PSNR."""
        fig = _figure(4.8, 1.9)
        axes = fig.subplots(1, 3)
        _imshow(axes[0], self.images[i], f"#{i} {s['class_name']}")
        _imshow(axes[1], s["noisy"][0].clamp(0, 1), f"noisy σ={s['sigma']:.2f}\n{s['psnr_noisy']:.1f} dB")
        _imshow(axes[2], s["denoised"][0], f"denoised\n{s['psnr_denoised']:.1f} dB")
        return fig

    def _phi_panel(self, s: dict, i: int):
        """phi as bars: the top channels blue, the chosen channel red."""
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

    def _channel_panel(self, s: dict, i: int):
        """The chosen channel's activation map on the image and its max-activating images."""
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

    def _neighbours_panel(self, s: dict, i: int):
        """The nearest neighbours in phi space and in pixel space, labelled green (same class) or red."""
        k = len(s["nn_phi"])  # two axes of tiled images (cheaper to draw than 2 x (k+1) axes)
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

    def _reconstructions_panel(self, s: dict, i: int):
        """The self-guided samples of the last 'Reconstruct' (or a hint to press it)."""
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

    # -------------------------------------------------------------------------------- widgets
    def _build(self, top_k: int, sigma: float):
        import ipywidgets as W
        n = len(self.images)
        self.index = W.IntSlider(value=0, min=0, max=n - 1, description="image", continuous_update=False)
        self.label = W.HTML()
        self.sigma = W.FloatSlider(value=sigma, min=0.0, max=1.0, step=0.05, description="σ",
                                   continuous_update=False, readout_format=".2f")
        self.topk_box = W.BoundedIntText(value=min(top_k, self.n_channels), min=1, max=self.n_channels,
                                         description="top k", layout=W.Layout(width="140px"))
        self.channel_dd = W.Dropdown(options=[], description="top channel", layout=W.Layout(width="230px"))
        self.channel_box = W.BoundedIntText(value=0, min=0, max=self.n_channels - 1, description="channel",
                                            layout=W.Layout(width="160px"))
        self.recon_button = W.Button(description="Reconstruct", icon="magic", button_style="primary")
        self.mask_box = W.Checkbox(value=False, description="only top-k + chosen channel", indent=False)
        self.progress = W.IntProgress(value=0, min=0, max=20, description="sampling")
        self.status = W.Label()
        # panels keep their natural size (no shrinking); rows wrap when the notebook is narrow
        self.panels = {p: W.Image(format="png", layout=W.Layout(flex="0 0 auto")) for p in PANELS}

        def row(children):
            return W.HBox(children, layout=W.Layout(flex_flow="row wrap", align_items="center"))

        for name, w in [("index", self.index), ("sigma", self.sigma), ("channel-dd", self.channel_dd),
                        ("channel-box", self.channel_box), ("recon-button", self.recon_button),
                        ("topk", self.topk_box), ("mask", self.mask_box)] + \
                [(p, self.panels[p]) for p in PANELS]:
            w.add_class(f"explorer-{name}")
        self.index.observe(lambda ch: self._select_image(ch["new"]), "value")
        self.sigma.observe(lambda ch: self._guarded(self._on_sigma), "value")
        self.topk_box.observe(lambda ch: self._guarded(self._on_topk), "value")
        self.channel_dd.observe(lambda ch: ch["new"] is not None and self._guarded(self._select_channel, ch["new"]),
                                "value")
        self.channel_box.observe(lambda ch: self._guarded(self._select_channel, ch["new"]), "value")
        self.recon_button.on_click(lambda _b: self.reconstruct())
        self.widget = W.VBox([
            W.HTML("<b>phi explorer</b>: pick an image, a noise level and a channel; "
                   "<i>Reconstruct</i> draws self-guided samples from the image's phi."),
            row([self.index, self.label, self.sigma]),
            row([self.panels["image"], self.panels["phi"]]),
            row([self.channel_dd, self.channel_box, self.topk_box]),
            self.panels["channel"], self.panels["neighbours"],
            row([self.recon_button, self.mask_box, self.progress, self.status]),
            self.panels["reconstructions"],
        ])
        self.widget.add_class("explorer")

    def _guarded(self, fn, *args):
        if self._busy:
            return
        self._busy = True
        try:
            fn(*args)
        finally:
            self._busy = False

    def _show(self, *names):
        """Redraw panels: all PNGs first, then the widget values, so the browser updates them together."""
        new = {name: _png(self.figure(name)) for name in names}
        for name, png in new.items():
            self.png[name] = png
            self.panels[name].value = png

    def _sync_channel_widgets(self):
        """Dropdown options/value and the channel box from self.state (callers hold the guard)."""
        s = self.state
        self.channel_dd.options = [(f"ch {c}  (phi {s['phi'][c]:.2f})", c) for c in s["top_channels"]]
        self.channel_dd.value = s["channel"] if s["channel"] in s["top_channels"] else None
        self.channel_box.value = s["channel"]
        self.label.value = f"<b>{s['class_name']}</b> (label {s['label']})"

    def _select_image(self, index):
        prev = self._busy
        self._busy = True
        try:
            self.state = self.describe(index)
            if self.index.value != self.state["index"]:
                self.index.value = self.state["index"]
            self._sync_channel_widgets()
            self.progress.value = 0
            self.status.value = ""
        finally:
            self._busy = prev
        self._show(*PANELS)

    def _select_channel(self, channel):
        c = int(channel)
        self.state.update(channel=c, max_activating=self.max_activating(c))
        self._sync_channel_widgets()
        self._show("phi", "channel")

    def _on_topk(self):
        s = self.state
        s["top_channels"] = self.top_channels(s["index"])
        self._sync_channel_widgets()
        self._show("phi")

    def _on_sigma(self):
        s = self.state
        y, d = self.noisy_denoised(s["index"], self.sigma.value)
        x = self.images[s["index"]:s["index"] + 1]
        s.update(sigma=float(self.sigma.value), noisy=y, denoised=d, psnr_noisy=float(psnr(y.clamp(0, 1), x).mean()),
                 psnr_denoised=float(psnr(d, x).mean()))
        self._show("image")

    def select(self, index: int | None = None, channel: int | None = None, sigma: float | None = None):
        """Set the widgets programmatically (the same callbacks run as for a user)."""
        if sigma is not None:
            self.sigma.value = float(sigma)
        if index is not None:
            self.index.value = int(index)
        if channel is not None:
            self.channel_box.value = int(channel)
        return self.state

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def render_static(explorer: Explorer, index: int = 0, channel: int | None = None, sigma: float | None = None,
                  reconstruct: bool = True, masked: bool = False, prefix: str = "explorer",
                  show: bool = True) -> dict:
    """Draw the explorer's panels for image ``index`` (and ``channel``, default its top channel) as
    static figures saved with `save_figure` as <prefix>_<panel>.png; with ``reconstruct`` also the
    self-guided reconstructions. Leaves the widgets as they were. Returns {panel: png path}."""
    ex = explorer
    saved_state, saved_busy = ex.state, ex._busy
    try:
        ex._busy = True  # the progress bar may move; no other widget callback runs
        ex.state = ex.describe(index, channel, sigma)
        if reconstruct:
            prev_mask = ex.mask_box.value
            ex.mask_box.value = bool(masked)
            ex.reconstruct()
            ex.mask_box.value = prev_mask
        paths, figs = {}, {}
        for name in PANELS:
            if name == "reconstructions" and not reconstruct:
                continue
            figs[name] = ex.figure(name)
            paths[name] = save_figure(figs[name], f"{prefix}_{name}")
        if show:  # the saved PNGs: shown the same whatever the matplotlib backend
            from IPython.display import Image, display
            for path in paths.values():
                display(Image(filename=str(path)))
        return paths
    finally:
        ex.state, ex._busy = saved_state, saved_busy
        if reconstruct:
            ex._show("reconstructions")
