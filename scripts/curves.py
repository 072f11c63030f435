"""Learning curves of the readout over a run's snapshots, with controls, gaps and a fitted trend.

    python -m scripts.curves runs/cifar32 runs/cifar32-sigma3 --out figures/cifar10/curves

Measures every snapshot not yet in OUT/curves.jsonl (resumable), then writes OUT/curves.png, OUT/curves.md
and OUT/fits.json from all records of the runs named.
"""
from __future__ import annotations

import json
from pathlib import Path

from lib.core.checks import read_jsonl, run_cli
from lib.publish.curve_plots import curves_markdown, save_curves
from lib.training.curves import GAP_KEYS, curve_table, fit_gap, measure_run, run_labels
from scripts import Parser, arg_type, dataset_arg, existing_dir, no_duplicates, out_dir, positive_int, resolved


def parser() -> Parser:
    """The arguments: the run folders, the output folder, the image counts and what to measure or only redraw."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="*", type=existing_dir,
                   help="training run folders (with snapshots/); RUN/ema for a run's EMA weights")
    p.add_argument("--out", required=True, type=out_dir,
                   help="folder for curves.jsonl, curves.png, curves.md, fits.json")
    p.add_argument("--n-test", type=positive_int, default=2000, help="held-out images scored (default 2000)")
    p.add_argument("--n-train", type=positive_int, default=5000, help="train-split images the probes are fitted on")
    p.add_argument("--dataset", type=dataset_arg, help="dataset spec, if the run's images moved")
    p.add_argument("--no-measure", action="store_true", help="only redraw from curves.jsonl")
    p.add_argument("--also", nargs="+", default=[], metavar="LABEL", type=arg_type(_label),
                   help="also draw these runs' records from curves.jsonl (runs whose folders are gone)")
    p.add_argument("--snapshots-only", action="store_true",
                   help="measure only the kept snapshots, not the current model (for a run still training)")
    return p


def _label(text: str) -> str:
    if not text.strip() or text != text.strip():
        raise ValueError(f"expected a run label as curves.jsonl records it, got {text!r}")
    return text


def check_args(p: Parser, a) -> None:
    """Before any work: every run a training run folder, none twice, and the records to redraw there."""
    if not a.runs and not a.also:
        p.error("argument runs: give training run folders to measure, or --also LABEL... to redraw recorded runs")
    no_duplicates(p, "runs", a.runs, key=resolved)
    no_duplicates(p, "--also", a.also)
    for run in a.runs:
        if (not a.no_measure and not (Path(run) / "snapshots").is_dir()
                and not (Path(run) / "model.safetensors").is_file()):
            p.error(f"argument runs: {run} holds neither snapshots/ nor model.safetensors (not a training run folder?)")
    if (a.no_measure or a.also) and not (Path(a.out) / "curves.jsonl").is_file():
        p.error(f"argument {'--no-measure' if a.no_measure else '--also'}: {Path(a.out) / 'curves.jsonl'} not found "
                f"(--no-measure and --also redraw its records)")


def main(argv=None):
    """Measure every run's snapshots (unless --no-measure), then write curves.png, curves.md and fits.json to --out
    and print the table."""
    p = parser()
    a = p.parse_args(argv)
    check_args(p, a)
    out = Path(a.out)
    tables, fits = {}, {}
    for run, name in zip(a.runs, run_labels(a.runs)):
        if not a.no_measure:
            measure_run(run, out, a.n_test, a.n_train, dataset=a.dataset, current=not a.snapshots_only, label=name)
        recs = read_jsonl(out / "curves.jsonl", "curve records")
        recs = [r for r in recs if r["run"] == name and r["n_test"] == a.n_test and r["n_train"] == a.n_train]
        tables[name] = curve_table(recs)
        fits[name] = {k: fit_gap(tables[name]["gaps"], k) for k in GAP_KEYS}
    for name in a.also:
        recs = read_jsonl(out / "curves.jsonl", "curve records")
        recs = [r for r in recs if r["run"] == name and r["n_test"] == a.n_test and r["n_train"] == a.n_train]
        if not recs:
            p.error(f"--also {name}: {out / 'curves.jsonl'} has no records of that run")
        tables[name] = curve_table(recs)
        fits[name] = {k: fit_gap(tables[name]["gaps"], k) for k in GAP_KEYS}
    save_curves(tables, fits, out / "curves.png")
    (out / "curves.md").write_text(curves_markdown(tables, fits))
    (out / "fits.json").write_text(json.dumps(fits, indent=1) + "\n")
    print((out / "curves.md").read_text())


if __name__ == "__main__":
    run_cli(main)
