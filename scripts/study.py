"""The factor study: train every run of configs/study.json (resumable), then summarize: `make study`.

A thin command over `lib.training.study`; its docstring says what the command computes and writes.
"""
from __future__ import annotations

from pathlib import Path

from lib.core.checks import run_cli
from lib.publish.study_plots import save_study_curves
from lib.training.study import OUT, RUNS, STUDY, load_study, run, summarize
from scripts import Parser, existing_file, no_duplicates, out_dir, positive_int


def parser() -> Parser:
    """The arguments: ``run`` or ``summary``, the study file, which runs, and the folders it reads and writes."""
    p = Parser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["run", "summary"])
    p.add_argument("--only", nargs="+", help="run names (default: all, in the study's order)")
    p.add_argument("--study", type=existing_file, default=str(STUDY))
    p.add_argument("--runs-dir", type=out_dir, default=str(RUNS))
    p.add_argument("--out", type=out_dir, default=str(OUT))
    p.add_argument("--n-final", type=positive_int, default=2000, help="held-out images for the final table")
    p.add_argument("--no-progress", action="store_true")
    return p


def main(argv=None):
    """``run``: train the study's runs (resumable); ``summary``: write its table and curves, and print the table."""
    p = parser()
    a = p.parse_args(argv)
    no_duplicates(p, "--only", a.only)
    _, runs = load_study(a.study)
    unknown = [n for n in a.only or () if n not in runs]
    if unknown:
        p.error(f"argument --only: {unknown[0]!r} is not a run of {a.study}; runs: {', '.join(runs)}")
    if a.command == "run":
        run(a.only, a.study, a.runs_dir, progress=not a.no_progress)
    else:
        res = summarize(a.study, a.runs_dir, a.out, n_final=a.n_final)
        save_study_curves(res, Path(a.out) / "study_curves.png")
        print((Path(a.out) / "study_table.md").read_text())


if __name__ == "__main__":
    run_cli(main)
