"""Evidence for the paper's effects, measured with the readout (lib.measure.readout) on fixed held-out images.

    python -m scripts.evidence                                  # default checkpoint, last line = flat JSON
    python -m scripts.evidence --snapshots runs/tux32/snapshots --out figures/evidence  # curves over training

Per model, at the analysis noise level (lib.measure.readout.ANALYSIS_SIGMA, ANALYSIS_NOISE draws): the liveness of phi
(fraction of its energy that varies across images), the median PR and effective channel count (PR x C) of the
middle block's input and output, the number of middle-block channels with excess kurtosis > 3 across images
(among channels active for at least 1% of the images), k-means NMI/AMI/ARI of phi against class, instance and
background, and a tuned linear probe and kNN fitted on a train split; next to raw pixels and the untrained
network of the same configuration.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lib.core.paths import resolve
from lib.data.datasets import load_dataset
from lib.measure.channels import kurtotic_channels, participation_ratio
from lib.measure.readout import (
    ANALYSIS_NOISE,
    ANALYSIS_SIGMA,
    PROBE_TRAIN_IMAGES,
    liveness,
    pca_like,
    probe_with_controls,
    score,
    untrained_twin,
)
from lib.model.checkpoint import load_model
from lib.representation.phi import phi

EVIDENCE_TRAIN_IMAGES = 2000  # train-split images for the probe of the in-training evidence records


def evidence_sets(spec: str, size: int, seed: int, n_test: int, n_train: int = EVIDENCE_TRAIN_IMAGES):
    """(train, test) ImageSets of ``spec``: the probe's training rows and the held-out rows scored."""
    return (load_dataset(spec, n=n_train, size=size, seed=seed, split="train"),
            load_dataset(spec, n=n_test, size=size, seed=seed, split="test"))


def representation_scores(X: np.ndarray, data, seed: int = 0, train_X=None, train=None) -> dict:
    """The evidence records' keys for one representation, read by `lib.measure.readout.score`: k-means (k = the
    number of classes) NMI/AMI/ARI against class (+instance/background where known) on the held-out rows X; with
    a train split (``train_X`` rows of the ImageSet ``train``): the tuned probe's test and train accuracy and the
    kNN accuracy. Rounded to 4 decimals, as the records keep them."""
    factors = {f: data.factors[f] for f in ("instance", "background") if f in data.factors}
    s = score(X, data.labels, train_X, None if train is None else train.labels, seed=seed, factors=factors,
              k=min(len(data.class_names), len(X)), standardized=False)
    out = {f"{name}_{m}": round(c[m], 4) for name, c in s.clusters.items() for m in ("nmi", "ami", "ari")}
    if train is not None:
        out.update({"probe_acc": round(s.probe_acc, 4), "probe_train_acc": round(s.probe_train_acc, 4),
                    "knn_acc": round(s.knn_acc, 4), "probe_train_images": len(train)})
    return out


def model_evidence(model, data, seed: int = 0, train=None, sigma: float = ANALYSIS_SIGMA,
                   n_noise: int = ANALYSIS_NOISE) -> dict:
    """The readout of one network's middle block on ``data`` (held-out ImageSet); ``train``: the probe's
    train split (no probe keys without it)."""
    out, ins = phi(model, data.float(), sigma, n_noise, "mid", seed=seed, inputs=True)
    fo, fi = out.numpy(), ins.numpy()
    live = liveness(fo)
    pr_in, pr_out = participation_ratio(fi), participation_ratio(fo)
    ev = {"evidence_sigma": sigma, "mid_varying_fraction": round(live["varying_fraction"], 4),
          "mid_mean_cosine": round(live["mean_cosine"], 4),
          "mid_pr_in": round(float(np.nanmedian(pr_in)), 4), "mid_pr_out": round(float(np.nanmedian(pr_out)), 4),
          "mid_eff_channels_in": round(float(np.nanmedian(pr_in * fi.shape[1])), 2),
          "mid_eff_channels_out": round(float(np.nanmedian(pr_out * fo.shape[1])), 2),
          "n_kurtotic_channels": kurtotic_channels(fo), "n_channels": int(fo.shape[1])}
    ftr = None if train is None else phi(model, train.float(), sigma, n_noise, "mid", seed=seed + 1000).numpy()
    ev.update(representation_scores(fo, data, seed, ftr, train))
    return ev


def pixel_evidence(data, seed: int = 0, train=None) -> dict:
    """The readout scores of raw pixels on ``data`` (the pixel control of `model_evidence`)."""
    X = data.float().flatten(1).numpy()
    return representation_scores(X, data, seed, None if train is None else train.float().flatten(1).numpy(), train)


def pca_pixel_evidence(data, train, dims: int, seed: int = 0) -> dict:
    """`pixel_evidence` on the pixels projected on the first ``dims`` principal components of the ``train``
    split's pixels (the control with as many dimensions as phi)."""
    tr, te = pca_like(train.float().flatten(1).numpy(), data.float().flatten(1).numpy(), dims, seed=seed)
    return {**representation_scores(te, data, seed, tr, train), "dims": int(tr.shape[1])}


def default_evidence(checkpoint="data/checkpoints/tux32", n: int = 2000, seed: int = 0,
                     n_train: int = PROBE_TRAIN_IMAGES) -> dict:
    """The flat JSON of `make evidence`: the trained model's readout, its untrained twins (3 init seeds for
    the probe, seed 0 for the rest) and pixels, on ``n`` held-out images with a probe fitted on ``n_train``."""
    model = load_model(resolve(checkpoint))
    meta = model.checkpoint_metadata
    train, data = evidence_sets(meta.get("dataset", "tuxphoto"), model.config.image_size, seed, n, n_train)
    tr = model_evidence(model, data, seed)
    un = model_evidence(untrained_twin(model, seed), data, seed)
    px = pixel_evidence(data, seed)
    factors = {f: data.factors[f] for f in ("background",) if f in data.factors}
    pc = probe_with_controls(model, train, data, factors=factors).flat()
    return {"evidence_sigma": tr["evidence_sigma"], "mid_varying_fraction": tr["mid_varying_fraction"],
            "untrained_mid_varying_fraction": un["mid_varying_fraction"],
            "mid_pr_in": tr["mid_pr_in"], "mid_pr_out": tr["mid_pr_out"],
            "mid_eff_channels_in": tr["mid_eff_channels_in"], "mid_eff_channels_out": tr["mid_eff_channels_out"],
            "untrained_mid_pr_out": un["mid_pr_out"], "untrained_mid_eff_channels_out": un["mid_eff_channels_out"],
            "phi_class_nmi": tr["class_nmi"], "pixel_class_nmi": px["class_nmi"],
            "untrained_class_nmi": un["class_nmi"],
            "phi_class_ami": tr["class_ami"], "pixel_class_ami": px["class_ami"],
            "untrained_class_ami": un["class_ami"],
            "phi_probe_acc": round(pc["phi_probe_acc"], 4), "phi_probe_acc_sd": round(pc["phi_probe_acc_sd"], 4),
            "phi_probe_train_acc": round(pc["phi_probe_train_acc"], 4),
            "pixel_probe_acc": round(pc["pixel_probe_acc"], 4),
            "pca_pixel_probe_acc": round(pc["pca_pixel_probe_acc"], 4),
            "untrained_probe_acc": round(pc["untrained_probe_acc"], 4),
            "untrained_probe_acc_sd": round(pc["untrained_probe_acc_sd"], 4),
            "phi_knn_acc": round(pc["phi_knn_acc"], 4), "pixel_knn_acc": round(pc["pixel_knn_acc"], 4),
            "pca_pixel_knn_acc": round(pc["pca_pixel_knn_acc"], 4),
            "untrained_knn_acc": round(pc["untrained_knn_acc"], 4),
            "probe_train_images": pc["probe_train_images"],
            "n_kurtotic_channels": tr["n_kurtotic_channels"],
            "untrained_n_kurtotic_channels": un["n_kurtotic_channels"],
            "phi_background_nmi": tr.get("background_nmi"), "pixel_background_nmi": px.get("background_nmi"),
            "dataset": meta.get("dataset"), "images_seen": meta.get("images_seen"), "n_images": n}


def snapshot_curves(snapshots: Path, out: Path, n: int = 500, seed: int = 0,
                    n_train: int = EVIDENCE_TRAIN_IMAGES) -> list[dict]:
    """Evidence for every snapshot in a run's snapshots/ folder (plus the untrained net and pixels)."""
    stems = sorted(p.with_suffix("") for p in Path(snapshots).glob("*.safetensors"))
    if not stems:
        raise FileNotFoundError(f"no snapshots (*.safetensors) in {snapshots}")
    first = load_model(stems[0])
    meta = first.checkpoint_metadata
    train, data = evidence_sets(meta["dataset"], first.config.image_size, seed, n, n_train)
    init = meta.get("train_config", {}).get("seed", 0)
    rows = [{"images_seen": 0, **model_evidence(untrained_twin(first, init), data, seed, train)}]
    for s in stems:
        m = load_model(s)
        rows.append({"images_seen": m.checkpoint_metadata["images_seen"], **model_evidence(m, data, seed, train)})
        print(json.dumps(rows[-1]), flush=True)
    px = pixel_evidence(data, seed, train)
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


def evidence_of(path, checkpoint_name: str) -> tuple[list[dict], dict] | None:
    """`read_evidence` of ``path`` when its rows were measured on the snapshots of the run shipped as
    ``checkpoint_name`` (their ``source`` is ``.../<checkpoint_name>/snapshots``), else None: another
    checkpoint's training-time evidence (the tuxphoto default's file, read by a CIFAR-10 run) is not shown."""
    rows, px = read_evidence(path)
    runs = {Path(r["source"]).parent.name for r in rows if r.get("source")}
    return (rows, px) if checkpoint_name in runs else None


def read_log(path) -> tuple[list[dict], list[dict]]:
    """Training records and eval records of a training log.jsonl."""
    recs = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return [r for r in recs if "loss" in r], [r for r in recs if r.get("kind") == "eval"]


def plot_training_log(path):
    """Figure of a log.jsonl: the training loss, and each eval's PSNR gain over the noisy input per sigma."""
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
        f"{'sparsifies' if last['mid_pr_out'] < last['mid_pr_in'] else 'does not sparsify'} its input at the end of "
        f"training.",
        f"- Heavy-tailed (specialized) channels: {first['n_kurtotic_channels']} → {last['n_kurtotic_channels']} of "
        f"{last['n_channels']}.",
        f"- k-means NMI vs class: {trend('class_nmi')} (pixels {pixels['class_nmi']:.3f}); vs background: "
        f"{first.get('background_nmi', nan):.3f} → {last.get('background_nmi', nan):.3f} "
        f"(pixels {pixels.get('background_nmi', nan):.3f}).",
        f"- Linear probe accuracy: {trend('probe_acc')} (pixels {pixels['probe_acc']:.3f}).",
    ])


def plot_curves(rows: list[dict], pixels: dict):
    """Figure of evidence rows over training: the middle block's PR, kurtotic channels, k-means NMI and probe
    accuracy, with the pixel control dotted."""
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
            curve, = axes[2].plot(x, [r[key] for r in rows], "o-", label=f"phi vs {lab}")
            axes[2].axhline(pixels[key], color=curve.get_color(), ls=":", lw=1)
    axes[2].set_ylabel("k-means NMI (dotted: pixels)")
    axes[3].plot(x, [r["probe_acc"] for r in rows], "o-", label="phi")
    axes[3].axhline(pixels["probe_acc"], color="k", ls=":", label="pixels")
    axes[3].set_ylabel("linear probe accuracy")
    for a in axes:
        a.set_xlabel("training images seen (x1000)")
        a.legend(fontsize=7) if a.get_legend_handles_labels()[0] else None
    fig.tight_layout()
    return fig
