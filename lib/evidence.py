"""Evidence for the paper's effects, measured on a fixed held-out set (issue: laptop-scale evidence).

    python -m lib.evidence                                  # default checkpoint, last line = flat JSON
    python -m lib.evidence --snapshots runs/tux32/snapshots # curves over training -> figures/evidence/

Per model: median PR of the middle block's input and output (PAPER 5.1), number of middle-block channels
with excess kurtosis > 3 across images, k-means (k = number of classes) NMI/ARI of phi against class,
instance and background, and a linear-probe accuracy of phi at sigma = 50/255; next to raw pixels and
the untrained network of the same architecture (computed once).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from .analysis import block_pr, channel_stats
from .checkpoint import load_model
from .clustering import kmeans, scores
from .data import load_dataset
from .paths import FIGURES, resolve
from .probe import linear_probe
from .representation import phi
from .unet import UNet

PROBE_SIGMA = 50 / 255  # the authors' probe noise level, converted to [0, 1] units here only


def representation_scores(X: np.ndarray, data, seed: int = 0) -> dict:
    """k-means NMI/ARI against class (+instance/background where known) and the probe accuracy."""
    k = len(data.class_names)
    lab = kmeans(X, k, seed=seed, n_init=4)
    out = {}
    for name, y in [("class", data.labels)] + [(f, data.factors[f]) for f in ("instance", "background") if f in data.factors]:
        s = scores(lab, y)
        for m in ("nmi", "ami", "ari"):
            out[f"{name}_{m}"] = round(s[m], 4)
    out["probe_acc"] = round(float(linear_probe(X, data.labels, seed=seed)["accuracy"]), 4)
    return out


def model_evidence(model, data, seed: int = 0) -> dict:
    x = data.float()
    pr = block_pr(model, x, 0.0, blocks=["a4"])["a4"]
    f0 = phi(model, x, 0.0, blocks="mid").numpy()
    kurt = channel_stats(f0)["kurtosis"]
    fp = phi(model, x, PROBE_SIGMA, n_noise=4, blocks="mid", seed=seed).numpy()
    ev = {"mid_pr_in": round(float(np.median(pr["in"])), 4), "mid_pr_out": round(float(np.median(pr["out"])), 4),
          "n_kurtotic_channels": int(np.sum(np.nan_to_num(kurt) > 3)), "n_channels": int(f0.shape[1])}
    ev.update(representation_scores(fp, data, seed))
    return ev


def pixel_evidence(data, seed: int = 0) -> dict:
    X = data.float().flatten(1).numpy()
    return representation_scores(X, data, seed)


def evidence_with_controls(model, data, seed: int = 0, init_seed: int = 0, pixels: dict | None = None):
    """(model, its untrained twin, pixels) evidence on ``data``; the twin has the model's config and weights
    drawn after torch.manual_seed(init_seed); ``pixels``: a pixel result already computed on ``data``."""
    torch.manual_seed(init_seed)
    untrained = UNet(model.config).eval()
    return (model_evidence(model, data, seed), model_evidence(untrained, data, seed),
            pixel_evidence(data, seed) if pixels is None else pixels)


def default_evidence(checkpoint="data/checkpoints/tux32", n: int = 1000, seed: int = 0) -> dict:
    model = load_model(resolve(checkpoint))
    meta = model.checkpoint_metadata
    data = load_dataset(meta.get("dataset", "tuxphoto"), n=n, size=model.config.image_size, seed=seed, split="test")
    tr, un, px = evidence_with_controls(model, data, seed, init_seed=seed)
    return {"mid_pr_in": tr["mid_pr_in"], "mid_pr_out": tr["mid_pr_out"],
            "phi_class_nmi": tr["class_nmi"], "pixel_class_nmi": px["class_nmi"], "untrained_class_nmi": un["class_nmi"],
            "phi_probe_acc": tr["probe_acc"], "pixel_probe_acc": px["probe_acc"], "untrained_probe_acc": un["probe_acc"],
            "n_kurtotic_channels": tr["n_kurtotic_channels"], "untrained_n_kurtotic_channels": un["n_kurtotic_channels"],
            "untrained_mid_pr_out": un["mid_pr_out"],
            "phi_background_nmi": tr.get("background_nmi"), "pixel_background_nmi": px.get("background_nmi"),
            "dataset": meta.get("dataset"), "images_seen": meta.get("images_seen"), "n_images": n}


def snapshot_curves(snapshots: Path, out: Path, n: int = 500, seed: int = 0) -> list[dict]:
    """Evidence for every snapshot in a run's snapshots/ folder (plus the untrained net and pixels)."""
    stems = sorted(p.with_suffix("") for p in Path(snapshots).glob("*.safetensors"))
    if not stems:
        raise FileNotFoundError(f"no snapshots (*.safetensors) in {snapshots}")
    first = load_model(stems[0])
    meta = first.checkpoint_metadata
    data = load_dataset(meta["dataset"], n=n, size=first.config.image_size, seed=seed, split="test")
    torch.manual_seed(meta.get("train_config", {}).get("seed", 0))
    rows = [{"images_seen": 0, **model_evidence(UNet(first.config).eval(), data, seed)}]
    for s in stems:
        m = load_model(s)
        rows.append({"images_seen": m.checkpoint_metadata["images_seen"], **model_evidence(m, data, seed)})
        print(json.dumps(rows[-1]), flush=True)
    px = pixel_evidence(data, seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evidence.jsonl").write_text("".join(json.dumps({**r, "source": str(snapshots)}) + "\n" for r in rows)
                                        + json.dumps({"images_seen": None, "pixels": px}) + "\n")
    plot_curves(rows, px).savefig(out / "evidence_curves.png", dpi=110, metadata={"Software": None})
    return rows


def read_evidence(path) -> tuple[list[dict], dict]:
    """Rows (one per model, images_seen ascending) and the pixel control from an evidence.jsonl."""
    rows, px = [], {}
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        if "pixels" in r:
            px = r["pixels"]
        else:
            rows.append(r)
    return sorted(rows, key=lambda r: r["images_seen"]), px


def read_log(path) -> tuple[list[dict], list[dict]]:
    """Training records and eval records of a training log.jsonl."""
    recs = [json.loads(l) for l in Path(path).read_text().splitlines() if l.strip()]
    return [r for r in recs if "loss" in r], [r for r in recs if r.get("kind") == "eval"]


def plot_training_log(path):
    import matplotlib.pyplot as plt
    train, evals = read_log(path)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3))
    a.plot([r["images"] / 1e3 for r in train], [r["loss"] for r in train], lw=1)
    a.set_yscale("log")
    a.set_xlabel("training images seen (x1000)")
    a.set_ylabel("loss (squared error summed over pixels)")
    if evals:
        for s in evals[-1]["psnr"]:
            b.plot([r["images"] / 1e3 for r in evals], [r["psnr"][s]["output"] - r["psnr"][s]["input"] for r in evals],
                   label=f"σ={s}")
        b.set_xlabel("training images seen (x1000)")
        b.set_ylabel("PSNR gain over the noisy input (dB)")
        b.legend(fontsize=7)
    fig.tight_layout()
    return fig


def verdict(rows: list[dict], pixels: dict) -> str:
    """Markdown lines: how each effect moved from the first row (untrained) to the last (end of training)."""
    first, last = rows[0], rows[-1]
    nan = float("nan")

    def trend(k):
        return f"{first[k]:.3f} (untrained) → {last[k]:.3f} ({last['images_seen']:,} images)"
    return "\n".join([
        f"- Middle block output PR (lower = sparser; paper mode 0.26): {trend('mid_pr_out')}; its input: "
        f"{trend('mid_pr_in')}. The middle block "
        f"{'sparsifies' if last['mid_pr_out'] < last['mid_pr_in'] else 'does not sparsify'} its input at the end of training.",
        f"- Heavy-tailed (specialized) channels: {first['n_kurtotic_channels']} → {last['n_kurtotic_channels']} of "
        f"{last['n_channels']}.",
        f"- k-means NMI vs class: {trend('class_nmi')} (pixels {pixels['class_nmi']:.3f}); vs background: "
        f"{first.get('background_nmi', nan):.3f} → {last.get('background_nmi', nan):.3f} "
        f"(pixels {pixels.get('background_nmi', nan):.3f}).",
        f"- Linear probe accuracy: {trend('probe_acc')} (pixels {pixels['probe_acc']:.3f}).",
    ])


def plot_curves(rows: list[dict], pixels: dict):
    import matplotlib.pyplot as plt
    x = [r["images_seen"] / 1e3 for r in rows]
    fig, axes = plt.subplots(1, 4, figsize=(13, 2.8))
    axes[0].plot(x, [r["mid_pr_in"] for r in rows], "o-", label="mid input")
    axes[0].plot(x, [r["mid_pr_out"] for r in rows], "o-", label="mid output (phi)")
    axes[0].set_ylabel("median PR")
    axes[1].plot(x, [r["n_kurtotic_channels"] for r in rows], "o-")
    axes[1].set_ylabel("channels with excess kurtosis > 3")
    for key, lab in (("class_nmi", "class"), ("background_nmi", "background"), ("instance_nmi", "instance")):
        if key in rows[0]:
            l, = axes[2].plot(x, [r[key] for r in rows], "o-", label=f"phi vs {lab}")
            axes[2].axhline(pixels[key], color=l.get_color(), ls=":", lw=1)
    axes[2].set_ylabel("k-means NMI (dotted: pixels)")
    axes[3].plot(x, [r["probe_acc"] for r in rows], "o-", label="phi")
    axes[3].axhline(pixels["probe_acc"], color="k", ls=":", label="pixels")
    axes[3].set_ylabel("linear probe accuracy")
    for a in axes:
        a.set_xlabel("training images seen (x1000)")
        a.legend(fontsize=7) if a.get_legend_handles_labels()[0] else None
    fig.tight_layout()
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", default="data/checkpoints/tux32")
    p.add_argument("--snapshots", help="a run's snapshots/ folder: write curves to --out")
    p.add_argument("--out", default=str(FIGURES / "evidence"))
    p.add_argument("-n", type=int, default=1000, help="held-out images")
    a = p.parse_args(argv)
    if a.snapshots:
        snapshot_curves(Path(a.snapshots), Path(a.out), n=a.n)
    print(json.dumps(default_evidence(a.checkpoint, n=a.n)))


if __name__ == "__main__":
    main()
