"""A schematic of the UNet drawn from its `UNetConfig` (the architecture part of the paper's Fig. 1): the
encoder blocks going down, the middle block at the bottom, the decoder going up, each box with its paper
name, convolutions, channels and resolution; skip connections; and where phi is read (the spatial mean of
the middle block's output)."""
from __future__ import annotations

from lib.model.unet import UNet, UNetConfig, block_aliases, block_label

NORM_NAMES = {"scale": "per-sample scale-only norm", "bfbn": "bias-free batch norm", "batch": "batch norm",
              "none": "no norm"}


def blocks(config: UNetConfig, image_size: int | None = None) -> list[dict]:
    """The blocks top to bottom, left to right: name, paper alias, convs, channels, resolution, column, row."""
    L = config.levels
    s = int(image_size or config.image_size)
    out = []
    for i in range(L):
        out.append({"name": f"enc{i + 1}", "paper": block_label(f"enc{i + 1}", L), "convs": config.enc_convs[i],
                    "channels": config.widths[i], "size": s // 2 ** i, "col": i, "row": i})
    out.append({"name": "mid", "paper": block_label("mid", L), "convs": config.mid_convs, "channels": config.mid_width,
                "size": s // 2 ** L, "col": L, "row": L})
    for i in reversed(range(L)):
        out.append({"name": f"dec{i + 1}", "paper": block_label(f"dec{i + 1}", L), "convs": config.dec_convs[i],
                    "channels": config.widths[i], "size": s // 2 ** i, "col": 2 * L - i, "row": i})
    alias = {n: a for a, n in block_aliases(L).items()}
    for b in out:
        b["alias"] = alias.get(b["name"], "")
    return out


def plot_network(config: UNetConfig, name: str = "", image_size: int | None = None, n_params: int | None = None):
    """The schematic as a matplotlib figure. ``name``: the checkpoint's name for the title."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if n_params is None:
        n_params = sum(p.numel() for p in UNet(config).parameters())
    L = config.levels
    bl = blocks(config, image_size)
    W, H, dx, dy = 1.55, 0.78, 1.9, 1.15
    x_lim = (-W / 2 - 0.3, 2 * L * dx + W / 2 + 0.3)
    y_lim = (-L * dy - H / 2 - 1.0, 0.85)
    scale = 0.95  # inches per data unit
    fig, ax = plt.subplots(figsize=(scale * (x_lim[1] - x_lim[0]), scale * (y_lim[1] - y_lim[0])))
    fig.subplots_adjust(0, 0, 1, 1)
    pos = {}
    for b in bl:
        x, y = b["col"] * dx, -b["row"] * dy
        pos[b["name"]] = (x, y)
        mid = b["name"] == "mid"
        face = "#fde0c5" if mid else ("#dbe9f6" if b["name"].startswith("enc") else "#e3f1dc")
        ax.add_patch(FancyBboxPatch((x - W / 2, y - H / 2), W, H, boxstyle="round,pad=0.02,rounding_size=0.08",
                                    fc=face, ec="tab:red" if mid else "0.3", lw=1.8 if mid else 0.9))
        head = f"{b['paper']} ({b['name']}" + (f", {b['alias']})" if b["alias"] else ")")
        convs = f"{b['convs']} conv" + ("s" if b["convs"] > 1 else "")
        out_ch = f"{b['channels']} ch" if b["name"] != "dec1" else f"{b['channels']} ch → {config.in_channels}"
        ax.text(x, y + 0.17, head, ha="center", va="center", fontsize=8, weight="bold")
        ax.text(x, y - 0.14, f"{convs}, {out_ch}\n{b['size']}×{b['size']}", ha="center", va="center", fontsize=7.5,
                linespacing=1.15)

    def arrow(p, q, text="", style="-|>", ls="-", color="0.25", rad=0.0, tx=0.0, ty=0.0, fs=6.5):
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=9, lw=0.9, ls=ls, color=color,
                                     connectionstyle=f"arc3,rad={rad}", shrinkA=0, shrinkB=0))
        if text:
            ax.text((p[0] + q[0]) / 2 + tx, (p[1] + q[1]) / 2 + ty, text, fontsize=fs, color=color, ha="center",
                    va="center")

    names = [b["name"] for b in bl]
    for a, b in zip(names, names[1:]):
        (x0, y0), (x1, y1) = pos[a], pos[b]
        if y1 < y0:  # going down: average pooling
            arrow((x0 + W / 4, y0 - H / 2), (x1 - W / 4, y1 + H / 2), "avg-pool 2×2", tx=-0.05, ty=0.0)
        else:  # going up: transposed convolution
            arrow((x0 + W / 4, y0 + H / 2), (x1 - W / 4, y1 - H / 2), "transposed\nconv 2×2", tx=0.05)
    for i in range(L):  # skip connections, concatenated
        (x0, y0), (x1, y1) = pos[f"enc{i + 1}"], pos[f"dec{i + 1}"]
        arrow((x0 + W / 2, y0 + 0.22), (x1 - W / 2, y1 + 0.22), "skip (concatenated)" if i == 0 else "", ls="--",
              color="0.45", ty=0.1)
    x0, y0 = pos["enc1"]
    ax.text(x0, y0 + H / 2 + 0.35, f"noisy image y\n{config.in_channels}×{bl[0]['size']}×{bl[0]['size']}",
            ha="center", va="center", fontsize=7.5)
    arrow((x0, y0 + H / 2 + 0.2), (x0, y0 + H / 2))
    x1, y1 = pos["dec1"]
    ax.text(x1, y1 + H / 2 + 0.35, "denoised image D(y)\n(blind: no σ input)", ha="center", va="center",
            fontsize=7.5)
    arrow((x1, y1 + H / 2), (x1, y1 + H / 2 + 0.2))
    xm, ym = pos["mid"]
    ax.text(xm, ym - H / 2 - 0.55, f"φ(x) = E_z[ spatial mean of B's output at x + σz ]\n"
            f"{config.mid_width} numbers per image", ha="center", va="center", fontsize=7.5, color="tab:red",
            bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "tab:red", "lw": 1.0})
    arrow((xm, ym - H / 2), (xm, ym - H / 2 - 0.3), color="tab:red")
    ax.text(xm, 0.62, f"UNet {name + ': ' if name else ''}{n_params / 1e6:.1f} M parameters; each conv 3×3 → "
            f"{NORM_NAMES.get(config.norm, config.norm)} → ReLU", ha="center", va="center", fontsize=8)
    ax.set_xlim(*x_lim)
    ax.set_ylim(*y_lim)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig
