"""Figure style, image grids and `save_figure`, the one helper that writes every notebook figure: PNG (and
PDF) at `DPI`, fixed metadata, and a title line naming the checkpoint, N and sigma (`set_context`)."""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import numpy as np
import torch

from lib.core.paths import FIGURES
from lib.core.profile import timed
from lib.notebook.catalog import figure_entry, sigma_text

DPI = 150  # every saved figure: printable, still small for 32x32 image grids
_FIG_DIR: Path | None = None
_CONTEXT: dict = {}
SAVED: list[Path] = []


def set_style():
    """The matplotlib settings every figure shares (DPI, font sizes, no top/right spines)."""
    import matplotlib.pyplot as plt
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": DPI, "font.size": 9, "axes.titlesize": 9,
                         "axes.spines.top": False, "axes.spines.right": False, "figure.max_open_warning": 0})


def set_context(notebook: str = "", checkpoint: str = "", n_images: int | None = None, dataset: str = "",
                images_seen=None, namespace: dict | None = None, smoke: bool = False) -> dict:
    """What the title line of the next saved figures says (`lib.notebook.setup.setup` calls this). ``namespace``
    is the notebook's globals, read at save time for the sigma parameter named in `lib.notebook.catalog`."""
    _CONTEXT.clear()
    _CONTEXT.update(notebook=notebook, checkpoint=checkpoint, n_images=n_images, dataset=dataset,
                    images_seen=images_seen, namespace=namespace, smoke=smoke)
    return _CONTEXT


def title_line(name: str, context: dict | None = None) -> str:
    """"checkpoint tux32 (440k images seen) · tuxphoto, N = 1000 held-out · σ = 0.1" for figure ``name``;
    "" when no context was set (figures drawn outside a notebook)."""
    c = _CONTEXT if context is None else context
    if not c.get("checkpoint"):
        return ""
    seen = c.get("images_seen")
    seen = f" ({seen / 1000:.0f}k images seen)" if isinstance(seen, (int, float)) and seen >= 1000 else ""
    parts = [f"checkpoint {c['checkpoint']}{seen}" + (" [SMOKE]" if c.get("smoke") else "")]
    if c.get("dataset") or c.get("n_images"):
        parts.append(f"{c.get('dataset', '')}, N = {c['n_images']} held-out".strip(", "))
    sig = sigma_text(figure_entry(c.get("notebook", ""), name), c.get("namespace"))
    if sig:
        parts.append(sig)
    return " · ".join(parts)


def _add_title_line(fig, line: str):
    """Put ``line`` just above everything already drawn on ``fig`` (suptitles included), centred."""
    if not line:
        return
    if not hasattr(fig.canvas, "get_renderer"):  # a bare Figure: attach an Agg canvas to measure it
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        FigureCanvasAgg(fig)
    fig.canvas.draw()  # runs the layout engine, so the measured box is the final one
    bb = fig.get_tightbbox(fig.canvas.get_renderer())
    w, h = fig.get_figwidth(), fig.get_figheight()
    fig.text((bb.x0 + bb.x1) / 2 / w, (bb.y1 + 0.06) / h, line, ha="center", va="bottom", fontsize=7.5,
             color="0.3")


def set_figure_dir(path: str | os.PathLike) -> Path:
    """Save the next figures under ``path`` (created); returns it."""
    global _FIG_DIR
    _FIG_DIR = Path(path)
    _FIG_DIR.mkdir(parents=True, exist_ok=True)
    return _FIG_DIR


def figure_dir() -> Path:
    """Where `save_figure` writes: the folder `set_figure_dir` chose, else figures/."""
    return _FIG_DIR if _FIG_DIR is not None else FIGURES


@timed("plotting")
def save_figure(fig, name: str, pdf: bool = False, title: bool = True) -> Path:
    """Save ``fig`` as <figure dir>/<name>.png (and .pdf) at `DPI` with reproducible metadata, with the
    title line of `title_line` (checkpoint, N, sigma) on top unless ``title`` is False; returns the PNG path."""
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"name: expected a plain file stem like 'fig1_sparsity', got {name!r}")
    out = figure_dir()
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{name}.png"
    if title:
        _add_title_line(fig, title_line(name))
    fig.savefig(png, dpi=DPI, bbox_inches="tight", pad_inches=0.08, metadata={"Software": None})
    if pdf:
        fig.savefig(out / f"{name}.pdf", dpi=DPI, bbox_inches="tight", metadata={"Creator": None, "Producer": None,
                                                                                    "CreationDate": None})
    SAVED.append(png)
    return png


def to_numpy_images(x) -> np.ndarray:
    """(N, C, H, W) float [0,1] tensor or uint8 array -> (N, H, W, C) float array in [0, 1]."""
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy()
    x = np.asarray(x)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255
    if x.ndim == 3:
        x = x[None]
    x = np.clip(x, 0, 1).transpose(0, 2, 3, 1)
    return x[..., 0] if x.shape[-1] == 1 else x


def image_grid(images, nrow: int, pad: int = 1, pad_value: float = 1.0) -> np.ndarray:
    """Tile images (N, C, H, W) into one (H', W', C) array, ``nrow`` images per row."""
    x = to_numpy_images(images)
    if x.ndim == 3:
        x = np.repeat(x[..., None], 3, axis=-1)
    n, h, w, c = x.shape
    ncol = nrow
    nr = int(np.ceil(n / ncol))
    grid = np.full((nr * (h + pad) + pad, ncol * (w + pad) + pad, c), pad_value, np.float32)
    for i in range(n):
        r, k = divmod(i, ncol)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = x[i]
    return grid


def show_images(ax, images, nrow: int, title: str | None = None):
    """Draw ``images`` on ``ax`` as a grid of ``nrow`` per row, without axes; returns ``ax``."""
    ax.imshow(image_grid(images, nrow), interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def markdown_table(rows: list[dict], floatfmt: str = ".3f") -> str:
    """A list of dicts as a markdown table (for closing cells and READMEs)."""
    if not rows:
        return ""
    cols = list(rows[0])

    def fmt(v):
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


matplotlib.rcParams.setdefault("svg.hashsalt", "lib")


def ring_tiles(target: torch.Tensor, samples: torch.Tensor) -> torch.Tensor:
    """Paper Fig. 7 layout: a 3x3 tile with the target in the centre and up to 8 samples around it
    (white where there are fewer)."""
    tiles = torch.ones(9, *target.shape)
    for k, s in zip([0, 1, 2, 3, 5, 6, 7, 8], samples[:8]):
        tiles[k] = s
    tiles[4] = target
    return tiles


def show_ring(ax, target, samples, title: str | None = None):
    """Draw `ring_tiles` on ``ax`` with a red frame around the target."""
    from matplotlib.patches import Rectangle
    show_images(ax, ring_tiles(target, samples), nrow=3, title=title)
    h = target.shape[-1]
    ax.add_patch(Rectangle((h + 0.5, h + 0.5), h + 1, h + 1, fill=False, ec="red", lw=1.5))
    return ax
