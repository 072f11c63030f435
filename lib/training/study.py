"""The factor study: one factor at a time from a common baseline, with training-time evidence.

    python -m scripts.study run                 # trains every run of configs/study.json in turn (resumable)
    python -m scripts.study run --only object   # one run
    python -m scripts.study summary             # -> figures/evidence/study.jsonl, study_table.md, study_curves.png

Each run is a plain ``lib.training.trainer`` run in ``runs/study/<name>`` whose log holds ``kind: "evidence"`` records
(lib.training.evidence.model_evidence on a fixed held-out set). The summary adds, once per dataset, the same numbers
for raw pixels and for the untrained network of each run's architecture, and the final denoising PSNR.
"""
from __future__ import annotations

import json
from pathlib import Path

from lib.core.checks import read_json
from lib.core.paths import FIGURES, ROOT
from lib.measure.readout import DEGENERATE_BELOW, untrained_twin
from lib.model.checkpoint import load_model
from lib.model.unet import UNet, preset
from lib.training.evidence import evidence_sets, model_evidence, pixel_evidence
from lib.training.recipe import TrainConfig
from lib.training.trainer import Trainer

STUDY = ROOT / "configs" / "study.json"
RUNS = ROOT / "runs" / "study"
OUT = FIGURES / "evidence"


def load_study(path=STUDY) -> tuple[dict, dict]:
    """(base TrainConfig fields, {run name: overrides}) from a study JSON file."""
    path = Path(path)
    s = read_json(path, "study file")
    if (not isinstance(s, dict) or not isinstance(s.get("base"), dict) or not isinstance(s.get("runs"), dict)
            or not s["runs"]):
        raise ValueError(f"{path}: expected keys 'base' (object) and 'runs' (non-empty object)")
    return s["base"], s["runs"]


def run_config(name: str, base: dict, over: dict, runs_dir=RUNS):
    """The TrainConfig of study run ``name``: ``base`` updated by its overrides (model overrides merged),
    training into ``runs_dir``/``name``."""
    merged = {**base, **over, "out": str(Path(runs_dir) / name)}
    if "model" in base or "model" in over:
        merged["model"] = {**base.get("model", {}), **over.get("model", {})}
    return TrainConfig(**merged)


def run(names=None, study=STUDY, runs_dir=RUNS, progress=True):
    """Train the study's runs (``names``, default all) in order; each resumes where it stopped, and a SIGTERM
    stops the study after the trainer has saved its state."""
    base, runs = load_study(study)
    unknown = set(names or []) - set(runs)
    if unknown:
        raise ValueError(f"--only: unknown runs {sorted(unknown)}; the study has {sorted(runs)}")
    for name in names or runs:
        print(f"== study run {name}", flush=True)
        t = Trainer(run_config(name, base, runs[name], runs_dir))
        t.run(progress=progress)
        if t.stop_requested:  # SIGTERM: the trainer saved its state; stop the study too (rerun to resume)
            print(f"== stopped during {name}; rerun the same command to resume", flush=True)
            return


def _records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _final_evidence(cfg, model_stem: Path, n: int, seed: int, pixel_cache: dict) -> dict:
    """The run's final model, its untrained twin and pixels on ``n`` held-out images (more than the
    curves' n_evidence, so the probe and k-means numbers of the table are less noisy)."""
    train, data = evidence_sets(cfg.dataset, cfg.size, cfg.seed, n)
    model = load_model(model_stem)
    tr = model_evidence(model, data, seed, train)
    un = model_evidence(untrained_twin(model, cfg.seed), data, seed, train)  # the twin of the run's init seed
    px = pixel_cache.get(cfg.dataset) or pixel_evidence(data, seed, train)
    pixel_cache[cfg.dataset] = px
    return {"trained": tr, "untrained": un, "pixels": px, "n_images": n}


def summarize(study=STUDY, runs_dir=RUNS, out=OUT, seed: int = 0, n_final: int = 2000) -> dict:
    """Curves (every evidence record of every run, with the untrained net and pixels on the same n_evidence
    images) and a final table (each finished run's model on ``n_final`` images); writes study.jsonl and
    study_table.md (the curves: lib.publish.study_plots)."""
    base, runs = load_study(study)
    rows, controls, pixels, finals, final_pixels = [], {}, {}, {}, {}
    for name, over in runs.items():
        log = Path(runs_dir) / name / "log.jsonl"
        if not log.is_file():
            continue
        cfg = run_config(name, base, over, runs_dir)
        recs = _records(log)
        ev = [r for r in recs if r.get("kind") == "evidence"]
        if not ev:
            continue
        train, data = evidence_sets(cfg.dataset, cfg.size, cfg.seed, cfg.n_evidence)
        if cfg.dataset not in pixels:
            pixels[cfg.dataset] = pixel_evidence(data, seed, train)
        twin = untrained_twin(UNet(preset(cfg.preset, **cfg.model)), cfg.seed)
        controls[name] = model_evidence(twin, data, seed, train)
        info = {"run": name, "dataset": cfg.dataset, "norm": cfg.model.get("norm", "scale"), "preset": cfg.preset}
        rows += [{**info, **{k: v for k, v in r.items() if k not in ("kind", "step")}} for r in ev]
        if ev[-1]["images"] >= cfg.total_images and (Path(runs_dir) / name / "model.safetensors").is_file():
            evals = [r for r in recs if r.get("kind") == "eval"]
            gain = {s: round(v["output"] - v["input"], 2) for s, v in (evals[-1]["psnr"] if evals else {}).items()}
            finals[name] = {**info, "images": ev[-1]["images"], "psnr_gain": gain,
                            **_final_evidence(cfg, Path(runs_dir) / name / "model", n_final, seed, final_pixels)}
            print(f"final evidence {name}: {json.dumps(finals[name]['trained'])}", flush=True)
    if not rows:
        raise FileNotFoundError(f"no study run with evidence records under {runs_dir}; "
                                f"run `python -m scripts.study run`")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "study.jsonl", "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
        for name, c in controls.items():
            f.write(json.dumps({"run": name, "control": "untrained", **c}) + "\n")
        for ds, p in pixels.items():
            f.write(json.dumps({"dataset": ds, "control": "pixels", **p}) + "\n")
        for name, fin in finals.items():
            f.write(json.dumps({"final": name, **fin}) + "\n")
    res = read_study(out / "study.jsonl")
    (out / "study_table.md").write_text(study_table(res["finals"]))
    return res


def read_study(path=OUT / "study.jsonl") -> dict:
    """{"rows": curve records, "controls": untrained net by run, "pixels": by dataset (the curves'
    images), "finals": {run: final-table entry}} from a study.jsonl."""
    res = {"rows": [], "controls": {}, "pixels": {}, "finals": {}}
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        if r.get("control") == "untrained":
            res["controls"][r["run"]] = r
        elif r.get("control") == "pixels":
            res["pixels"][r["dataset"]] = r
        elif "final" in r:
            res["finals"][r["final"]] = r
        else:
            res["rows"].append(r)
    return res


def _fmt(d: dict, k: str) -> str:
    v = d.get(k)
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))


def study_table(finals: dict) -> str:
    """Markdown: one row per finished run, its final model next to the untrained twin and pixels."""
    head = ("| run | dataset | norm | images | mid PR in → out (untrained out) | kurtotic ch. (untrained) "
            "| class AMI phi / pixels / untrained | background AMI phi / pixels | probe phi / pixels / untrained "
            "| PSNR gain σ=0.1 / 0.4 (dB) |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, fin in finals.items():
        r, u, p, g = fin["trained"], fin["untrained"], fin["pixels"], fin.get("psnr_gain", {})
        lines.append(
            f"| {name} | {fin['dataset']} | {fin['norm']} | {fin['images'] // 1000}k "
            f"| {_fmt(r, 'mid_pr_in')} → {_fmt(r, 'mid_pr_out')} ({_fmt(u, 'mid_pr_out')}) "
            f"| {r['n_kurtotic_channels']} ({u['n_kurtotic_channels']}) "
            f"| {_fmt(r, 'class_ami')} / {_fmt(p, 'class_ami')} / {_fmt(u, 'class_ami')} "
            f"| {_fmt(r, 'background_ami')} / {_fmt(p, 'background_ami')} "
            f"| {_fmt(r, 'probe_acc')} / {_fmt(p, 'probe_acc')} / {_fmt(u, 'probe_acc')} "
            f"| {g.get('0.1', '–')} / {g.get('0.4', '–')} |")
    n = {fin["n_images"] for fin in finals.values()}
    return "\n".join(lines) + f"\n\nFinal models on {', '.join(map(str, sorted(n)))} held-out images each.\n"


def study_findings(finals: dict) -> list[str]:
    """One markdown line per run: does the middle block sparsify, is phi more class-semantic than both controls?"""
    out = []
    for name, fin in finals.items():
        r, u, p = fin["trained"], fin["untrained"], fin["pixels"]
        sparser = r["mid_pr_out"] < r["mid_pr_in"]
        sem = [w for w, ok in (("k-means class AMI", r["class_ami"] > max(p["class_ami"], u["class_ami"])),
                               ("probe accuracy", r["probe_acc"] > max(p["probe_acc"], u["probe_acc"]))) if ok]
        pr = f"PR {r['mid_pr_in']:.2f} → {r['mid_pr_out']:.2f}"
        live = r.get("mid_varying_fraction")
        degenerate = live is not None and live < DEGENERATE_BELOW
        if live is None:
            mid = (f"median {pr} on clean images (recorded before the liveness check, so not read as a verdict: "
                   "phi may not vary across images)")
        elif degenerate:
            mid = f"phi is degenerate ({live:.1%} of its energy varies across images; {pr})"
        else:
            mid = (f"the middle block {'sparsifies' if sparser else 'does not sparsify'} its input ({pr} at "
                   f"σ = {r.get('evidence_sigma', 0):g}, {live:.0%} varying)")
        bg = (f"; background AMI {r['background_ami']:.3f} vs pixels {p['background_ami']:.3f}"
              if "background_ami" in r and "background_ami" in p else "")
        verdict = "none (phi is degenerate)" if degenerate else (", ".join(sem) or "neither")
        out.append(
            f"- **{name}** ({fin['dataset']}, {fin['norm']} norm, {fin['images']:,} images): {mid}; "
            f"class AMI {r['class_ami']:.3f} vs pixels {p['class_ami']:.3f} / untrained "
            f"{u['class_ami']:.3f}; probe {r['probe_acc']:.3f} vs {p['probe_acc']:.3f} / {u['probe_acc']:.3f}"
            f"{bg} → phi above both controls on class: {verdict}.")
    return out
