"""Ship a trained run as a checkpoint with its card: ``python -m scripts.ship runs/tux32 --name tux32``.

Writes data/checkpoints/<name>.safetensors + .json (the model), <name>.log.jsonl (training log),
<name>.metrics.json ({"psnr": {sigma: {"input", "output", "blur_oracle"}}} on held-out images) and
<name>.md (the card: dataset, steps, images seen, wall time, PSNR table, quality bar verdict).

The name is taken literally ("tux32.v2" ships tux32.v2.*, never touching tux32.*); a name whose files
exist already is refused unless --force. Everything is checked and computed first, the five files are
written into a staging folder beside them and only then renamed into place, so a failure (a run without
training metadata, a damaged log, a run still training) leaves nothing half-shipped. ``snapshot=N`` ships the
run's kept snapshot at N images seen instead of its current model (allowed while the run trains on: a
snapshot is never rewritten), with the log cut at that snapshot's step.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from lib.core.files import atomic_write_bytes, atomic_write_json, exclusive_lock
from lib.core.paths import CHECKPOINTS
from lib.data.datasets import load_dataset
from lib.measure.denoising import held_out_psnr_table
from lib.measure.readout import (
    ANALYSIS_NOISE,
    ANALYSIS_SIGMA,
    DEGENERATE_BELOW,
    READOUT_SIGMAS,
    liveness,
    score,
    untrained_twin,
)
from lib.model.checkpoint import atomic_save_tensors, checkpoint_file, load_model, read_tensors, save_model
from lib.representation.phi import phi
from lib.training.lineage import lineage_markdown, lineage_of

N_HELD_OUT = 512
N_LIVENESS = 500
LIVENESS_SIGMAS = tuple(s for s in READOUT_SIGMAS if s in (0.0, 0.1, 0.2, 0.4))
N_READOUT_TRAIN, N_READOUT_TEST = 2000, 1000
SHIPPED = (".safetensors", ".json", ".log.jsonl", ".metrics.json", ".md")
OPTIONAL = (".optim.safetensors",)  # Adam's state, shipped with --with-optimizer only


def card(name: str, meta: dict, table: dict, config: dict, retrain: str = "make checkpoint",
         live: list[dict] | None = None, read: dict | None = None) -> str:
    """The checkpoint card (Markdown): data, network, training and lineage, the held-out PSNR table against the
    blur oracle, and the liveness and class readout where given."""
    tc = meta.get("train_config", {})
    ok = all(r["output"] > r["input"] and r["output"] > r["blur_oracle"] for r in table.values())
    lines = [f"# Checkpoint `{name}`", "",
             f"- dataset: `{meta.get('dataset')}` at {meta.get('size')}x{meta.get('size')} "
             f"({tc.get('n_train')} training images, held-out split for the table)",
             f"- network: preset `{tc.get('preset')}` {tc.get('model') or ''}, norm `{config.get('norm')}`, "
             f"widths {config.get('widths')}, middle block {config.get('mid_width')} channels",
             f"- steps: {meta.get('step')}, images seen: {meta.get('images_seen')}, batch {tc.get('batch_size')}, "
             f"lr {tc.get('lr')} ({tc.get('schedule')}"
             + (f", warmup over {tc['warmup_images']:,} images" if tc.get("warmup_images") else "")
             + f"), sigma {tc.get('sigma_dist')} x {tc.get('sigma_max')}",
             f"- training wall time: {meta.get('wall_s', 0) / 60:.1f} min on this repo's CPU machine (2 cores)",
             f"- retrain: `{retrain}`"
             + (" (see the Makefile for the exact command)" if retrain.startswith("make") else ""),
             *[f"- resumed at step {h['step']} with changed settings (the lines above give the last ones): "
               + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in h["changed"].items())
               for h in meta.get("history", [])],
             "",
             *(lineage_markdown(lineage_of(meta)) if "train_config" in meta else []),
             f"Held-out PSNR (dB), {N_HELD_OUT} images, one noise draw each:", "",
             "| sigma | input | denoised | best Gaussian blur (oracle) | gain over oracle |",
             "|---|---|---|---|---|"]
    for s, r in table.items():
        lines.append(f"| {s} | {r['input']:.2f} | {r['output']:.2f} | {r['blur_oracle']:.2f} | "
                     f"{r['output'] - r['blur_oracle']:+.2f} |")
    lines += ["", "Quality bar (denoised beats input and blur oracle at every sigma): "
              + ("**met**" if ok else "**not met** (see the table)"), ""]
    if live:
        lines += [f"Liveness of phi (middle block) on {live[0]['n']} held-out images: the fraction of its energy that "
                  f"varies across images and the mean cosine between two images' phi (below {DEGENERATE_BELOW:.0%}: "
                  "degenerate, one vector for every image; `lib.measure.readout.liveness`):", "",
                  "| sigma | varying fraction | mean cosine | untrained varying fraction | |", "|---|---|---|---|---|"]
        for r in live:
            lines.append(f"| {r['sigma']:g} | {r['varying_fraction']:.3f} | {r['mean_cosine']:.3f} | "
                         f"{r['untrained_varying_fraction']:.3f} | {'degenerate' if r['degenerate'] else 'live'} |")
        lines.append("")
    if read:
        lines += [f"Readout of the class at sigma {read['sigma']:g} ({read['n_train']} train-split images, "
                  f"{read['n_test']} held-out; ridge probe with its strength chosen by leave-one-out, kNN k = 20; "
                  "the full readout is notebook 06 and `python -m scripts.curves`):", "",
                  "| representation | probe [95% CI] | kNN | varying fraction |", "|---|---|---|---|"]
        for k, r in read["rows"].items():
            lines.append(f"| {k} | {r['probe']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}] | {r['knn']:.3f} | "
                         f"{r['varying_fraction']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def readout_rows(model, dataset: str, size: int, n_train: int = N_READOUT_TRAIN, n_test: int = N_READOUT_TEST) -> dict:
    """The class read from phi (middle block, ANALYSIS_SIGMA), its untrained twin's and the pixels: a ridge
    probe and kNN fitted on ``n_train`` train-split images, scored on ``n_test`` held-out ones."""
    train = load_dataset(dataset, n=n_train, size=size, seed=0, split="train")
    test = load_dataset(dataset, n=n_test, size=size, seed=0, split="test")
    twin = untrained_twin(model, 0)
    feats = {"phi (trained)": lambda x: phi(model, x, ANALYSIS_SIGMA, ANALYSIS_NOISE, "mid", seed=0).numpy(),
             "phi (untrained)": lambda x: phi(twin, x, ANALYSIS_SIGMA, ANALYSIS_NOISE, "mid", seed=0).numpy(),
             "pixels": lambda x: x.flatten(1).numpy()}
    rows = {}
    for name, f in feats.items():
        r = score(f(test.float()), test.labels, f(train.float()), train.labels, fast=True)
        rows[name] = {"probe": r.probe_acc, "ci_low": r.probe_ci_low, "ci_high": r.probe_ci_high, "knn": r.knn_acc,
                      "varying_fraction": r.varying_fraction}
    return {"sigma": ANALYSIS_SIGMA, "n_train": len(train), "n_test": len(test), "rows": rows}


def liveness_rows(model, dataset: str, size: int, n: int = N_LIVENESS, sigmas=LIVENESS_SIGMAS) -> list[dict]:
    """phi's liveness at each sigma on ``n`` held-out images, next to its untrained twin's (init seed 0)."""
    x = load_dataset(dataset, n=n, size=size, seed=0, split="test").float()
    twin = untrained_twin(model, 0)
    rows = []
    for s in sigmas:
        k = 1 if s == 0 else ANALYSIS_NOISE
        lv = liveness(phi(model, x, s, k, "mid", seed=0))
        lu = liveness(phi(twin, x, s, k, "mid", seed=0))
        rows.append({"sigma": float(s), "untrained_varying_fraction": lu["varying_fraction"], **lv})
    return rows


def refresh_card(stem: Path, retrain: str | None = None) -> Path:
    """Rewrite ``<stem>.md`` from the shipped files (config, metrics) plus a fresh liveness table."""
    stem = Path(stem)
    model = load_model(stem)
    meta = dict(model.checkpoint_metadata)
    metrics = json.loads(checkpoint_file(stem, ".metrics.json").read_text())
    old = checkpoint_file(stem, ".md").read_text() if checkpoint_file(stem, ".md").is_file() else ""
    if retrain is None:
        m = re.search(r"- retrain: `([^`]*)`", old)
        retrain = m.group(1) if m else "make checkpoint"
    live = liveness_rows(model, meta["dataset"], int(meta["size"]))
    atomic_write_bytes(checkpoint_file(stem, ".md"),
                       card(stem.name, meta, metrics["psnr"], model.config.to_dict(), retrain, live).encode())
    return stem


def check_name(name: str) -> str:
    """A plain checkpoint name, taken literally; a name ending in one of the shipped files' extensions
    ("tiny16.json") is refused: its files and the suffix-stripped ones would disagree."""
    if not isinstance(name, str) or not name or "/" in name or "\\" in name or name.startswith(".") \
            or name != name.strip():
        raise ValueError(f"--name: expected a plain checkpoint name like 'tux32' or 'tux32.v2', got {name!r}")
    ext = next((e for e in sorted(set(SHIPPED + OPTIONAL) | {".jsonl", ".log", ".metrics", ".optim"}, key=len,
                                  reverse=True) if name.lower().endswith(e)), None)
    if ext:
        raise ValueError(f"--name {name}: ends in {ext}, the extension of a shipped file; give the checkpoint's "
                         f"name without it (e.g. {name[:-len(ext)] or 'tux32'!r})")
    return name


def check_log(path: Path) -> None:
    """A training log must be JSON lines whose steps never go back (two trainings into one folder, or a
    damaged file, break that); the error names the line."""
    last = -1
    for i, ln in enumerate(path.read_text().splitlines(), 1):
        if not ln.strip():
            continue
        try:
            step = json.loads(ln).get("step", 0)
        except (json.JSONDecodeError, AttributeError):
            raise ValueError(f"{path}: line {i} is not a JSON record ({ln[:60]!r})") from None
        if step < last:
            raise ValueError(f"{path}: line {i} goes back from step {last} to {step} (two processes wrote "
                             f"this log?); not shipping it")
        last = step


def ship(run: str | Path, name: str, dest: Path = CHECKPOINTS, retrain: str = "make checkpoint",
         force: bool = False, readout: bool = False, snapshot: int | None = None,
         with_optimizer: bool = False) -> Path:
    """``readout``: add the class readout (`readout_rows`, about a minute on a CPU) to the card; ``snapshot``:
    ship ``run``/snapshots/img<N> (N images seen) instead of the run's current model; ``with_optimizer``: also
    ship Adam's state as ``<name>.optim.safetensors`` (twice the weights' size), so that ``scripts.train
    --continue`` goes on bit-identically instead of re-estimating it (lib.training.lineage)."""
    run, dest = Path(run), Path(dest)
    if with_optimizer and snapshot is not None:
        raise ValueError("--with-optimizer: a snapshot keeps no optimizer state; ship the run's current model")
    stem = dest / check_name(name)
    targets = [checkpoint_file(stem, ext) for ext in SHIPPED + OPTIONAL]
    existing = [t.name for t in targets if t.exists()]
    if existing and not force:
        raise FileExistsError(f"--name {name}: {dest} already holds {existing}; choose another name or pass "
                              f"--force to replace them")
    source = _source(run, snapshot)
    # the current model is rewritten while a run trains: refuse a running run unless shipping a snapshot
    with exclusive_lock(run, "training run", shared=True) if snapshot is None else contextlib.nullcontext():
        model = load_model(source)
        meta = dict(model.checkpoint_metadata)
        missing = [k for k in ("dataset", "size") if k not in meta]
        if missing:
            raise ValueError(f"{checkpoint_file(run / 'model', '.json')}: metadata lacks {missing} (written by "
                             f"lib.training.trainer); cannot measure or describe this model")
        log = run / "log.jsonl"
        if log.is_file():
            check_log(log)
        table = held_out_psnr_table(model, meta["dataset"], int(meta["size"]), N_HELD_OUT)
        dest.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(dir=dest, prefix=f".{name}.ship-"))
        try:
            staged = stage / name
            save_model(staged, model, meta)
            if with_optimizer:
                _stage_optimizer(staged, run, meta)
            _stage_log(staged, log, None if snapshot is None else int(meta.get("step", 0)))
            atomic_write_json(checkpoint_file(staged, ".metrics.json"),
                              {"psnr": table, "n_held_out": N_HELD_OUT, "images_seen": meta.get("images_seen")})
            live = liveness_rows(model, meta["dataset"], int(meta["size"]))
            read = readout_rows(model, meta["dataset"], int(meta["size"])) if readout else None
            atomic_write_bytes(checkpoint_file(staged, ".md"),
                               card(name, meta, table, model.config.to_dict(), retrain, live, read).encode())
            _move_into_place(staged, targets, log.is_file(), stage)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return stem


def _source(run: Path, snapshot: int | None) -> Path:
    """The checkpoint stem `ship` ships: the run's current model, or its snapshot at ``snapshot`` images."""
    if snapshot is None:
        return run / "model"
    source = run / "snapshots" / f"img{int(snapshot):09d}"
    if not checkpoint_file(source, ".safetensors").is_file():
        kept = sorted(int(p.stem[3:]) for p in (run / "snapshots").glob("img*.safetensors"))
        raise FileNotFoundError(f"--snapshot {snapshot}: {run} has no snapshot at that many images seen; "
                                f"kept: {kept or 'none'}")
    return source


def _stage_optimizer(staged: Path, run: Path, meta: dict) -> None:
    """Adam's state of the run, beside the staged weights; refused unless it is at the model's step."""
    state, smeta = read_tensors(run / "state.safetensors")
    if int(smeta["step"]) != int(meta.get("step", -1)):
        raise ValueError(f"--with-optimizer: {run}/state.safetensors is at step {smeta['step']} but the "
                         f"model at step {meta.get('step')}; ship when the run has stopped")
    atomic_save_tensors(checkpoint_file(staged, ".optim.safetensors"),
                        {k: v for k, v in state.items() if k.startswith("opt.")},
                        {"step": smeta["step"], "optimizer": smeta["optimizer"]})


def _stage_log(staged: Path, log: Path, up_to_step: int | None) -> None:
    """The run's log beside the staged weights (a snapshot's: the lines up to its step); none without a log."""
    if not log.is_file():
        return
    if up_to_step is None:
        shutil.copyfile(log, checkpoint_file(staged, ".log.jsonl"))
        return
    lines = [line for line in log.read_text().splitlines(keepends=True)
             if line.strip() and json.loads(line).get("step", 0) <= up_to_step]
    atomic_write_bytes(checkpoint_file(staged, ".log.jsonl"), "".join(lines).encode())


def _move_into_place(staged: Path, targets: list, has_log: bool, stage: Path) -> None:
    """Check that every shipped file was staged, then move each over its target (a target the staged files
    lack, such as an older log or optimizer state, is removed)."""
    missing = [ext for ext in SHIPPED if not checkpoint_file(staged, ext).exists()
               and not (ext == ".log.jsonl" and not has_log)]
    if missing:
        raise RuntimeError(f"ship: staging {stage} lacks {missing}; nothing was replaced")
    for ext, t in zip(SHIPPED + OPTIONAL, targets):
        src = checkpoint_file(staged, ext)
        if src.exists():
            os.replace(src, t)
        elif t.exists():  # --force over a checkpoint that had a log, from a run without one
            t.unlink()
