"""The factor study of issue #8: one factor at a time from a common baseline, with training-time evidence.

    python -m lib.study run                 # trains every run of configs/study.json in turn (resumable)
    python -m lib.study run --only object   # one run
    python -m lib.study summary             # -> figures/evidence/study.jsonl, study_table.md, study_curves.png

Each run is a plain ``lib.train`` run in ``runs/study/<name>`` whose log holds ``kind: "evidence"`` records
(lib.evidence.model_evidence on a fixed held-out set). The summary adds, once per dataset, the same numbers
for raw pixels and for the untrained network of each run's architecture, and the final denoising PSNR.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from .paths import FIGURES, ROOT

STUDY = ROOT / "configs" / "study.json"
RUNS = ROOT / "runs" / "study"
OUT = FIGURES / "evidence"


def load_study(path=STUDY) -> tuple[dict, dict]:
    """(base TrainConfig fields, {run name: overrides}) from a study JSON file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"study file not found: {path}")
    s = json.loads(path.read_text())
    if not isinstance(s.get("base"), dict) or not isinstance(s.get("runs"), dict) or not s["runs"]:
        raise ValueError(f"{path}: expected keys 'base' (object) and 'runs' (non-empty object)")
    return s["base"], s["runs"]


def run_config(name: str, base: dict, over: dict, runs_dir=RUNS):
    from .train import TrainConfig
    merged = {**base, **over, "out": str(Path(runs_dir) / name)}
    if "model" in base or "model" in over:
        merged["model"] = {**base.get("model", {}), **over.get("model", {})}
    return TrainConfig(**merged)


def run(names=None, study=STUDY, runs_dir=RUNS, progress=True):
    from .train import Trainer
    base, runs = load_study(study)
    unknown = set(names or []) - set(runs)
    if unknown:
        raise ValueError(f"--only: unknown runs {sorted(unknown)}; the study has {sorted(runs)}")
    for name in names or runs:
        print(f"== study run {name}", flush=True)
        t = Trainer(run_config(name, base, runs[name], runs_dir))
        t.run(progress=progress)
        if t._stop:  # SIGTERM: the trainer saved its state; stop the study too (rerun to resume)
            print(f"== stopped during {name}; rerun the same command to resume", flush=True)
            return


def _records(log: Path) -> list[dict]:
    return [json.loads(l) for l in log.read_text().splitlines() if l.strip()]


def summarize(study=STUDY, runs_dir=RUNS, out=OUT, seed: int = 0) -> list[dict]:
    """One row per (run, evidence point) plus per-run controls; writes the table, curves and jsonl."""
    from .data import load_dataset
    from .evidence import model_evidence, pixel_evidence
    from .unet import UNet, preset
    base, runs = load_study(study)
    rows, controls, pixels = [], {}, {}
    for name, over in runs.items():
        log = Path(runs_dir) / name / "log.jsonl"
        if not log.is_file():
            continue
        cfg = run_config(name, base, over, runs_dir)
        recs = _records(log)
        ev = [r for r in recs if r.get("kind") == "evidence"]
        if not ev:
            continue
        data = load_dataset(cfg.dataset, n=cfg.n_evidence, size=cfg.size, seed=cfg.seed, split="test")
        if cfg.dataset not in pixels:
            pixels[cfg.dataset] = pixel_evidence(data, seed)
        torch.manual_seed(cfg.seed)
        untrained = UNet(preset(cfg.preset, **cfg.model)).eval()
        controls[name] = model_evidence(untrained, data, seed)
        evals = [r for r in recs if r.get("kind") == "eval"]
        psnr = evals[-1]["psnr"] if evals else {}
        for r in ev:
            rows.append({"run": name, "dataset": cfg.dataset, "norm": cfg.model.get("norm", "scale"),
                         "preset": cfg.preset, **{k: v for k, v in r.items() if k not in ("kind", "step")}})
        rows[-1]["final_psnr_gain"] = {s: round(v["output"] - v["input"], 2) for s, v in psnr.items()}
    if not rows:
        raise FileNotFoundError(f"no study run with evidence records under {runs_dir}; run `python -m lib.study run`")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "study.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        for name, c in controls.items():
            f.write(json.dumps({"run": name, "control": "untrained", **c}) + "\n")
        for ds, p in pixels.items():
            f.write(json.dumps({"dataset": ds, "control": "pixels", **p}) + "\n")
    (out / "study_table.md").write_text(study_table(rows, controls, pixels))
    from .figs_study import plot_study
    plot_study(rows, controls, pixels).savefig(out / "study_curves.png", dpi=110, metadata={"Software": None})
    return rows


def read_study(path=OUT / "study.jsonl") -> tuple[list[dict], dict, dict]:
    """(rows, untrained controls by run, pixel controls by dataset) from a study.jsonl."""
    rows, controls, pixels = [], {}, {}
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        if r.get("control") == "untrained":
            controls[r["run"]] = r
        elif r.get("control") == "pixels":
            pixels[r["dataset"]] = r
        else:
            rows.append(r)
    return rows, controls, pixels


def final_rows(rows: list[dict]) -> dict:
    """The last evidence record of each run, in study order."""
    last = {}
    for r in rows:
        if r["run"] not in last or r["images"] >= last[r["run"]]["images"]:
            last[r["run"]] = r
    return last


def study_table(rows, controls, pixels) -> str:
    head = ("| run | dataset | norm | images | mid PR in → out (untrained out) | kurtotic ch. (untrained) "
            "| class AMI phi / pixels / untrained | background AMI phi / pixels | probe phi / pixels / untrained "
            "| PSNR gain σ=0.1 / 0.4 (dB) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in final_rows(rows).items():
        u, p = controls.get(name, {}), pixels.get(r["dataset"], {})
        g = r.get("final_psnr_gain", {})

        def f(d, k):
            v = d.get(k)
            return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
        lines.append(
            f"| {name} | {r['dataset']} | {r['norm']} | {r['images'] // 1000}k "
            f"| {f(r, 'mid_pr_in')} → {f(r, 'mid_pr_out')} ({f(u, 'mid_pr_out')}) "
            f"| {r['n_kurtotic_channels']} ({u.get('n_kurtotic_channels', '–')}) "
            f"| {f(r, 'class_ami')} / {f(p, 'class_ami')} / {f(u, 'class_ami')} "
            f"| {f(r, 'background_ami')} / {f(p, 'background_ami')} "
            f"| {f(r, 'probe_acc')} / {f(p, 'probe_acc')} / {f(u, 'probe_acc')} "
            f"| {g.get('0.1', '–')} / {g.get('0.4', '–')} |")
    return "\n".join(lines) + "\n"


def study_findings(rows, controls, pixels) -> list[str]:
    """One markdown line per run: does the middle block sparsify, is phi more class-semantic than both controls?"""
    out = []
    for name, r in final_rows(rows).items():
        u, p = controls.get(name, {}), pixels.get(r["dataset"], {})
        sparser = r["mid_pr_out"] < r["mid_pr_in"]
        ami_ctrl = max(p.get("class_ami", -1), u.get("class_ami", -1))
        probe_ctrl = max(p.get("probe_acc", 0), u.get("probe_acc", 0))
        sem = [w for w, ok in (("k-means class AMI", r.get("class_ami", -1) > ami_ctrl),
                               ("probe accuracy", r["probe_acc"] > probe_ctrl)) if ok]
        out.append(
            f"- **{name}** ({r['dataset']}, {r['norm']} norm, {r['images']:,} images): the middle block "
            f"{'sparsifies' if sparser else 'does not sparsify'} its input (PR {r['mid_pr_in']:.2f} → "
            f"{r['mid_pr_out']:.2f}); class AMI {r.get('class_ami', float('nan')):.3f} vs pixels "
            f"{p.get('class_ami', float('nan')):.3f} / untrained {u.get('class_ami', float('nan')):.3f}; probe "
            f"{r['probe_acc']:.3f} vs {p.get('probe_acc', float('nan')):.3f} / {u.get('probe_acc', float('nan')):.3f}"
            f" → phi above both controls on: {', '.join(sem) or 'neither'}.")
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["run", "summary"])
    p.add_argument("--only", nargs="*", help="run names (default: all, in the study's order)")
    p.add_argument("--study", default=str(STUDY))
    p.add_argument("--runs-dir", default=str(RUNS))
    p.add_argument("--out", default=str(OUT))
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.command == "run":
        run(a.only, a.study, a.runs_dir, progress=not a.no_progress)
    else:
        summarize(a.study, a.runs_dir, a.out)
        print((Path(a.out) / "study_table.md").read_text())


if __name__ == "__main__":
    main()
