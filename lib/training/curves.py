"""Learning curves of the readout: phi of every snapshot of a run against images seen, next to its controls.

For each snapshot (``snapshots/img*.safetensors`` and the run's ``model``) the readout of the middle block at
the analysis noise level (lib.measure.readout: liveness, effective channels, k-means class AMI, tuned linear
probe and kNN fitted on a train split) on fixed held-out images; the controls on the same images: raw pixels,
and the untrained network of the run's configuration over three init seeds (mean and sd). One JSON line per
snapshot is appended to ``curves.jsonl`` as soon as it is measured, so an interrupted measurement resumes.

Runs are named by `run_labels` (the folder's name; a parent folder is added where two runs share a name, and
an EMA kept beside a run, ``RUN/ema``, is "RUN/ema"), and each trained record carries its weights' sha256: a
snapshot is measured again when its weights differ from the recorded ones at the same images seen, and
refused with an error if a record for the same run and images holds other weights (a folder that now holds
another trajectory). Records written before the hash was recorded are trusted as they are.

The gap of a measure is phi minus the best control (pixels or the mean untrained network); its 95% interval
treats the two accuracies as independent binomial proportions on the held-out images (plus the untrained
seeds' spread when that control is the best). A second record per snapshot (kind "reliance") says whether the
decoder uses the middle block at all (lib.measure.denoising.block_reliance on the first 256 held-out images):
the PSNR lost when each image's middle block is swapped with another image's. `fit_gap` fits
gap = a + b log10(images seen) and says where the fitted line would reach a margin, if it rises.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from lib.core.checks import read_json, read_jsonl
from lib.core.files import waiting_lock
from lib.core.hashing import weights_sha256
from lib.measure.denoising import RELIANCE_SIGMAS, block_reliance, psnr_table
from lib.measure.readout import ANALYSIS_NOISE, ANALYSIS_SIGMA, UNTRAINED_SEEDS, untrained_twin
from lib.model.checkpoint import load_model
from lib.training.evidence import evidence_sets, model_evidence, pca_pixel_evidence, pixel_evidence

CURVE_KEYS = ("mid_varying_fraction", "mid_eff_channels_out", "class_ami", "probe_acc", "knn_acc")
GAP_KEYS = ("probe_acc", "knn_acc")
RELIANCE_IMAGES = 256
RELIANCE_KEYS = tuple(f"mid_{k}@{s}" for s in RELIANCE_SIGMAS for k in ("swap_drop", "means_drop"))
PSNR_SIGMAS = (0.1, 0.4)  # the denoising a factor costs or buys, beside the readout (kind "psnr")
PSNR_KEYS = tuple(f"psnr@{s}" for s in PSNR_SIGMAS)


def reliance_record(model, images) -> dict:
    """block_reliance of the middle block, flattened to RELIANCE_KEYS (dB)."""
    table = block_reliance(model, images, RELIANCE_SIGMAS, "mid")
    return {f"mid_{k}@{s}": table[str(s)][k] for s in RELIANCE_SIGMAS for k in ("swap_drop", "means_drop")}


def psnr_record(model, images) -> dict:
    """Held-out PSNR (dB) of the denoiser at PSNR_SIGMAS on ``images`` (lib.measure.denoising.psnr_table)."""
    table = psnr_table(model, images, PSNR_SIGMAS)
    return {f"psnr@{s}": table[str(s)]["output"] for s in PSNR_SIGMAS}


def run_labels(runs) -> list[str]:
    """A name per run folder for the records: its folder name ("RUN/ema" for an EMA beside a run), with as many
    parent folders as it takes to tell apart runs that share a name."""
    paths = [Path(r).resolve() for r in runs]
    if len(set(paths)) != len(paths):
        dup = sorted({str(r) for r, p in zip(runs, paths) if paths.count(p) > 1})
        raise ValueError(f"runs: the same run folder is named twice ({', '.join(dup)})")
    depth = [2 if p.name == "ema" else 1 for p in paths]

    def label(p, d):
        return "/".join(p.parts[-d:])
    while True:
        labels = [label(p, d) for p, d in zip(paths, depth)]
        clash = [i for i, lab in enumerate(labels) if labels.count(lab) > 1]
        if not clash:
            return labels
        for i in clash:
            if depth[i] >= len(paths[i].parts):
                raise ValueError(f"runs: cannot tell {paths[i]} apart from another run")
            depth[i] += 1


def snapshots(run, current: bool = True) -> list[tuple[int, Path]]:
    """(images seen, checkpoint stem) of every snapshot of ``run`` and (``current``) of its current model,
    ascending."""
    run = Path(run)
    out = {}
    for p in sorted((run / "snapshots").glob("img*.safetensors")):
        m = re.fullmatch(r"img(\d+)", p.stem)
        if m:
            out[int(m.group(1))] = p.with_suffix("")
    if current and (run / "model.safetensors").is_file():
        meta = read_json(run / "model.json", "model config").get("metadata", {})
        out.setdefault(int(meta.get("images_seen", 0)), run / "model")
    if not out:
        raise FileNotFoundError(f"{run}: no snapshots/img*.safetensors and no model.safetensors; train it first")
    return sorted(out.items())


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line without its newline (a writer killed mid-line) so that the next record starts a line."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        with open(path, "r+b") as f:
            f.truncate(data.rfind(b"\n") + 1)


def _read(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return read_jsonl(path, "curves records", skip_torn_last=True)


class _Records:
    """The records of one run (its ``settings``) in a curves.jsonl file: what is there, what another run of the
    same settings measured that this one may copy, and appending under the file's lock."""

    def __init__(self, path: Path, settings: dict, spec: str, first):
        self.path, self.settings, self.rows = path, settings, []
        recs = _read(path)
        self.done = [r for r in recs if all(r.get(k) == v for k, v in settings.items())]
        self.have = {(r["kind"], r.get("images_seen"), r.get("init_seed")) for r in self.done}
        self.recorded = {(r["kind"], r["images_seen"]): r.get("weights_sha256") for r in self.done
                         if "images_seen" in r}
        self.arch = json.dumps(first.config.to_dict(), sort_keys=True)
        self.dims = int(first.config.mid_width)
        # the controls depend on the images and the architecture only: reuse another run's when they match
        others = [r for r in recs if r.get("run") != settings["run"] and r.get("dataset") == spec
                  and all(r.get(k) == v for k, v in settings.items() if k != "run")]
        self.shared = {(r["kind"], r.get("init_seed")): r for r in others
                       if r["kind"] == "pixels" or (r["kind"] == "pca_pixels" and r.get("dims") == self.dims)
                       or (r["kind"] in ("untrained", "reliance") and r.get("arch") == self.arch
                           and "init_seed" in r)}
        self.spec = spec

    def add(self, rec: dict) -> None:
        """Append ``rec`` (with the settings) as one line; concurrent writers append whole lines."""
        rec = {**self.settings, **rec}
        with waiting_lock(self.path.with_name(self.path.name + ".lock")):
            _drop_torn_tail(self.path)
            with open(self.path, "a") as f:
                f.write(json.dumps(rec) + "\n")
        self.rows.append(rec)
        print(json.dumps(rec), flush=True)

    def control(self, kind: str, init_seed, measure) -> None:
        """A control's record, copied from another run's (marked ``copied_from``) or measured, unless there."""
        if (kind, None, init_seed) in self.have:
            return
        other = self.shared.get((kind, init_seed))
        if other is not None:
            self.add({**{k: v for k, v in other.items() if k not in self.settings}, "copied_from": other["run"]})
        else:
            self.add({"kind": kind, "dataset": self.spec, **({} if kind in ("pixels", "pca_pixels") else
                                                             {"arch": self.arch, "init_seed": init_seed}),
                      **measure()})

    def snapshot(self, kind: str, images: int, sha: str, measure) -> None:
        """A snapshot's record of ``kind`` (trained, reliance, psnr), measured unless there."""
        if (kind, images, None) not in self.have:
            self.add({"kind": kind, "images_seen": images, "weights_sha256": sha, **measure()})

    def check_weights(self, images: int, sha: str, stem) -> None:
        """Refuse a snapshot whose weights differ from those recorded at the same images seen."""
        old = self.recorded.get(("trained", images), sha)
        if old not in (None, sha):
            raise ValueError(f"{self.path}: run {self.settings['run']!r} was recorded at {images:,} images with "
                             f"weights {old}, but {stem} holds weights {sha} (another trajectory in the same "
                             f"folder?); measure it under another run folder name, or remove those records")


def measure_run(run, out, n_test: int = 2000, n_train: int = 5000, sigma: float = ANALYSIS_SIGMA,
                n_noise: int = ANALYSIS_NOISE, seed: int = 0, dataset: str | None = None,
                current: bool = True, label: str | None = None) -> list[dict]:
    """Append the readout of every not yet measured snapshot of ``run`` (and, once, its controls) to
    ``out``/curves.jsonl; returns all its records. ``dataset`` overrides the run's dataset spec (the images
    moved); ``current=False`` skips the run's current model (a run still training: only its kept snapshots);
    the settings are part of each record and records with other settings are not reused. The controls
    (pixels; untrained networks) of another run measured with the same settings on the same dataset (and, for
    the untrained networks, the same architecture) are copied, marked ``copied_from``, not measured again.
    ``label`` names the run in the records (default: `run_labels` of this run alone)."""
    run, out = Path(run), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"run": label or run_labels([run])[0], "n_test": n_test, "n_train": n_train, "sigma": sigma,
                "n_noise": n_noise, "seed": seed}
    snaps = snapshots(run, current)
    first = load_model(snaps[0][1])
    spec = dataset or first.checkpoint_metadata["dataset"]
    train, data = evidence_sets(spec, first.config.image_size, seed, n_test, n_train)
    rec = _Records(out / "curves.jsonl", settings, spec, first)
    # 1. the controls: pixels, PCA pixels, untrained networks
    rec.control("pixels", None, lambda: pixel_evidence(data, seed, train))
    rec.control("pca_pixels", None, lambda: pca_pixel_evidence(data, train, rec.dims, seed))
    for s in UNTRAINED_SEEDS:
        rec.control("untrained", s, lambda: model_evidence(untrained_twin(first, s), data, seed, train, sigma, n_noise))
    # 2. the readout of every snapshot, its weights checked against what was recorded
    shas = {}
    for images, stem in snaps:
        model = load_model(stem)
        shas[images] = weights_sha256(model, 16)
        rec.check_weights(images, shas[images], stem)
        rec.snapshot("trained", images, shas[images], lambda: model_evidence(model, data, seed, train, sigma, n_noise))
    # 3. how much the decoder relies on the middle block, and the PSNR, on a few held-out images
    few = data.float()[:RELIANCE_IMAGES]
    for s in UNTRAINED_SEEDS:
        rec.control("reliance", s, lambda: reliance_record(untrained_twin(first, s), few))
    for images, stem in snaps:
        rec.snapshot("reliance", images, shas[images], lambda: reliance_record(load_model(stem), few))
        rec.snapshot("psnr", images, shas[images], lambda: psnr_record(load_model(stem), few))
    return rec.done + rec.rows


def curve_table(records: list[dict]) -> dict:
    """{"trained": rows by images seen, "pixels": record, "untrained": {key: (mean, sd)}, "gaps": rows} for
    the records of one run (as written by `measure_run`)."""
    rel = {r.get("images_seen"): r for r in records if r["kind"] == "reliance" and "init_seed" not in r}
    for r in records:
        if r["kind"] == "psnr":
            rel[r["images_seen"]] = {**rel.get(r["images_seen"], {}), **{k: r[k] for k in PSNR_KEYS}}
    trained = sorted(({**rel.get(r["images_seen"], {}), **r} for r in records if r["kind"] == "trained"),
                     key=lambda r: r["images_seen"])
    pixels = next((r for r in records if r["kind"] == "pixels"), None)
    pca = next((r for r in records if r["kind"] == "pca_pixels"), None)
    un = [r for r in records if r["kind"] == "untrained"]
    untrained = {k: (float(np.mean([r[k] for r in un])),
                     float(np.std([r[k] for r in un], ddof=1)) if len(un) > 1 else 0.0)
                 for k in CURVE_KEYS if un and all(k in r for r in un)}
    un_rel = [r for r in records if r["kind"] == "reliance" and "init_seed" in r]
    untrained.update({k: (float(np.mean([r[k] for r in un_rel])), float(np.std([r[k] for r in un_rel], ddof=1))
                          if len(un_rel) > 1 else 0.0) for k in RELIANCE_KEYS if un_rel})
    gaps = [gap_row(t, pixels, untrained, pca=pca) for t in trained] if pixels and untrained else []
    return {"trained": trained, "pixels": pixels, "pca_pixels": pca, "untrained": untrained, "gaps": gaps}


def gap_row(trained: dict, pixels: dict, untrained: dict, z: float = 1.96, pca: dict | None = None) -> dict:
    """phi minus the best control (pixels, PCA pixels when measured, untrained networks) for the probe and kNN
    accuracy, with a 95% interval."""
    n = int(trained["n_test"])
    row = {"images_seen": trained["images_seen"]}
    for k in GAP_KEYS:
        u_mean, u_sd = untrained[k]
        options = [(pixels[k], 0.0, "pixels"), (u_mean, u_sd, "untrained")]
        if pca is not None:
            options.append((pca[k], 0.0, "pca_pixels"))
        best, sd_extra, name = max(options, key=lambda o: o[0])
        p = trained[k]
        se = math.sqrt(p * (1 - p) / n + best * (1 - best) / n + sd_extra ** 2)
        row[k] = {"gap": p - best, "low": p - best - z * se, "high": p - best + z * se, "best_control": name}
    return row


def first_reaching(gaps: list[dict], key: str, margin: float = 0.05) -> int | None:
    """The first images seen at which the measured gap of ``key`` reaches ``margin`` (None if it never does)."""
    return next((g["images_seen"] for g in gaps if g[key]["gap"] >= margin), None)


def fit_gap(gaps: list[dict], key: str = "probe_acc", margin: float = 0.05, min_images: int = 50_000) -> dict:
    """Least-squares fit of the gap against log10(images seen) on snapshots from ``min_images`` on: slope
    per decade with its standard error, and the images seen at which the fitted line reaches ``margin``
    (None when the slope is not positive)."""
    pts = [(math.log10(g["images_seen"]), g[key]["gap"]) for g in gaps if g["images_seen"] >= min_images]
    if len(pts) < 3:
        return {"key": key, "n_points": len(pts), "slope_per_decade": None, "slope_se": None, "reaches_margin_at": None}
    x, y = np.array(pts).T
    A = np.stack([np.ones_like(x), x], 1)
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    resid = y - A @ coef
    s2 = float(resid @ resid) / max(1, len(x) - 2)
    se = math.sqrt(s2 / float(((x - x.mean()) ** 2).sum()))
    a, b = float(coef[0]), float(coef[1])
    at = 10 ** ((margin - a) / b) if b > 0 else None
    return {"key": key, "n_points": len(pts), "intercept": a, "slope_per_decade": b, "slope_se": se,
            "margin": margin, "reaches_margin_at": at}
